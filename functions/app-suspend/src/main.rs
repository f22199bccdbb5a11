//! GET /api/{v1.1,v3,}/applications/{applicationId}/suspend (its developer or an admin):
//! hidden from every list, fetch and consent until published again; 200 with the
//! Application.

use dex::DexResult;
use dex::accounts::Actor;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let caller = app.accounts().authenticate(request.auth_token()).await?;
    let id = request.path("applicationId")?;
    let suspended = app.apps().suspend(&Actor::Account(caller), &id).await?;
    Ok(web::json(StatusCode::OK, &suspended.doc))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
