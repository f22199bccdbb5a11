//! PUT /api/{v1.1,v3,}/applications/developer: the caller's `ApplicationDeveloper` profile
//! (its id the caller's developer id; any for admins), shown in its applications.

use dex::DexResult;
use dex::accounts::Actor;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let caller = app.accounts().authenticate(request.auth_token()).await?;
    let body: serde_json::Value = request.json()?;
    let profile = app
        .apps()
        .developer_profile(&Actor::Account(caller), body)
        .await?;
    Ok(web::json(StatusCode::OK, &profile))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
