//! The floor `make bench` measures the DEX functions against (issue 8 §2): a hello-world
//! `lambda_http` function, the same runtime and release profile and nothing else, so what a
//! DEX function costs beyond it is DEX's own init and work.

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_request: Request| async {
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from(r#"{"hello":"world"}"#))
            .map_err(Error::from)
    }))
    .await
}
