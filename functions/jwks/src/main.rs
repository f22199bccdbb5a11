//! GET /.well-known/jwks.json: DEX's current and previous public keys.

use dex::DexResult;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, _request: ApiRequest) -> DexResult<HttpResponse> {
    let mut response = web::json(StatusCode::OK, &app.tokens().jwks().await?);
    response.headers_mut().insert(
        "cache-control",
        "public, max-age=300".parse().expect("static header"),
    );
    Ok(response)
}

dex_lambda::lambda_main!(handle, needs: SIGNING_KEYS);
