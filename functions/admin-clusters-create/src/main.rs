//! POST /api/admin/clusters (admin): certify a cluster domain.

use dex::accounts::Actor;
use dex::hats::ClusterView;
use dex::hats::clusters::NewCluster;
use dex::roles::Role;
use dex::web::{self, ApiRequest, HttpResponse};
use dex::{App, DexResult};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let admin = app.authorize(request.auth_token(), &Role::Admin).await?;
    let new: NewCluster = request.json()?;
    let cluster = app.clusters().certify(&Actor::Account(admin), new).await?;
    Ok(web::json(201, &ClusterView::from(&cluster)))
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = web::init_app().await;
    web::serve(web::DEFAULT_BODY_LIMIT, |request| handle(&app, request)).await
}
