//! GET /api/dataplugs/{dataplugId}/connect?hat=<address> (the plug's owner or an admin):
//! the plug's user made or re-enabled on the HAT, then the connection recorded.

use dex::DexResult;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let caller = app.accounts().authenticate(request.auth_token()).await?;
    let id = request.path("dataplugId")?;
    let hat = request.query("hat");
    let (_, message) = app
        .plugs()
        .connect(&app.hat_calls()?, &caller, &id, hat.as_deref())
        .await?;
    Ok(web::json(
        StatusCode::OK,
        &serde_json::json!({ "message": message }),
    ))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS | HATS);
