//! GET /.well-known/jwks.json: DEX's current and previous public keys.

use dex::DexResult;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, _request: ApiRequest) -> DexResult<HttpResponse> {
    let ring = app.tokens().published().await?;
    let mut response = web::json(StatusCode::OK, &ring.jwks());
    // A new deployment publishes no key until its first login: caches must not keep that.
    let cache = if ring.keys.is_empty() {
        "no-store"
    } else {
        "public, max-age=300"
    };
    response
        .headers_mut()
        .insert("cache-control", cache.parse().expect("static header"));
    Ok(response)
}

dex_lambda::lambda_main!(handle, needs: SIGNING_KEYS);
