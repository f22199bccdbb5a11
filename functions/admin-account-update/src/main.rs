//! PUT /api/admin/accounts/{accountId} (admin): change roles and/or disable.

use dex::DexResult;
use dex::accounts::{AccountChange, AccountView, Actor};
use dex::roles::Role;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let admin = app.authorize(request.auth_token(), &Role::Admin).await?;
    let id = request.path("accountId")?;
    let change: AccountChange = request.json()?;
    let account = app
        .accounts()
        .update(&Actor::Account(admin), &id, change)
        .await?;
    Ok(web::json(StatusCode::OK, &AccountView::from(&account)))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
