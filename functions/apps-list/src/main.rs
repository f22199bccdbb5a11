//! GET /api/v1.1/applications and /api/applications (bare arrays) and /api/v3/applications
//! (a `PayloadWrapper`, paged by `startId`/`limit`, filtered by `kind`); public. Published
//! applications, `unpublished=true` adds unpublished ones; never suspended ones. `ETag`.

use dex::DexResult;
use dex::apps::ListQuery;
use dex::apps::service::payload_wrapper;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let v3 = request.uri_path().starts_with("/api/v3/");
    let query = if v3 {
        ListQuery::parse(
            request.query("unpublished").as_deref(),
            request.query("kind").as_deref(),
            request.query("startId").as_deref(),
            request.query("limit").as_deref(),
        )?
    } else {
        // v1.1 and unversioned: the whole list, whatever else the query says.
        ListQuery::parse(request.query("unpublished").as_deref(), None, None, None)?
    };
    let page = app.apps().list(&query).await?;
    Ok(if v3 {
        web::json_with_etag(&request, &payload_wrapper(&page, &query))
    } else {
        let docs: Vec<&serde_json::Value> = page.apps.iter().map(|a| &a.doc).collect();
        web::json_with_etag(&request, &docs)
    })
}

dex_lambda::lambda_main!(handle, needs: TABLE);
