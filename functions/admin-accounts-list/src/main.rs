//! GET /api/admin/accounts (admin): accounts by username, paginated.

use dex::accounts::AccountView;
use dex::roles::Role;
use dex::web::{self, ApiRequest, HttpResponse, StatusCode};
use dex::{App, DexResult};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    app.authorize(request.auth_token(), &Role::Admin).await?;
    let page = app.accounts().list(request.page()?).await?;
    Ok(web::page(StatusCode::OK, &page, AccountView::from))
}

dex::lambda_main!(handle);
