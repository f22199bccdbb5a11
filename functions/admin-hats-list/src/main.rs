//! GET /api/admin/hats?cluster= (admin): registered HATs with key fingerprint, paginated.

use dex::DexResult;
use dex::hats::HatView;
use dex::roles::Role;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    app.authorize(request.auth_token(), &Role::Admin).await?;
    let page = request.page()?;
    let page = app
        .clusters()
        .hats(request.query("cluster").as_deref(), page)
        .await?;
    Ok(web::page(StatusCode::OK, &page, HatView::from))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
