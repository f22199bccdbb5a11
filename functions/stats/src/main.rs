//! GET /stats (public): the ecosystem figures, from their snapshot (lag: README).

use dex::web::{self, ApiRequest, HttpResponse, StatusCode};
use dex::{App, DexResult};

async fn handle(app: &App, _request: ApiRequest) -> DexResult<HttpResponse> {
    Ok(web::json_bytes(
        StatusCode::OK,
        &app.public_stats().figures().await?,
    ))
}

dex::lambda_main!(handle);
