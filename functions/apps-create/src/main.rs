//! POST /api/{v1.1,v3}/applications and /api/applications (an admin, or `developer:<id>` when
//! the body's `developer.id` is that id): a new application, unpublished, 201.

use dex::DexResult;
use dex::accounts::Actor;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let caller = app.accounts().authenticate(request.auth_token()).await?;
    let body: serde_json::Value = request.json()?;
    let created = app.apps().create(&Actor::Account(caller), body).await?;
    Ok(web::json(StatusCode::CREATED, &created.doc))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
