//! POST /api/users/registerHat (and /api/v3/...): unauthenticated HAT registration; a
//! provisioner's token additionally allows replacing a registered HAT's key.

use dex::hats::register::RegisterHat;
use dex::web::{self, ApiRequest, HttpResponse, StatusCode};
use dex::{App, DexResult};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let body: RegisterHat = request.json()?;
    let (hat, outcome) = app
        .registration()?
        .register(body, request.auth_token())
        .await?;
    Ok(web::json(
        StatusCode::OK,
        &serde_json::json!({ "message": outcome.message(), "hatAddress": hat.address }),
    ))
}

dex::lambda_main!(handle);
