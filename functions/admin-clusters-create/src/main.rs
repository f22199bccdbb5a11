//! POST /api/admin/clusters (admin): certify a cluster domain.

use dex::DexResult;
use dex::accounts::Actor;
use dex::hats::ClusterView;
use dex::hats::clusters::NewCluster;
use dex::roles::Role;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let admin = app.authorize(request.auth_token(), &Role::Admin).await?;
    let new: NewCluster = request.json()?;
    let cluster = app.clusters().certify(&Actor::Account(admin), new).await?;
    Ok(web::json(StatusCode::CREATED, &ClusterView::from(&cluster)))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
