//! POST /api/admin/accounts (admin): create an account.

use dex::accounts::{AccountView, Actor, NewAccount};
use dex::roles::Role;
use dex::web::{self, ApiRequest, HttpResponse};
use dex::{App, DexResult};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let admin = app.authorize(request.auth_token(), &Role::Admin).await?;
    let new: NewAccount = request.json()?;
    let account = app.accounts().create(&Actor::Account(admin), new).await?;
    Ok(web::json(201, &AccountView::from(&account)))
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = web::init_app().await;
    web::serve(web::DEFAULT_BODY_LIMIT, |request| handle(&app, request)).await
}
