//! GET /.well-known/jwks.json: DEX's current and previous public keys.

use dex::web::{self, ApiRequest, HttpResponse, StatusCode};
use dex::{App, DexResult};

async fn handle(app: &App, _request: ApiRequest) -> DexResult<HttpResponse> {
    let mut response = web::json(StatusCode::OK, &app.tokens().jwks().await?);
    response.headers_mut().insert(
        "cache-control",
        "public, max-age=300".parse().expect("static header"),
    );
    Ok(response)
}

dex::lambda_main!(handle);
