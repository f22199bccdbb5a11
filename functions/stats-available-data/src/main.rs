//! GET /stats/available-data (public): the NamespaceStructure tree with counts and
//! descriptions.

use dex::web::{self, ApiRequest, HttpResponse, StatusCode};
use dex::{App, DexResult};

async fn handle(app: &App, _request: ApiRequest) -> DexResult<HttpResponse> {
    Ok(web::json(
        StatusCode::OK,
        &app.stats().available_data().await?,
    ))
}

dex::lambda_main!(handle);
