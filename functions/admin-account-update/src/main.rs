//! PUT /api/admin/accounts/{accountId} (admin): change roles and/or disable.

use dex::accounts::{AccountChange, AccountView, Actor};
use dex::roles::Role;
use dex::web::{self, ApiRequest, HttpResponse};
use dex::{App, DexError, DexResult};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let admin = app.authorize(request.auth_token(), &Role::Admin).await?;
    let id = request
        .path_param("accountId")
        .ok_or_else(|| DexError::bad_request("accountId is required"))?;
    let change: AccountChange = request.json()?;
    let account = app
        .accounts()
        .update(&Actor::Account(admin), &id, change)
        .await?;
    Ok(web::json(200, &AccountView::from(&account)))
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = web::init_app().await;
    web::serve(web::DEFAULT_BODY_LIMIT, |request| handle(&app, request)).await
}
