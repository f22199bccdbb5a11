//! DELETE /api/admin/clusters/{domain} (admin): decertify; nothing is deleted.

use dex::accounts::Actor;
use dex::hats::ClusterView;
use dex::roles::Role;
use dex::web::{self, ApiRequest, HttpResponse};
use dex::{App, DexError, DexResult};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let admin = app.authorize(request.auth_token(), &Role::Admin).await?;
    let domain = request
        .path_param("domain")
        .ok_or_else(|| DexError::bad_request("domain is required"))?;
    let cluster = app
        .clusters()
        .decertify(&Actor::Account(admin), &domain)
        .await?;
    Ok(web::json(200, &ClusterView::from(&cluster)))
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = web::init_app().await;
    web::serve(web::DEFAULT_BODY_LIMIT, |request| handle(&app, request)).await
}
