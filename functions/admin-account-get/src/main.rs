//! GET /api/admin/accounts/{accountId} (admin).

use dex::accounts::AccountView;
use dex::roles::Role;
use dex::web::{self, ApiRequest, HttpResponse, StatusCode};
use dex::{App, DexResult};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    app.authorize(request.auth_token(), &Role::Admin).await?;
    let id = request.path("accountId")?;
    let account = app.accounts().get(&id).await?;
    Ok(web::json(StatusCode::OK, &AccountView::from(&account)))
}

dex::lambda_main!(handle);
