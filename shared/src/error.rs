//! The one error type of DEX and its single mapping to HTTP (docs/decisions.md §2).
//!
//! Every non-2xx response has the body `{"message", "cause", "details"?}`. `message` names the
//! category, `cause` explains this occurrence. Internal errors never expose their text: it is
//! logged with the request id and the client gets a generic cause.

use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum DexError {
    #[error("bad request: {cause}")]
    BadRequest { cause: String, details: Vec<String> },
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// A known path, a method it does not serve (the edge adds `Allow`).
    #[error("method not allowed: {0}")]
    MethodNotAllowed(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    #[error("throttled: {0}")]
    Throttled(String),
    /// Refused before any work, for this many seconds (429 with `Retry-After`): too many
    /// failed logins (`accounts::login_limits`).
    #[error("too many attempts: {cause}")]
    TooManyAttempts {
        cause: String,
        retry_after_secs: u64,
    },
    #[error("bad gateway: {0}")]
    BadGateway(String),
    #[error("gateway timeout: {0}")]
    GatewayTimeout(String),
    /// A dependency of DEX (DynamoDB, Secrets Manager) cannot be reached or did not answer
    /// in time; the client may retry (503 with `Retry-After`).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A genuine bug or an unexpected dependency failure. The text is for the logs only.
    #[error("internal: {0}")]
    Internal(String),
}

/// The JSON error body every client of DEX parses.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub message: String,
    pub cause: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl DexError {
    pub fn bad_request(cause: impl Into<String>) -> Self {
        Self::BadRequest {
            cause: cause.into(),
            details: Vec::new(),
        }
    }

    pub fn invalid(cause: impl Into<String>, details: Vec<String>) -> Self {
        Self::BadRequest {
            cause: cause.into(),
            details,
        }
    }

    pub fn internal(what: impl std::fmt::Display) -> Self {
        Self::Internal(what.to_string())
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest { .. } => 400,
            Self::Unauthorized(_) => 401,
            Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::MethodNotAllowed(_) => 405,
            Self::Conflict(_) => 409,
            Self::PayloadTooLarge(_) => 413,
            Self::Throttled(_) | Self::TooManyAttempts { .. } => 429,
            Self::BadGateway(_) => 502,
            Self::GatewayTimeout(_) => 504,
            Self::Unavailable(_) => 503,
            Self::Internal(_) => 500,
        }
    }

    /// The `Retry-After` this error's answer carries, in seconds.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::TooManyAttempts {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }

    pub fn body(&self) -> ErrorBody {
        let (message, cause, details) = match self {
            Self::BadRequest { cause, details } => ("Bad request", cause.clone(), details.clone()),
            Self::Unauthorized(c) => ("Not authenticated", c.clone(), vec![]),
            Self::Forbidden(c) => ("Forbidden", c.clone(), vec![]),
            Self::NotFound(c) => ("Not found", c.clone(), vec![]),
            Self::MethodNotAllowed(c) => ("Method not allowed", c.clone(), vec![]),
            Self::Conflict(c) => ("Conflict", c.clone(), vec![]),
            Self::PayloadTooLarge(c) => ("Payload too large", c.clone(), vec![]),
            Self::Throttled(c) | Self::TooManyAttempts { cause: c, .. } => {
                ("Too many requests", c.clone(), vec![])
            }
            Self::BadGateway(c) => ("Bad gateway", c.clone(), vec![]),
            Self::GatewayTimeout(c) => ("Gateway timeout", c.clone(), vec![]),
            Self::Unavailable(c) => ("Service unavailable", c.clone(), vec![]),
            Self::Internal(_) => (
                "Internal server error",
                "an unexpected error occurred; it has been logged".to_owned(),
                vec![],
            ),
        };
        ErrorBody {
            message: message.to_owned(),
            cause,
            details,
        }
    }
}

pub type DexResult<T> = Result<T, DexError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_text() {
        let err = DexError::internal("dynamodb said: secret-ish detail");
        let body = err.body();
        assert_eq!(err.status(), 500);
        assert!(!body.cause.contains("secret-ish"));
        assert!(!serde_json::to_string(&body).unwrap().contains("dynamodb"));
    }

    #[test]
    fn statuses_follow_the_decisions() {
        let cases = [
            (DexError::bad_request("x"), 400),
            (DexError::Unauthorized("x".into()), 401),
            (DexError::Forbidden("x".into()), 403),
            (DexError::NotFound("x".into()), 404),
            (DexError::MethodNotAllowed("x".into()), 405),
            (DexError::Conflict("x".into()), 409),
            (DexError::PayloadTooLarge("x".into()), 413),
            (DexError::Throttled("x".into()), 429),
            (DexError::BadGateway("x".into()), 502),
            (DexError::GatewayTimeout("x".into()), 504),
            (DexError::Unavailable("x".into()), 503),
        ];
        for (err, status) in cases {
            assert_eq!(err.status(), status, "{err}");
            assert_eq!(err.body().cause, "x");
        }
    }

    #[test]
    fn details_only_when_present() {
        let json = serde_json::to_value(DexError::bad_request("x").body()).unwrap();
        assert!(json.get("details").is_none());
        let json =
            serde_json::to_value(DexError::invalid("x", vec!["roles: unknown".into()]).body())
                .unwrap();
        assert_eq!(json["details"][0], "roles: unknown");
    }
}
