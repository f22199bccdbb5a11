//! POST /stats/available-data/descriptions (admin): merge descriptions, answer the tree.

use dex::DexResult;
use dex::accounts::Actor;
use dex::roles::Role;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let admin = app.authorize(request.auth_token(), &Role::Admin).await?;
    let tree = app
        .stats()
        .describe(&Actor::Account(admin), request.body())
        .await?;
    Ok(web::json(StatusCode::OK, &tree))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
