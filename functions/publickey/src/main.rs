//! GET /publickey: DEX's current public key as SPKI PEM (the HATs' own convention).

use dex::web::{self, ApiRequest, HttpResponse};
use dex::{App, DexResult};

async fn handle(app: &App, _request: ApiRequest) -> DexResult<HttpResponse> {
    let pem = app.keys.ring().await?.current().public_pem.clone();
    Ok(web::text(200, "text/plain; charset=utf-8", pem))
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = web::init_app().await;
    web::serve(web::DEFAULT_BODY_LIMIT, |request| handle(&app, request)).await
}
