//! GET /stats/available-data (public): the NamespaceStructure tree with counts and
//! descriptions, from its snapshot (lag: README).

use dex::DexResult;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, _request: ApiRequest) -> DexResult<HttpResponse> {
    Ok(web::json_bytes(
        StatusCode::OK,
        &app.public_stats().available_data().await?,
    ))
}

dex_lambda::lambda_main!(handle, needs: TABLE);
