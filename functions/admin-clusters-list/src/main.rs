//! GET /api/admin/clusters (admin): every cluster, certified or not (never a password).

use dex::DexResult;
use dex::hats::ClusterView;
use dex::roles::Role;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    app.authorize(request.auth_token(), &Role::Admin).await?;
    let clusters = app.clusters().list().await?;
    let items: Vec<ClusterView> = clusters.iter().map(ClusterView::from).collect();
    Ok(web::json(
        StatusCode::OK,
        &serde_json::json!({ "items": items }),
    ))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
