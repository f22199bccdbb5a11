//! GET /api/{v2,v2.6,v3}/offer/{offerId}/claim (verified HAT token): the HAT claims the
//! offer; DEX sets the credential user and the data debit up on it first. 200
//! `OfferClaimSummary`.

use dex::DexResult;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let hat = app.verify_hat(request.auth_token()).await?;
    let id = request.path("offerId")?;
    let claim = app
        .offers()
        .claim_by_hat(&app.hat_calls()?, &hat, &id)
        .await?;
    Ok(web::json(StatusCode::OK, &claim))
}

dex_lambda::lambda_main!(handle, needs: TABLE | HATS);
