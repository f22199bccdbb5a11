//! POST /api/admin/accounts (admin): create an account.

use dex::DexResult;
use dex::accounts::{AccountView, Actor, NewAccount};
use dex::roles::Role;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let admin = app.authorize(request.auth_token(), &Role::Admin).await?;
    let new: NewAccount = request.json()?;
    let account = app.accounts().create(&Actor::Account(admin), new).await?;
    Ok(web::json(StatusCode::CREATED, &AccountView::from(&account)))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
