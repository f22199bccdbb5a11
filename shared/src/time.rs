//! Lenient timestamps (docs/decisions.md §1): ISO-8601 with or without a colon in the offset, with or
//! without fractions, with `Z`, or epoch milliseconds.

use chrono::{DateTime, NaiveDateTime};

use crate::error::{DexError, DexResult};

/// Parses a textual instant; returns epoch milliseconds.
pub fn parse_instant(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(ms) = t.parse::<i64>() {
        return Some(ms);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt.timestamp_millis());
    }
    // The HAT's own format: offset without a colon, e.g. 2021-03-10T13:34:59+0000.
    for format in ["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S%.f%z"] {
        if let Ok(dt) = DateTime::parse_from_str(t, format) {
            return Some(dt.timestamp_millis());
        }
    }
    // A local date-time without zone: read as UTC.
    for format in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, format) {
            return Some(dt.and_utc().timestamp_millis());
        }
    }
    None
}

/// An instant in JSON: a string as above, or a number of epoch milliseconds.
pub fn parse_instant_json(value: &serde_json::Value) -> Option<i64> {
    match value {
        // A whole number only: `1.5` or `2.6e-42` is not a millisecond count.
        serde_json::Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        }),
        serde_json::Value::String(s) => parse_instant(s),
        _ => None,
    }
}

/// A query parameter instant; a bad one is a 400.
pub fn parse_instant_param(text: &str) -> DexResult<i64> {
    parse_instant(text).ok_or_else(|| {
        DexError::bad_request(format!("{text:?} is not a time (ISO-8601 or epoch ms)"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ecosystem_format() {
        let expected = 1_615_383_299_000;
        for text in [
            "2021-03-10T13:34:59+0000",
            "2021-03-10T13:34:59+00:00",
            "2021-03-10T13:34:59Z",
            "2021-03-10T13:34:59.000Z",
            "2021-03-10T14:34:59+0100",
            "2021-03-10T13:34:59",
            "1615383299000",
        ] {
            assert_eq!(parse_instant(text), Some(expected), "{text}");
        }
        assert_eq!(
            parse_instant_json(&serde_json::json!(1_615_383_299_000i64)),
            Some(expected)
        );
        assert_eq!(parse_instant("yesterday"), None);
        assert!(parse_instant_param("nope").is_err());
    }
}
