//! PUT /api/{v2,v2.6,v3}/offer/{offerId}/registerClaim?hat= (the owner or an admin): claims
//! the offer for a registered HAT, as the HAT's own claim does. 200 `OfferClaimSummary`.

use dex::DexResult;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let caller = app.accounts().authenticate(request.auth_token()).await?;
    let id = request.path("offerId")?;
    let hat = request.query("hat");
    let claim = app
        .offers()
        .register_claim(&app.hat_calls()?, &caller, &id, hat.as_deref())
        .await?;
    Ok(web::json(StatusCode::OK, &claim))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS | HATS);
