//! GET /api/admin/log (admin): the transaction log by subject, actor, kind and time range.

use dex::DexResult;
use dex::roles::Role;
use dex::time::parse_instant_param;
use dex::txlog::LogFilter;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

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

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
