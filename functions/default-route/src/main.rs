//! API Gateway's `$default` route (locally: the router's catch-all).
//!
//! Every request no canonical route matches lands here with its full path: a HAT or client
//! configured with a DEX address ending in `/` sends `//stats/report`, others `/stats/`.
//! This function normalises the path (runs of `/` collapse, a trailing `/` goes), finds the
//! canonical route and hands the request, rewritten as that route's event, to its function
//! (Lambda Invoke), so clients that do not follow redirects work too. A known path with a
//! method it does not serve answers 405 with `Allow`; anything else DEX's 404 `{"message",
//! "cause"}`. `HEAD` on a `GET` route is served by the `GET` function, without the body.
//!
//! Configuration (read once): `DEX_FUNCTION_PREFIX`, what precedes a function's name in its
//! deployed name (`<stack>-` on AWS, empty locally); `AWS_ENDPOINT_URL_LAMBDA` points the
//! Invoke calls at `cargo lambda watch` locally.

mod routes;

use std::collections::BTreeMap;

use aws_sdk_lambda::primitives::Blob;
use dex::DexError;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

/// Runs of `/` become one, a trailing `/` goes; never empty.
fn normalise(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    format!("/{}", segments.join("/"))
}

/// A canonical route that matched.
#[derive(Debug, PartialEq)]
struct Matched {
    method: &'static str,
    template: &'static str,
    function: &'static str,
    params: BTreeMap<String, String>,
}

fn params_of(template: &str, path: &str) -> Option<BTreeMap<String, String>> {
    let wanted: Vec<&str> = template.split('/').collect();
    let given: Vec<&str> = path.split('/').collect();
    if wanted.len() != given.len() {
        return None;
    }
    let mut params = BTreeMap::new();
    for (w, g) in wanted.iter().zip(&given) {
        if let Some(name) = w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
            params.insert(name.to_owned(), (*g).to_owned());
        } else if w != g {
            return None;
        }
    }
    Some(params)
}

/// The route for `method` on the normalised `path`; a `HEAD` falls back to the `GET` route.
fn find(method: &str, path: &str) -> Option<Matched> {
    let lookup = |wanted: &str| {
        routes::ROUTES.iter().find_map(|(m, template, function)| {
            (*m == wanted)
                .then(|| params_of(template, path))
                .flatten()
                .map(|params| Matched {
                    method: m,
                    template,
                    function,
                    params,
                })
        })
    };
    lookup(method).or_else(|| (method == "HEAD").then(|| lookup("GET")).flatten())
}

/// The event the canonical route would have received.
fn rewrite(mut event: Value, path: &str, matched: &Matched) -> Value {
    let route_key = format!("{} {}", matched.method, matched.template);
    event["rawPath"] = json!(path);
    event["routeKey"] = json!(route_key);
    if let Some(context) = event
        .get_mut("requestContext")
        .and_then(Value::as_object_mut)
    {
        context.insert("routeKey".into(), json!(route_key));
        if let Some(http) = context.get_mut("http").and_then(Value::as_object_mut) {
            http.insert("path".into(), json!(path));
            http.insert("method".into(), json!(matched.method));
        }
    }
    if let Some(object) = event.as_object_mut() {
        if matched.params.is_empty() {
            object.remove("pathParameters");
        } else {
            object.insert("pathParameters".into(), json!(matched.params));
        }
    }
    event
}

/// The methods the routes of `path` serve (with `HEAD` where `GET` is), for `Allow`.
fn allowed(path: &str) -> Vec<&'static str> {
    let mut methods: Vec<&'static str> = routes::ROUTES
        .iter()
        .filter(|(_, template, _)| params_of(template, path).is_some())
        .map(|(method, _, _)| *method)
        .collect();
    if methods.contains(&"GET") {
        methods.push("HEAD");
    }
    methods
}

fn error_response(status: u16, body: &impl serde::Serialize, retry_after: bool) -> Value {
    let mut headers = json!({"content-type": "application/json"});
    if retry_after {
        headers["retry-after"] = json!("1");
    }
    // Every field of the payload-2.0 response, as lambda_http writes them: API Gateway takes
    // fewer, but `cargo lambda watch` refuses a response without `cookies` (answering 500).
    json!({
        "statusCode": status,
        "headers": headers,
        "multiValueHeaders": {},
        "body": serde_json::to_string(body).unwrap_or_default(),
        "isBase64Encoded": false,
        "cookies": [],
    })
}

fn not_found(method: &str, raw_path: &str) -> Value {
    let err = DexError::NotFound(format!("no route for {method} {raw_path}"));
    error_response(err.status(), &err.body(), false)
}

fn method_not_allowed(method: &str, raw_path: &str, allow: &[&str]) -> Value {
    let err = DexError::MethodNotAllowed(format!(
        "{raw_path} answers {}, not {method}",
        allow.join(", ")
    ));
    let mut response = error_response(err.status(), &err.body(), false);
    response["headers"]["allow"] = json!(allow.join(", "));
    response
}

struct Router {
    lambda: aws_sdk_lambda::Client,
    prefix: String,
}

