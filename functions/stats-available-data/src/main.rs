//! GET /stats/available-data (public): the NamespaceStructure tree with counts and
//! descriptions, from its snapshot (lag: README).

use dex::web::{self, ApiRequest, HttpResponse, StatusCode};
use dex::{App, DexResult};

async fn handle(app: &App, _request: ApiRequest) -> DexResult<HttpResponse> {
    Ok(web::json_bytes(
        StatusCode::OK,
        &app.public_stats().available_data().await?,
    ))
}

dex::lambda_main!(handle);
