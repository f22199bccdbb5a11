//! PUT /api/{v1.1,v3,}/applications/{applicationId} (its developer or an admin): replaces the
//! current version's content, same version, publication kept.

use dex::DexResult;
use dex::accounts::Actor;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let caller = app.accounts().authenticate(request.auth_token()).await?;
    let id = request.path("applicationId")?;
    let body: serde_json::Value = request.json()?;
    let replaced = app
        .apps()
        .replace(&Actor::Account(caller), &id, body)
        .await?;
    Ok(web::json(StatusCode::OK, &replaced.doc))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
