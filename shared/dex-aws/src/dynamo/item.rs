//! Item encoding: attribute helpers and the codec every stored type implements.

use aws_sdk_dynamodb::types::AttributeValue;

use super::Item;
use dex::error::{DexError, DexResult};

/// A type stored as one table item (its keys included).
pub(crate) trait Codec: Sized {
    fn to_item(&self) -> Item;
    fn from_item(item: &Item) -> DexResult<Self>;
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn get_s(item: &Item, name: &str) -> DexResult<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(DexError::internal(format!(
            "stored item lacks string attribute {name}"
        ))),
    }
}

pub(crate) fn get_opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

pub(crate) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> DexResult<T> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| DexError::internal(format!("attribute {name} is not a number"))),
        _ => Err(DexError::internal(format!(
            "stored item lacks number attribute {name}"
        ))),
    }
}

pub(crate) fn get_bool(item: &Item, name: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::Bool(true)))
}

pub(crate) fn string_list(values: impl IntoIterator<Item = String>) -> AttributeValue {
    AttributeValue::L(values.into_iter().map(AttributeValue::S).collect())
}

pub(crate) fn get_string_list(item: &Item, name: &str) -> Vec<String> {
    match item.get(name) {
        Some(AttributeValue::L(values)) => values
            .iter()
            .filter_map(|v| v.as_s().ok().cloned())
            .collect(),
        _ => Vec::new(),
    }
}
