//! GET /stats/available-data (public): the NamespaceStructure tree with counts and
//! descriptions.

use dex::web::{self, ApiRequest, HttpResponse};
use dex::{App, DexResult};

async fn handle(app: &App, _request: ApiRequest) -> DexResult<HttpResponse> {
    Ok(web::json(200, &app.stats().available_data().await?))
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = web::init_app().await;
    web::serve(web::DEFAULT_BODY_LIMIT, |request| handle(&app, request)).await
}
