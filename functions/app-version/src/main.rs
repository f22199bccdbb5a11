//! POST /api/{v1.1,v3,}/applications/{applicationId}/versions (its developer or an admin): a
//! new version, greater than the current one, 201; the old one stays in the history.

use dex::DexResult;
use dex::accounts::Actor;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let caller = app.accounts().authenticate(request.auth_token()).await?;
    let id = request.path("applicationId")?;
    let body: serde_json::Value = request.json()?;
    let versioned = app
        .apps()
        .new_version(&Actor::Account(caller), &id, body)
        .await?;
    Ok(web::json(StatusCode::CREATED, &versioned.doc))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
