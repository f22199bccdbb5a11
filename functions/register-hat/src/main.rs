//! POST /api/users/registerHat (and /api/v3/...): unauthenticated HAT registration; a
//! provisioner's token additionally allows replacing a registered HAT's key.

use dex::DexResult;
use dex::hats::register::RegisterHat;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

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

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS | HATS);
