//! DELETE /api/admin/clusters/{domain} (admin): decertify; nothing is deleted.

use dex::accounts::Actor;
use dex::hats::ClusterView;
use dex::roles::Role;
use dex::web::{self, ApiRequest, HttpResponse, StatusCode};
use dex::{App, DexResult};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let admin = app.authorize(request.auth_token(), &Role::Admin).await?;
    let domain = request.path("domain")?;
    let cluster = app
        .clusters()
        .decertify(&Actor::Account(admin), &domain)
        .await?;
    Ok(web::json(StatusCode::OK, &ClusterView::from(&cluster)))
}

dex::lambda_main!(handle);
