//! Request limits (issue 8): the longest string, the largest list and the deepest JSON DEX
//! accepts, checked before any request to the table, as a 400. openapi.yaml states the same
//! numbers (`maxLength` counts characters, `maxItems`, ...).
//!
//! Lengths are characters, as in the schema; a character is at most 4 bytes, so a value
//! within its limit also fits the DynamoDB key it becomes part of (partition keys hold at
//! most 2048 bytes, sort keys 1024).

use serde::de::DeserializeOwned;

use crate::error::{DexError, DexResult};

/// A user-given value used inside a key (log subject, actor, kind, ...): 1024 bytes at most.
pub const MAX_KEY_PART: usize = 256;
/// One value of a page cursor, handed back to DynamoDB as a start key.
pub const MAX_CURSOR_VALUE: usize = 1024;
/// A page cursor as the client hands it back.
pub const MAX_CURSOR: usize = 2048;
/// A DNS name (a cluster domain, a HAT address) has at most 253 characters.
pub const MAX_DOMAIN_LEN: usize = 253;
/// The deepest nesting of arrays and objects in any JSON body (real HAT reports need 6).
pub const MAX_JSON_DEPTH: usize = 32;
/// Roles of one account.
pub const MAX_ROLES: usize = 32;
/// Provisioner accounts of one cluster.
pub const MAX_PROVISIONERS: usize = 100;
/// A cluster's platform username (an e-mail address at most) and password.
pub const MAX_PLATFORM_USERNAME: usize = 254;
pub const MAX_PLATFORM_PASSWORD: usize = 1024;
/// A time parameter (`from`, `to`): epoch milliseconds or an ISO-8601 date-time.
pub const MAX_TIME_PARAM: usize = 64;

/// `Ok` when `value` has at most `max` characters; else a 400 naming `field`.
pub fn check_len(field: &str, value: &str, max: usize) -> DexResult<()> {
    if value.chars().count() > max {
        return Err(DexError::invalid(
            format!("{field} is too long"),
            vec![format!("{field}: at most {max} characters")],
        ));
    }
    Ok(())
}

/// Adds a detail when `value` has more than `max` characters.
pub fn push_if_long(details: &mut Vec<String>, field: &str, value: &str, max: usize) {
    if value.chars().count() > max {
        details.push(format!("{field}: at most {max} characters"));
    }
}

/// Adds a detail when `list` has more than `max` items.
pub fn push_if_many<T>(details: &mut Vec<String>, field: &str, list: &[T], max: usize) {
    if list.len() > max {
        details.push(format!("{field}: at most {max} items"));
    }
}

/// How deeply `body` nests arrays and objects, counted without parsing it (brackets inside
/// strings do not count). Stops counting once past `MAX_JSON_DEPTH`.
pub fn json_depth(body: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in body {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > MAX_JSON_DEPTH {
                    break;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Parses a JSON body after checking its nesting: too deep is a 400 that says so, malformed
/// JSON (or not UTF-8) a 400 that says where. Unknown fields are ignored by the target types.
pub fn parse_json<T: DeserializeOwned>(body: &[u8], what: &str) -> DexResult<T> {
    if json_depth(body) > MAX_JSON_DEPTH {
        return Err(DexError::invalid(
            format!("malformed {what}"),
            vec![format!("JSON nested deeper than {MAX_JSON_DEPTH} levels")],
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| DexError::invalid(format!("malformed {what}"), vec![e.to_string()]))
}

/// For `#[serde(default, deserialize_with = "crate::limits::present")]`: an optional field
/// that is there must hold a value (serde would take `null` as absent), so a change body's
/// `null` is a 400 as its schema says.
pub fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_characters_and_name_the_field() {
        assert!(check_len("subject", &"a".repeat(MAX_KEY_PART), MAX_KEY_PART).is_ok());
        let err = check_len("subject", &"a".repeat(MAX_KEY_PART + 1), MAX_KEY_PART).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.body().details[0].contains("subject"));
        // 256 characters of 4 bytes each still fit a sort key.
        let widest = "𝄞".repeat(MAX_KEY_PART);
        assert!(check_len("kind", &widest, MAX_KEY_PART).is_ok());
        assert!(widest.len() <= 1024);
        assert!(check_len("kind", &"€".repeat(MAX_KEY_PART + 1), MAX_KEY_PART).is_err());
        let mut details = Vec::new();
        push_if_long(&mut details, "name", &"é".repeat(10), 10);
        push_if_many(&mut details, "roles", &[1, 2], 2);
        assert!(details.is_empty());
        push_if_long(&mut details, "name", &"é".repeat(11), 10);
        push_if_many(&mut details, "roles", &[1, 2, 3], 2);
        assert_eq!(
            details,
            ["name: at most 10 characters", "roles: at most 2 items"]
        );
    }

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert_eq!(json_depth(b"1"), 0);
        assert_eq!(json_depth(br#"[{"a": [1, {"b": {}}]}]"#), 5);
        assert_eq!(json_depth(br#"["[[[[", "\"[[["]"#), 1);
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert!(json_depth(deep.as_bytes()) > MAX_JSON_DEPTH);
    }

    #[test]
    fn too_deep_is_a_400_before_parsing() {
        let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        let err = parse_json::<serde_json::Value>(nested(MAX_JSON_DEPTH + 1).as_bytes(), "body")
            .unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.body().details[0].contains("deeper than 32"), "{err}");
        assert!(parse_json::<serde_json::Value>(nested(MAX_JSON_DEPTH).as_bytes(), "body").is_ok());
        let not_utf8 = parse_json::<serde_json::Value>(b"[\"\xff\"]", "body").unwrap_err();
        assert_eq!(not_utf8.status(), 400);
    }
}
