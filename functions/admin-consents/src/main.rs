//! GET /api/admin/consents?hat=&applicationId= (admin): the consents recorded, newest first,
//! paginated.

use dex::DexResult;
use dex::roles::Role;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    app.authorize(request.auth_token(), &Role::Admin).await?;
    let page = request.page()?;
    let hat = request.query("hat");
    let application = request.query("applicationId");
    let consents = app
        .apps()
        .consents(hat.as_deref(), application.as_deref(), page)
        .await?;
    Ok(web::page(StatusCode::OK, &consents, |c| c))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
