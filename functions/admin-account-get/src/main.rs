//! GET /api/admin/accounts/{accountId} (admin).

use dex::accounts::AccountView;
use dex::roles::Role;
use dex::web::{self, ApiRequest, HttpResponse};
use dex::{App, DexError, DexResult};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    app.authorize(request.auth_token(), &Role::Admin).await?;
    let id = request
        .path_param("accountId")
        .ok_or_else(|| DexError::bad_request("accountId is required"))?;
    let account = app.accounts().get(&id).await?;
    Ok(web::json(200, &AccountView::from(&account)))
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = web::init_app().await;
    web::serve(web::DEFAULT_BODY_LIMIT, |request| handle(&app, request)).await
}
