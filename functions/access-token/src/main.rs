//! GET /api/users/access_token (and /api/v3/...): username/password headers → DEX token.

use dex::{DexError, DexResult};
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let (Some(username), Some(password)) = (
        request.decoded_header("username"),
        request.decoded_header("password"),
    ) else {
        return Err(DexError::Unauthorized(
            "username and password headers are required".into(),
        ));
    };
    let (token, account) = app
        .logins()
        .login_from(&username, &password, request.source_ip())
        .await?;
    let mut response = web::json(
        StatusCode::OK,
        &serde_json::json!({ "accessToken": token, "userId": account.account_id }),
    );
    response
        .headers_mut()
        .insert("x-auth-token", token.parse().map_err(DexError::internal)?);
    Ok(web::no_store(response))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
