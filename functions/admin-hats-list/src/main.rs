//! GET /api/admin/hats?cluster= (admin): registered HATs with key fingerprint, paginated.

use dex::hats::{HatStore, HatView};
use dex::page::PageRequest;
use dex::roles::Role;
use dex::web::{self, ApiRequest, HttpResponse};
use dex::{App, DexResult};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    app.authorize(request.auth_token(), &Role::Admin).await?;
    let page = PageRequest::parse(
        request.query("limit").as_deref(),
        request.query("cursor").as_deref(),
    )?;
    let page = app
        .store
        .list_hats(request.query("cluster").as_deref(), page)
        .await?;
    let items: Vec<HatView> = page.items.iter().map(HatView::from).collect();
    Ok(web::json(
        200,
        &serde_json::json!({ "items": items, "cursor": page.cursor }),
    ))
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = web::init_app().await;
    web::serve(web::DEFAULT_BODY_LIMIT, |request| handle(&app, request)).await
}
