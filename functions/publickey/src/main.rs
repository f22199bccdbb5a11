//! GET /publickey: DEX's current public key as SPKI PEM (the HATs' own convention).

use dex::DexResult;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, _request: ApiRequest) -> DexResult<HttpResponse> {
    let pem = app.tokens().public_pem().await?;
    Ok(web::text(StatusCode::OK, "text/plain; charset=utf-8", pem))
}

dex_lambda::lambda_main!(handle, needs: SIGNING_KEYS);
