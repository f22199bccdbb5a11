//! GET /api/{v2,v2.6,v3}/offer/{offerId}/claims (the owner or an admin): the offer's HAT
//! credentials (the password opened) and its confirmed claims once `requiredMinUser` were
//! confirmed. The one answer that carries a password: never cached, never logged.

use dex::DexResult;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let caller = app.accounts().authenticate(request.auth_token()).await?;
    let id = request.path("offerId")?;
    let info = app.offers().claims(&caller, &id).await?;
    Ok(web::no_store(web::json(StatusCode::OK, &info)))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
