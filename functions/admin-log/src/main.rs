//! GET /api/admin/log (admin): the transaction log by subject, actor, kind and time range.

use dex::roles::Role;
use dex::time::parse_instant_param;
use dex::txlog::LogFilter;
use dex::web::{self, ApiRequest, HttpResponse, StatusCode};
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
            .map(parse_instant_param)
            .transpose()?,
        to: request
            .query("to")
            .as_deref()
            .map(parse_instant_param)
            .transpose()?,
    };
    let page = app.log().query(&filter, request.page()?).await?;
    Ok(web::json(StatusCode::OK, &page))
}

dex::lambda_main!(handle);
