//! GET /api/admin/log (admin): the transaction log by subject, actor, kind and time range.

use dex::page::PageRequest;
use dex::roles::Role;
use dex::txlog::LogFilter;
use dex::txlog::LogStore;
use dex::web::{self, ApiRequest, HttpResponse};
use dex::{App, DexResult};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    app.authorize(request.auth_token(), &Role::Admin).await?;
    let filter = LogFilter {
        subject: request.query("subject"),
        actor: request.query("actor"),
        kind: request.query("kind"),
        from: request
            .query("from")
            .as_deref()
            .map(dex::time::parse_instant_param)
            .transpose()?,
        to: request
            .query("to")
            .as_deref()
            .map(dex::time::parse_instant_param)
            .transpose()?,
    };
    let page = PageRequest::parse(
        request.query("limit").as_deref(),
        request.query("cursor").as_deref(),
    )?;
    let page = app.store.query_log(&filter, page).await?;
    Ok(web::json(
        200,
        &serde_json::json!({ "items": page.items, "cursor": page.cursor }),
    ))
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = web::init_app().await;
    web::serve(web::DEFAULT_BODY_LIMIT, |request| handle(&app, request)).await
}
