//! GET /api/{v2,v2.6,v3}/offer/{offerId}/userClaim (verified HAT token): the HAT's own
//! claim of the offer, or 404.

use dex::DexResult;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let hat = app.verify_hat(request.auth_token()).await?;
    let id = request.path("offerId")?;
    let claim = app.offers().user_claim(&hat, &id).await?;
    Ok(web::json(StatusCode::OK, &claim))
}

dex_lambda::lambda_main!(handle, needs: TABLE);
