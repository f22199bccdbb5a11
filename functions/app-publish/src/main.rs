//! GET /api/{v1.1,v3,}/applications/{applicationId}/publish (its developer or an admin):
//! published (and no longer suspended); 200 with the Application.

use dex::DexResult;
use dex::accounts::Actor;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let caller = app.accounts().authenticate(request.auth_token()).await?;
    let id = request.path("applicationId")?;
    let published = app.apps().publish(&Actor::Account(caller), &id).await?;
    Ok(web::json(StatusCode::OK, &published.doc))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
