//! PUT /api/{v2,v2.6,v3}/offer/{offerId}?status= (the owner between draft and approved, an
//! admin any status): 200 `Offer`.

use dex::DexResult;
use dex::offers::OfferView;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let caller = app.accounts().authenticate(request.auth_token()).await?;
    let id = request.path("offerId")?;
    let status = request.query("status");
    let offer = app
        .offers()
        .set_status(&caller, &id, status.as_deref())
        .await?;
    Ok(web::json(StatusCode::OK, &OfferView::from(&offer)))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
