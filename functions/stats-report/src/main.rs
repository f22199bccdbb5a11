//! POST /stats/report (verified HAT token): a batch of DataStats, counted exactly once.

use dex::web::{self, ApiRequest, HttpResponse};
use dex::{App, DexResult};

/// 1000 items of a few KiB each: well above what a HAT sends, below Lambda's 6 MB payload.
const REPORT_BODY_LIMIT: usize = 5 * 1024 * 1024;

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let hat = app.verify_hat(request.auth_token()).await?;
    let response = app.stats().report(&hat, request.body()).await?;
    Ok(web::json(200, &response))
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = web::init_app().await;
    web::serve(REPORT_BODY_LIMIT, |request| handle(&app, request)).await
}
