//! API Gateway HTTP API (payload 2.0) events, as the `$default` stage sends them to a
//! function, and the parts of the function's answer: what the bench and the fault tests
//! hand a function through the local Runtime API ([`crate::runtime_api`]).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::support::url_encode;

/// Builds an API Gateway HTTP API (payload 2.0) event, as `$default` stage would send it.
#[derive(Clone, Debug)]
pub struct Event {
    method: String,
    route: String,
    path_params: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    query: Vec<(String, String)>,
    body: Option<String>,
}

impl Event {
    /// `route` may hold `{param}` segments; fill them with [`Event::param`] (unfilled ones
    /// become `bench-<param>`).
    pub fn new(method: &str, route: &str) -> Self {
        Self {
            method: method.to_uppercase(),
            route: route.to_owned(),
            path_params: BTreeMap::new(),
            headers: BTreeMap::new(),
            query: Vec::new(),
            body: None,
        }
    }

    pub fn get(route: &str) -> Self {
        Self::new("GET", route)
    }

    pub fn post(route: &str) -> Self {
        Self::new("POST", route)
    }

    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.path_params.insert(name.to_owned(), value.to_owned());
        self
    }

    /// A header (names are lower-cased, as API Gateway delivers them).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(name.to_lowercase(), value.to_owned());
        self
    }

    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn json_body(mut self, body: &Value) -> Self {
        self.body = Some(body.to_string());
        self.headers
            .insert("content-type".into(), "application/json".into());
        self
    }

    pub fn build(&self) -> Value {
        let mut params = self.path_params.clone();
        let mut path = String::new();
        for segment in self.route.split('/').skip(1) {
            path.push('/');
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    let value = params
                        .entry(name.to_owned())
                        .or_insert_with(|| format!("bench-{name}"));
                    path.push_str(&url_encode(value));
                }
                None => path.push_str(segment),
            }
        }
        let raw_query = self
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut query_map = serde_json::Map::new();
        for (k, v) in &self.query {
            query_map
                .entry(k.clone())
                .and_modify(|old| {
                    *old = Value::String(format!("{},{v}", old.as_str().unwrap_or_default()))
                })
                .or_insert_with(|| Value::String(v.clone()));
        }
        let mut headers = self.headers.clone();
        headers
            .entry("host".into())
            .or_insert_with(|| "127.0.0.1:9000".into());
        headers
            .entry("user-agent".into())
            .or_insert_with(|| "dex-bench".into());
        headers
            .entry("x-forwarded-proto".into())
            .or_insert_with(|| "http".into());
        if let Some(body) = &self.body {
            headers.insert("content-length".into(), body.len().to_string());
        }
        let route_key = format!("{} {}", self.method, self.route);
        let mut event = json!({
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": path,
            "rawQueryString": raw_query,
            "headers": headers,
            "requestContext": {
                "accountId": "000000000000",
                "apiId": "dexbench",
                "domainName": "127.0.0.1",
                "domainPrefix": "127",
                "http": {
                    "method": self.method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": "dex-bench"
                },
                "requestId": "bench",
                "routeKey": route_key,
                "stage": "$default",
                "time": "01/Jan/2026:00:00:00 +0000",
                "timeEpoch": 1_767_225_600_000u64
            },
            "isBase64Encoded": false
        });
        if !params.is_empty() {
            event["pathParameters"] = json!(params);
        }
        if !query_map.is_empty() {
            event["queryStringParameters"] = Value::Object(query_map);
        }
        if let Some(body) = &self.body {
            event["body"] = Value::String(body.clone());
        }
        event
    }
}

/// A response header (API Gateway v2 response `headers`, any case).
pub fn response_header(response: &Value, name: &str) -> Option<String> {
    response
        .get("headers")?
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_owned)
}

/// The response body, decoded (base64 when `isBase64Encoded`).
pub fn response_body(response: &Value) -> String {
    use base64::Engine;
    let body = response
        .get("body")
        .and_then(|b| b.as_str())
        .unwrap_or_default();
    if response
        .get("isBase64Encoded")
        .and_then(|b| b.as_bool())
        .unwrap_or(false)
    {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|_| body.to_owned())
    } else {
        body.to_owned()
    }
}

pub fn response_json(response: &Value) -> Option<Value> {
    serde_json::from_str(&response_body(response)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_fill_path_parameters() {
        let e = Event::get("/api/admin/accounts/{accountId}")
            .param("accountId", "a b")
            .build();
        assert_eq!(e["rawPath"], "/api/admin/accounts/a%20b");
        assert_eq!(e["pathParameters"]["accountId"], "a b");
        assert_eq!(e["requestContext"]["http"]["method"], "GET");
        let e = Event::post("/x/{id}")
            .json_body(&json!({"a": 1}))
            .query("q", "1")
            .build();
        assert_eq!(e["rawPath"], "/x/bench-id");
        assert_eq!(e["rawQueryString"], "q=1");
        assert_eq!(e["body"], "{\"a\":1}");
    }
}
