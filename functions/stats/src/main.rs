//! GET /stats (public): the ecosystem figures, from their snapshot (lag: README).

use dex::DexResult;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, _request: ApiRequest) -> DexResult<HttpResponse> {
    Ok(web::json_bytes(
        StatusCode::OK,
        &app.public_stats().figures().await?,
    ))
}

dex_lambda::lambda_main!(handle, needs: TABLE);
