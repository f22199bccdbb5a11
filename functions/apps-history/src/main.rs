//! GET /api/{v1.1,v3,}/applications-history (public): `[{"current", "history": [older
//! versions, newest first]}]`, a bare array on every prefix, published applications unless
//! `unpublished=true`, never suspended ones. `ETag`.

use dex::DexResult;
use dex::apps::service::parse_unpublished;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let unpublished = parse_unpublished(request.query("unpublished").as_deref())?;
    let history = app.apps().history(unpublished).await?;
    Ok(web::json_with_etag(&request, &history))
}

dex_lambda::lambda_main!(handle, needs: TABLE);
