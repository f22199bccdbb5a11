//! GET /api/{v1.1,v3,}/applications/{applicationId} (public; `lang` ignored): the current
//! version, unpublished ones included; suspended or unknown 404. `ETag`.

use dex::DexResult;
use dex_lambda::App;
use dex_lambda::web::{self, ApiRequest, HttpResponse};

async fn handle(app: &App, request: ApiRequest) -> DexResult<HttpResponse> {
    let id = request.path("applicationId")?;
    // `.../applications/developer` is the developer-profile route (PUT only); API Gateway
    // matches a GET of it to this route, where it must be the 405 of an unsupported method.
    if id == "developer" {
        let mut response = web::error_response(&dex::DexError::MethodNotAllowed(
            "GET is not supported here; PUT stores the developer profile".into(),
        ));
        response
            .headers_mut()
            .insert("allow", web::HeaderValue::from_static("PUT"));
        return Ok(response);
    }
    let found = app.apps().get(&id).await?;
    Ok(web::json_with_etag(&request, &found.doc))
}

dex_lambda::lambda_main!(handle, needs: TABLE);
