//! PUT /api/admin/dataplugs/{dataplugId} (admin): approve, unapprove or change a data plug.

use dex::DexResult;
use dex::accounts::Actor;
use dex::plugs::DataPlugView;
use dex::plugs::service::PlugChange;
use dex::roles::Role;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let admin = app.authorize(request.auth_token(), &Role::Admin).await?;
    let id = request.path("dataplugId")?;
    let change: PlugChange = request.json()?;
    let plug = app
        .plugs()
        .update(&Actor::Account(admin), &id, change)
        .await?;
    Ok(web::json(StatusCode::OK, &DataPlugView::from(&plug)))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
