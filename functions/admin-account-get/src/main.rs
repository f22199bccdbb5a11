//! GET /api/admin/accounts/{accountId} (admin).

use dex::DexResult;
use dex::accounts::AccountView;
use dex::roles::Role;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    app.authorize(request.auth_token(), &Role::Admin).await?;
    let id = request.path("accountId")?;
    let account = app.accounts().get(&id).await?;
    Ok(web::json(StatusCode::OK, &AccountView::from(&account)))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
