//! GET /api/admin/clusters (admin): every cluster, certified or not (never a password).

use dex::hats::ClusterView;
use dex::roles::Role;
use dex::web::{self, ApiRequest, HttpResponse, StatusCode};
use dex::{App, DexResult};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    app.authorize(request.auth_token(), &Role::Admin).await?;
    let clusters = app.clusters().list().await?;
    let items: Vec<ClusterView> = clusters.iter().map(ClusterView::from).collect();
    Ok(web::json(
        StatusCode::OK,
        &serde_json::json!({ "items": items }),
    ))
}

dex::lambda_main!(handle);
