//! GET /publickey: DEX's current public key as SPKI PEM (the HATs' own convention).

use dex::web::{self, ApiRequest, HttpResponse, StatusCode};
use dex::{App, DexResult};

async fn handle(app: &App, _request: ApiRequest) -> DexResult<HttpResponse> {
    let pem = app.tokens().public_pem().await?;
    Ok(web::text(StatusCode::OK, "text/plain; charset=utf-8", pem))
}

dex::lambda_main!(handle);
