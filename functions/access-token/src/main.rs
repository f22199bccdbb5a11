//! GET /api/users/access_token (and /api/v3/...): username/password headers → DEX token.

use dex::web::{self, ApiRequest, HttpResponse};
use dex::{App, DexError, DexResult};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let (Some(username), Some(password)) = (
        request.decoded_header("username"),
        request.decoded_header("password"),
    ) else {
        return Err(DexError::Unauthorized(
            "username and password headers are required".into(),
        ));
    };
    let lifetime = app.config.token_lifetime.as_secs() as i64;
    let (token, account) = app
        .accounts()
        .login(
            &app.keys,
            &app.config.public_url,
            lifetime,
            &username,
            &password,
        )
        .await?;
    let mut response = web::json(
        200,
        &serde_json::json!({ "accessToken": token, "userId": account.account_id }),
    );
    response
        .headers_mut()
        .insert("x-auth-token", token.parse().map_err(DexError::internal)?);
    Ok(web::no_store(response))
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = web::init_app().await;
    web::serve(web::DEFAULT_BODY_LIMIT, |request| handle(&app, request)).await
}
