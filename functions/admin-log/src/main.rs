//! GET /api/admin/log (admin): the transaction log by subject, actor, kind and time range.

use dex::DexResult;
use dex::roles::Role;
use dex::txlog::LogFilter;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    app.authorize(request.auth_token(), &Role::Admin).await?;
    let filter = LogFilter::parse(
        request.query("subject"),
        request.query("actor"),
        request.query("kind"),
        request.query("from").as_deref(),
        request.query("to").as_deref(),
    )?;
    let page = app.log().query(&filter, request.page()?).await?;
    Ok(web::json(StatusCode::OK, &page))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
