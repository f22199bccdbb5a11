//! POST /api/notices (admin): a notice with its target (absent or empty: every HAT); 200 with
//! the `Notice`, its `id` the next from 1.

use dex::DexResult;
use dex::accounts::Actor;
use dex::notices::NewNotice;
use dex::roles::Role;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let admin = app.authorize(request.auth_token(), &Role::Admin).await?;
    let new: NewNotice = request.json()?;
    let notice = app.notices().post(&Actor::Account(admin), new).await?;
    Ok(web::json(StatusCode::OK, &notice))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
