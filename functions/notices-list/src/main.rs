//! GET /api/notices (verified HAT token): the notices addressed to the calling HAT, newest
//! first, `[{"notice", "received", "read"?}]`.

use dex::DexResult;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let hat = app.verify_hat(request.auth_token()).await?;
    let items = app.notices().for_hat(&hat).await?;
    Ok(web::json(StatusCode::OK, &items))
}

dex_lambda::lambda_main!(handle, needs: TABLE);
