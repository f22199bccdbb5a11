//! GET /api/dataplugs (public): the approved data plugs with their providers; every
//! `passwordHash` and `password` is an empty string.

use dex::DexResult;
use dex::plugs::PlugListing;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, _request: ApiRequest) -> DexResult<HttpResponse> {
    let plugs = app.plugs().approved().await?;
    let listing: Vec<PlugListing> = plugs.iter().map(PlugListing::from).collect();
    Ok(web::json(StatusCode::OK, &listing))
}

dex_lambda::lambda_main!(handle, needs: TABLE);
