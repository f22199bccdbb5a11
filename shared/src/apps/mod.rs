//! The applications registry and consent (docs/decisions.md §10, §13.3,
//! §13.4): every version of every application kept, developers managing their own,
//! admins any; public lists and fetches that never show a suspended application; HAT
//! owners' consents on their HATs' chains of the log.

pub mod model;
pub mod ports;
pub mod service;

pub use model::{
    AppFilter, AppKind, AppPage, AppVersion, ApplicationDoc, Consent, StoredApp, Version,
};
pub use ports::ApplicationStore;
pub use service::{ApplicationService, ListQuery};

use aws_lc_rs::digest::{SHA256, digest};

/// The `ETag` of an answer body: a strong validator over its bytes.
pub fn etag(body: &[u8]) -> String {
    format!("\"{}\"", &hex::encode(digest(&SHA256, body))[..32])
}

/// Whether an `If-None-Match` header value names `etag` (`*`, a list, weak forms).
pub fn matches_etag(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_change_with_the_body_and_match_lists() {
        let a = etag(b"[1]");
        assert_ne!(a, etag(b"[2]"));
        assert!(matches_etag(&a, &a));
        assert!(matches_etag(&format!("\"x\", W/{a}"), &a));
        assert!(matches_etag("*", &a));
        assert!(!matches_etag("\"x\"", &a));
    }
}
