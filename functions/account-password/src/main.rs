//! PUT /api/users/password (the account itself, with its current password) and
//! PUT /api/admin/accounts/{accountId}/password (admin): set a new password. Every token the
//! account had stops working; the answer is the account.

use dex::DexResult;
use dex::accounts::{AccountView, Actor, PasswordChange};
use dex::roles::Role;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let (actor, id) = match request.path_param("accountId") {
        Some(id) => {
            let admin = app.authorize(request.auth_token(), &Role::Admin).await?;
            (Actor::Account(admin), id)
        }
        None => {
            let me = app.accounts().authenticate(request.auth_token()).await?;
            let id = me.account_id.clone();
            (Actor::Account(me), id)
        }
    };
    let change: PasswordChange = request.json()?;
    let account = app.accounts().change_password(&actor, &id, change).await?;
    Ok(web::json(StatusCode::OK, &AccountView::from(&account)))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
