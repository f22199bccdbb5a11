//! GET /api/admin/accounts (admin): accounts by username, paginated.

use dex::DexResult;
use dex::accounts::AccountView;
use dex::roles::Role;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    app.authorize(request.auth_token(), &Role::Admin).await?;
    let page = app.accounts().list(request.page()?).await?;
    Ok(web::page(StatusCode::OK, &page, AccountView::from))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
