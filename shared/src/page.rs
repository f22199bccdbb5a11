//! Paging shared by every listing: a page of items (as the API, dexctl and the OpenAPI page
//! schemas show it), the request for one, and the opaque cursor to the next page. What a
//! cursor holds is the store adapter's business.

use serde::Serialize;

use crate::error::{DexError, DexResult};

/// One page of a listing and the opaque cursor to the next one (`null` on the last page).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub cursor: Option<String>,
}

impl<T> Page<T> {
    /// The same page with each item shown as `view` shows it (e.g. `AccountView::from`).
    pub fn map<'a, V>(&'a self, view: impl Fn(&'a T) -> V) -> Page<V> {
        Page {
            items: self.items.iter().map(view).collect(),
            cursor: self.cursor.clone(),
        }
    }
}

/// A cursor a listing returned, handed back as it came; only the store that made it can
/// read it (and refuses one it did not make).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

impl Cursor {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: i32,
    pub cursor: Option<Cursor>,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: i32 = 50;
    pub const MAX_LIMIT: i32 = 200;

    /// Reads `limit` and `cursor` query values; a bad limit is a 400.
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
        if let Some(cursor) = cursor {
            if cursor.is_empty() {
                return Err(DexError::bad_request("cursor must not be empty"));
            }
            crate::limits::check_len("cursor", cursor, crate::limits::MAX_CURSOR)?;
        }
        Ok(Self {
            limit,
            cursor: cursor.map(Cursor::new),
        })
    }

    pub fn first(limit: i32) -> Self {
        Self {
            limit,
            cursor: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(PageRequest::parse(None, None).unwrap().limit, 50);
        assert!(PageRequest::parse(Some("0"), None).is_err());
        assert!(PageRequest::parse(Some("201"), None).is_err());
        assert!(PageRequest::parse(Some("x"), None).is_err());
        assert!(PageRequest::parse(None, Some("")).is_err());
        let long = "c".repeat(crate::limits::MAX_CURSOR + 1);
        assert_eq!(
            PageRequest::parse(None, Some(&long)).unwrap_err().status(),
            400
        );
        assert!(PageRequest::parse(None, Some(&long[1..])).is_ok());
    }

    #[test]
    fn a_page_serialises_as_the_openapi_page_schemas() {
        let page = Page {
            items: vec![1, 2],
            cursor: None,
        };
        assert_eq!(
            serde_json::to_value(page.map(|n| n * 10)).unwrap(),
            serde_json::json!({"items": [10, 20], "cursor": null})
        );
    }
}
