//! GET /api/hat/log (verified HAT token): the calling HAT's own history, oldest first, with
//! each entry's hash and previous hash so the HAT can check nothing was altered.

use dex::DexResult;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let hat = app.verify_hat(request.auth_token()).await?;
    let page = app.log().history(&hat.subject(), request.page()?).await?;
    Ok(web::json(
        StatusCode::OK,
        &serde_json::json!({ "hatAddress": hat.address, "items": page.items, "cursor": page.cursor }),
    ))
}

dex_lambda::lambda_main!(handle, needs: TABLE);
