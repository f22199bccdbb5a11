//! POST /api/users/registerHat (and /api/v3/...): unauthenticated HAT registration; a
//! provisioner's token additionally allows replacing a registered HAT's key.

use dex::hats::register::RegisterHat;
use dex::web::{self, ApiRequest, HttpResponse};
use dex::{App, DexResult};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let body: RegisterHat = request.json()?;
    let (hat, outcome) = app
        .registration()
        .register(body, request.auth_token())
        .await?;
    Ok(web::json(
        200,
        &serde_json::json!({ "message": outcome.message(), "hatAddress": hat.address }),
    ))
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = web::init_app().await;
    web::serve(web::DEFAULT_BODY_LIMIT, |request| handle(&app, request)).await
}
