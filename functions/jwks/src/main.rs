//! GET /.well-known/jwks.json: DEX's current and previous public keys.

use dex::web::{self, ApiRequest, HttpResponse};
use dex::{App, DexResult};

async fn handle(app: &App, _request: ApiRequest) -> DexResult<HttpResponse> {
    let mut response = web::json(200, &app.keys.ring().await?.jwks());
    response.headers_mut().insert(
        "cache-control",
        "public, max-age=300".parse().expect("static header"),
    );
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = web::init_app().await;
    web::serve(web::DEFAULT_BODY_LIMIT, |request| handle(&app, request)).await
}
