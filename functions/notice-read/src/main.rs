//! PUT /api/notices/{noticeId}/read (verified HAT token): marks a notice addressed to the
//! calling HAT read (404 otherwise); the first read time stays.

use dex::DexResult;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let hat = app.verify_hat(request.auth_token()).await?;
    let id = request.path("noticeId")?;
    let item = app.notices().mark_read(&hat, &id).await?;
    Ok(web::json(StatusCode::OK, &item))
}

dex_lambda::lambda_main!(handle, needs: TABLE);
