//! GET /api/{v2,v2.6,v3}/offers (public): the approved, satisfied and oversubscribed
//! offers, newest first.

use dex::DexResult;
use dex::offers::OfferView;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, _request: ApiRequest) -> DexResult<HttpResponse> {
    let offers = app.offers().listed().await?;
    let views: Vec<OfferView> = offers.iter().map(OfferView::from).collect();
    Ok(web::json(StatusCode::OK, &views))
}

dex_lambda::lambda_main!(handle, needs: TABLE);
