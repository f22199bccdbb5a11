//! DELETE /api/admin/clusters/{domain} (admin): decertify; nothing is deleted.

use dex::DexResult;
use dex::accounts::Actor;
use dex::hats::ClusterView;
use dex::roles::Role;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let admin = app.authorize(request.auth_token(), &Role::Admin).await?;
    let domain = request.path("domain")?;
    let cluster = app
        .clusters()
        .decertify(&Actor::Account(admin), &domain)
        .await?;
    Ok(web::json(StatusCode::OK, &ClusterView::from(&cluster)))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
