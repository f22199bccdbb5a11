//! POST /stats/available-data/descriptions (admin): merge descriptions, answer the tree.

use dex::roles::Role;
use dex::web::{self, ApiRequest, HttpResponse};
use dex::{App, DexResult};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let admin = app.authorize(request.auth_token(), &Role::Admin).await?;
    let tree = app
        .stats()
        .describe(&admin.subject(), request.body())
        .await?;
    Ok(web::json(200, &tree))
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = web::init_app().await;
    web::serve(web::DEFAULT_BODY_LIMIT, |request| handle(&app, request)).await
}
