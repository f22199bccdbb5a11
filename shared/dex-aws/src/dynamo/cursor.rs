//! What a page cursor holds on DynamoDB: the query's last evaluated key (all our keys are
//! strings) and, for listings that walk partitions, the partition; base64url JSON, opaque to
//! everyone else.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::Item;
use super::item::s;
use dex::error::{DexError, DexResult};
use dex::page::PageRequest;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct KeyCursor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub key: BTreeMap<String, String>,
}

impl KeyCursor {
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

    /// The cursor of a page request, read before anything else of the listing (a cursor that
    /// is not ours is a 400).
    pub fn of(page: &PageRequest) -> DexResult<Option<Self>> {
        page.cursor
            .as_ref()
            .map(|c| Self::decode(c.as_str()))
            .transpose()
    }
}

/// A DynamoDB `LastEvaluatedKey` (string attributes only) as a page cursor.
pub(crate) fn cursor_from_key(key: Option<&Item>, partition: Option<String>) -> Option<String> {
    let key = key?;
    let map: BTreeMap<String, String> = key
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k.clone(), s.clone())))
        .collect();
    Some(
        KeyCursor {
            partition,
            key: map,
        }
        .encode(),
    )
}

/// The DynamoDB start key of a cursor for a query of `partition` (on `index`, or the table).
/// A cursor this query could not have returned is a 400, never handed to DynamoDB.
pub(crate) fn key_from_cursor(
    cursor: Option<&KeyCursor>,
    index: Option<&str>,
    partition: &str,
) -> DexResult<Option<Item>> {
    let Some(cursor) = cursor.filter(|c| !c.key.is_empty()) else {
        return Ok(None);
    };
    let mut expected = vec!["pk".to_owned(), "sk".to_owned()];
    if let Some(index) = index {
        expected.extend([format!("{index}pk"), format!("{index}sk")]);
    }
    let partition_attribute = index.map_or("pk".to_owned(), |i| format!("{i}pk"));
    let mut names: Vec<&String> = cursor.key.keys().collect();
    names.sort();
    expected.sort();
    if names != expected.iter().collect::<Vec<_>>()
        || cursor.key.get(&partition_attribute).map(String::as_str) != Some(partition)
        || cursor
            .key
            .values()
            .any(|v| v.len() > dex::limits::MAX_CURSOR_VALUE)
    {
        return Err(DexError::bad_request(
            "cursor is not one this listing returned",
        ));
    }
    Ok(Some(
        cursor.key.iter().map(|(k, v)| (k.clone(), s(v))).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let mut c = KeyCursor {
            partition: Some("2026-11-22".into()),
            key: BTreeMap::new(),
        };
        c.key.insert("pk".into(), "LOG#x".into());
        assert_eq!(KeyCursor::decode(&c.encode()).unwrap(), c);
        assert!(KeyCursor::decode("not-a-cursor").is_err());
    }
}
