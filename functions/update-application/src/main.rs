//! POST /api/users/update-application?cluster=&hatFilter=&cursor= (admin): the legacy
//! `HatService` body pushed to the selected HATs of a certified cluster, per-HAT results and
//! `next` to continue (docs/decisions.md §13 "update-application").

use dex::DexResult;
use dex::hats::push::PushRequest;
use dex::roles::Role;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse, StatusCode};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    app.authorize(request.auth_token(), &Role::Admin).await?;
    let (cluster, hat_filter, cursor) = (
        request.query("cluster"),
        request.query("hatFilter"),
        request.query("cursor"),
    );
    let answer = app
        .pushes()
        .push(
            &app.hat_calls()?,
            PushRequest {
                cluster: cluster.as_deref(),
                hat_filter: hat_filter.as_deref(),
                cursor: cursor.as_deref(),
                body: request.body(),
            },
        )
        .await?;
    Ok(web::json(StatusCode::OK, &answer))
}

dex_lambda::lambda_main!(handle, needs: TABLE | SIGNING_KEYS | HATS);
