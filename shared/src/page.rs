//! Paging shared by every listing: a page of items, the request for one, and the opaque
//! cursor to the next page.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::error::{DexError, DexResult};

/// One page of a listing and the opaque cursor to the next one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: i32,
    pub cursor: Option<Cursor>,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: i32 = 50;
    pub const MAX_LIMIT: i32 = 200;

    /// Reads `limit` and `cursor` query values; bad ones are a 400.
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> DexResult<Self> {
        let limit = match limit {
            None => Self::DEFAULT_LIMIT,
            Some(l) => l
                .parse::<i32>()
                .ok()
                .filter(|l| (1..=Self::MAX_LIMIT).contains(l))
                .ok_or_else(|| {
                    DexError::bad_request(format!("limit must be 1 to {}", Self::MAX_LIMIT))
                })?,
        };
        let cursor = cursor.map(Cursor::decode).transpose()?;
        Ok(Self { limit, cursor })
    }

    pub fn first(limit: i32) -> Self {
        Self {
            limit,
            cursor: None,
        }
    }
}

/// Where a listing stopped: DynamoDB's last evaluated key (all our keys are strings) and,
/// for listings that walk partitions, the partition.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Cursor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub key: BTreeMap<String, String>,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("cursor serialises"))
    }

    pub fn decode(text: &str) -> DexResult<Self> {
        URL_SAFE_NO_PAD
            .decode(text)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| DexError::bad_request("cursor is not one this API returned"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let mut c = Cursor {
            partition: Some("2026-11-22".into()),
            key: BTreeMap::new(),
        };
        c.key.insert("pk".into(), "LOG#x".into());
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert!(Cursor::decode("not-a-cursor").is_err());
    }

    #[test]
    fn limits() {
        assert_eq!(PageRequest::parse(None, None).unwrap().limit, 50);
        assert!(PageRequest::parse(Some("0"), None).is_err());
        assert!(PageRequest::parse(Some("201"), None).is_err());
        assert!(PageRequest::parse(Some("x"), None).is_err());
    }
}
