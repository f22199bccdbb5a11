//! POST /api/{v2,v2.6,v3}/offer (`marketplace`): registers an offer owned by the caller, as
//! a draft, with its HAT credentials (the password kept only sealed); 201 `Offer`.

use dex::DexResult;
use dex::offers::{OfferRegistration, OfferView};
use dex::roles::Role;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let buyer = app
        .authorize(request.auth_token(), &Role::Marketplace)
        .await?;
    let registration: OfferRegistration = request.json()?;
    let offer = app.offers().register(&buyer, registration).await?;
    Ok(web::json(StatusCode::CREATED, &OfferView::from(&offer)))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
