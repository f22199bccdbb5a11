//! GET /stats (public): the ecosystem figures.

use dex::web::{self, ApiRequest, HttpResponse, StatusCode};
use dex::{App, DexResult};

async fn handle(app: &App, _request: ApiRequest) -> DexResult<HttpResponse> {
    Ok(web::json(StatusCode::OK, &app.stats().figures().await?))
}

dex::lambda_main!(handle);
