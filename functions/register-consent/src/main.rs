//! GET /api/users/register-consent/{applicationId} and /api/v3/... (verified HAT token): the
//! HAT's owner consented to the application's current version; recorded on the HAT's chain.

use dex::DexResult;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let hat = app.verify_hat(request.auth_token()).await?;
    let id = request.path("applicationId")?;
    let consent = app.apps().consent(&hat.address, &id).await?;
    Ok(web::json(
        StatusCode::OK,
        &serde_json::json!({
            "message": "consent recorded",
            "applicationId": consent.application_id,
            "version": consent.version,
            "hat": consent.hat,
        }),
    ))
}

dex_lambda::lambda_main!(handle, needs: TABLE);
