//! GET /api/admin/clusters (admin): every cluster, certified or not (never a password).

use dex::hats::{ClusterStore, ClusterView};
use dex::roles::Role;
use dex::web::{self, ApiRequest, HttpResponse};
use dex::{App, DexResult};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    app.authorize(request.auth_token(), &Role::Admin).await?;
    let clusters = app.store.list_clusters().await?;
    let items: Vec<ClusterView> = clusters.iter().map(ClusterView::from).collect();
    Ok(web::json(200, &serde_json::json!({ "items": items })))
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = web::init_app().await;
    web::serve(web::DEFAULT_BODY_LIMIT, |request| handle(&app, request)).await
}
