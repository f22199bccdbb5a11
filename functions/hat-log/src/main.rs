//! GET /api/hat/log (verified HAT token): the calling HAT's own history, oldest first, with
//! each entry's hash and previous hash so the HAT can check nothing was altered.

use dex::page::PageRequest;
use dex::txlog::LogStore;
use dex::web::{self, ApiRequest, HttpResponse};
use dex::{App, DexResult};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let hat = app.verify_hat(request.auth_token()).await?;
    let page = PageRequest::parse(
        request.query("limit").as_deref(),
        request.query("cursor").as_deref(),
    )?;
    let page = app.store.subject_history(&hat.subject(), page).await?;
    Ok(web::json(
        200,
        &serde_json::json!({ "hatAddress": hat.address, "items": page.items, "cursor": page.cursor }),
    ))
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = web::init_app().await;
    web::serve(web::DEFAULT_BODY_LIMIT, |request| handle(&app, request)).await
}
