//! POST /stats/report (verified HAT token): a batch of DataStats, counted exactly once.

use dex::DexResult;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

/// 1000 items of a few KiB each: well above what a HAT sends, below Lambda's 6 MB payload.
const REPORT_BODY_LIMIT: usize = 5 * 1024 * 1024;

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let response = app
        .report_stats(request.auth_token(), request.body())
        .await?;
    Ok(web::json(StatusCode::OK, &response))
}

dex_lambda::lambda_main!(handle, needs: TABLE, body_limit: REPORT_BODY_LIMIT);
