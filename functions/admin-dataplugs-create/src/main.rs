//! POST /api/admin/dataplugs (admin): register a data plug (unapproved; only the bcrypt hash
//! of its password is kept).

use dex::DexResult;
use dex::accounts::Actor;
use dex::plugs::DataPlugView;
use dex::plugs::service::NewPlug;
use dex::roles::Role;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let admin = app.authorize(request.auth_token(), &Role::Admin).await?;
    let new: NewPlug = request.json()?;
    let plug = app.plugs().register(&Actor::Account(admin), new).await?;
    Ok(web::json(StatusCode::CREATED, &DataPlugView::from(&plug)))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS);