impl Router {
    async fn handle(&self, event: Value) -> Value {
        let method = event["requestContext"]["http"]["method"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let raw_path = event["rawPath"]
            .as_str()
            .or_else(|| event["requestContext"]["http"]["path"].as_str())
            .unwrap_or("/")
            .to_owned();
        let path = normalise(&raw_path);
        let Some(matched) = find(&method, &path) else {
            let allow = allowed(&path);
            // OPTIONS stays a 404 here: CORS preflights are API Gateway's to answer.
            if !allow.is_empty() && method != "OPTIONS" {
                tracing::info!(method, path = raw_path, status = 405, "method not allowed");
                return method_not_allowed(&method, &raw_path, &allow);
            }
            tracing::info!(method, path = raw_path, status = 404, "no route");
            return not_found(&method, &raw_path);
        };
        let head = method == "HEAD" && matched.method == "GET";
        let event = rewrite(event, &path, &matched);
        let mut response = self.invoke(matched.function, &event).await;
        if head && let Some(object) = response.as_object_mut() {
            object.insert("body".into(), json!(""));
            object.insert("isBase64Encoded".into(), json!(false));
        }
        tracing::info!(
            method,
            path = raw_path,
            canonical = path,
            function = matched.function,
            status = response["statusCode"].as_u64().unwrap_or_default(),
            "alias"
        );
        response
    }

    /// The canonical function's own response, as API Gateway would have passed it on.
    async fn invoke(&self, function: &str, event: &Value) -> Value {
        let name = format!("{}{function}", self.prefix);
        let payload = match serde_json::to_vec(event) {
            Ok(payload) => payload,
            Err(e) => return internal(&format!("cannot serialise the event: {e}")),
        };
        let result = self
            .lambda
            .invoke()
            .function_name(&name)
            .payload(Blob::new(payload))
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(e) => {
                tracing::error!(function = name, error = %aws_sdk_lambda::error::DisplayErrorContext(&e), "invoke failed");
                let body = json!({
                    "message": "Service unavailable",
                    "cause": "the endpoint could not be reached; retry",
                });
                return error_response(503, &body, true);
            }
        };
        if let Some(kind) = output.function_error() {
            return internal(&format!("{name} failed ({kind})"));
        }
        match output
            .payload()
            .map(|p| serde_json::from_slice::<Value>(p.as_ref()))
        {
            Some(Ok(response)) if response.get("statusCode").is_some() => response,
            _ => internal(&format!("{name} answered no API Gateway response")),
        }
    }
}

fn internal(detail: &str) -> Value {
    tracing::error!(error = detail, "internal error");
    let err = DexError::internal(detail);
    error_response(err.status(), &err.body(), false)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    dex_lambda::web::init_logging();
    // Region and credentials from the environment, no provider chains (dex_aws::sdk_config).
    let config = dex_aws::sdk_config().await;
    let router = Router {
        lambda: aws_sdk_lambda::Client::new(&config),
        prefix: std::env::var("DEX_FUNCTION_PREFIX").unwrap_or_default(),
    };
    let router = &router;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(router.handle(event.payload).await)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalising_collapses_slashes_and_drops_the_trailing_one() {
        assert_eq!(normalise("//stats/report"), "/stats/report");
        assert_eq!(normalise("/stats/report/"), "/stats/report");
        assert_eq!(normalise("//stats//report//"), "/stats/report");
        assert_eq!(normalise("/"), "/");
        assert_eq!(normalise(""), "/");
    }

    #[test]
    fn aliases_find_their_canonical_route_with_its_parameters() {
        let m = find("PUT", &normalise("//api/admin/accounts/abc-1/")).expect("a route");
        assert_eq!(m.template, "/api/admin/accounts/{accountId}");
        assert_eq!(m.function, "admin-account-update");
        assert_eq!(m.params.get("accountId").map(String::as_str), Some("abc-1"));
        assert_eq!(find("GET", "/stats").map(|m| m.function), Some("stats"));
    }

    #[test]
    fn unknown_paths_and_methods_find_nothing_and_head_uses_get() {
        assert_eq!(find("GET", "/nope"), None);
        assert_eq!(find("DELETE", "/stats"), None);
        assert_eq!(find("GET", "/api/admin/accounts/a/b"), None);
        let head = find("HEAD", "/stats").expect("HEAD /stats is GET /stats");
        assert_eq!((head.method, head.function), ("GET", "stats"));
    }

    #[test]
    fn the_rewritten_event_is_the_canonical_routes_event() {
        let event = json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "//api/admin/accounts/x1/",
            "rawQueryString": "a=1", "pathParameters": {"path": "api/admin/accounts/x1/"},
            "requestContext": {"routeKey": "$default", "http": {"method": "GET", "path": "//api/admin/accounts/x1/"}},
        });
        let path = normalise(event["rawPath"].as_str().unwrap());
        let matched = find("GET", &path).unwrap();
        let e = rewrite(event, &path, &matched);
        assert_eq!(e["rawPath"], "/api/admin/accounts/x1");
        assert_eq!(e["routeKey"], "GET /api/admin/accounts/{accountId}");
        assert_eq!(e["requestContext"]["routeKey"], e["routeKey"]);
        assert_eq!(
            e["requestContext"]["http"]["path"],
            "/api/admin/accounts/x1"
        );
        assert_eq!(e["pathParameters"], json!({"accountId": "x1"}));
        assert_eq!(e["rawQueryString"], "a=1");
    }

    #[test]
    fn a_known_path_lists_its_methods() {
        assert_eq!(allowed("/stats"), ["GET", "HEAD"]);
        assert!(allowed("/nope").is_empty());
        let mut account = allowed("/api/admin/accounts/x1");
        account.sort();
        assert_eq!(account, ["GET", "HEAD", "PUT"]);
        let r = method_not_allowed("DELETE", "//stats/", &allowed("/stats"));
        assert_eq!(r["statusCode"], 405);
        assert_eq!(r["headers"]["allow"], "GET, HEAD");
        let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["message"], "Method not allowed");
    }

    #[test]
    fn the_404_is_dexs_error_body() {
        let r = not_found("GET", "/nope");
        assert_eq!(r["statusCode"], 404);
        let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["message"], "Not found");
        assert!(body["cause"].as_str().unwrap().contains("/nope"));
    }
}
