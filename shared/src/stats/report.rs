//! Parsing what HATs post to `/stats/report` (docs/hats.md §4), leniently: every `statsType`
//! variant, ISO or epoch-ms times, `"Create()"` or `"Create"`, unknown fields ignored. An item
//! that cannot be understood is skipped with a reason; the rest of the batch still counts.

use std::collections::BTreeMap;

use aws_lc_rs::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ingest::OTHER_FIELDS;
use super::limits::{MAX_ENDPOINT_BYTES, MAX_FIELD_BYTES, MAX_NAMESPACE_BYTES};
use crate::time::parse_instant_json;

/// At most this many items in one report (HATs send up to 100).
pub const MAX_ITEMS: usize = 1000;
/// A data debit key (an offer id is at most 64 characters) and an operation (`Create`,
/// `Enable`, ...) are parts of a key: longer ones are not real.
pub const MAX_DEBIT_KEY: usize = 256;
const MAX_OPERATION: usize = 64;
/// A single count above this is not a real statistic.
const MAX_COUNT: i64 = 1_000_000_000;

/// One understood item.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsItem {
    /// SHA-256 of the item's canonical JSON: the same item resent is the same identity.
    pub identity: [u8; 32],
    /// Epoch ms of the item's `time`.
    pub time: i64,
    pub kind: StatsKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StatsKind {
    /// Data written to the HAT: counts per `(namespace, endpoint, field path)`.
    Inbound(Vec<FieldCount>),
    /// Data read out through a data debit.
    Outbound {
        data_debit_id: String,
        fields: Vec<FieldCount>,
    },
    /// A data debit created, changed, enabled or disabled.
    DataDebit(DebitEvent),
    /// Deprecated variants: understood and acknowledged, but they feed no figure.
    DataCredit,
    Storage,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldCount {
    pub namespace: String,
    pub endpoint: String,
    pub field: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DebitEvent {
    pub data_debit_key: String,
    /// `Create`, `Change`, `Enable`, `Disable`, ...
    pub operation: String,
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    /// `datadebit` (v2.6) or `datadebitEvent` (legacy).
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub index: usize,
    pub reason: String,
}

/// The items of a report, understood or skipped.
#[derive(Debug, Default)]
pub struct ParsedReport {
    pub items: Vec<StatsItem>,
    /// The position in the body of each of `items`.
    pub indices: Vec<usize>,
    /// Copies of an item already in this report: resends, answered as duplicates.
    pub copies: usize,
    pub skipped: Vec<Skipped>,
}

/// Parses a report body that is already known to be a JSON array. Identical items within one
/// report are one item (a HAT never sends the same row twice in a batch; a copy is a resend).
pub fn parse_report(items: &[Value]) -> ParsedReport {
    let mut report = ParsedReport::default();
    let mut seen = std::collections::HashSet::new();
    for (index, value) in items.iter().enumerate() {
        match parse_item(value) {
            Ok(item) => {
                if seen.insert(item.identity) {
                    report.items.push(item);
                    report.indices.push(index);
                } else {
                    report.copies += 1;
                }
            }
            Err(reason) => report.skipped.push(Skipped { index, reason }),
        }
    }
    report
}

pub fn parse_item(value: &Value) -> Result<StatsItem, String> {
    let object = value.as_object().ok_or("not a JSON object")?;
    let stats_type = object
        .get("statsType")
        .and_then(Value::as_str)
        .ok_or("statsType missing")?;
    let time = object
        .get("time")
        .and_then(parse_instant_json)
        .ok_or("time missing or not a time")?;
    let kind = match stats_type {
        "inbound" => StatsKind::Inbound(endpoint_stats(object.get("stats"))?),
        "outbound" => StatsKind::Outbound {
            data_debit_id: object
                .get("dataDebitId")
                .and_then(Value::as_str)
                .ok_or("dataDebitId missing")?
                .to_owned(),
            fields: endpoint_stats(object.get("stats"))?,
        },
        "datadebit" | "datadebitEvent" => StatsKind::DataDebit(debit_event(object, stats_type)?),
        "datacredit" => {
            object
                .get("operation")
                .and_then(Value::as_str)
                .ok_or("operation missing")?;
            StatsKind::DataCredit
        }
        "storage" => {
            object
                .get("dataTableStats")
                .and_then(Value::as_array)
                .ok_or("dataTableStats missing")?;
            StatsKind::Storage
        }
        other => return Err(format!("unknown statsType {other:?}")),
    };
    Ok(StatsItem {
        identity: identity(value),
        time,
        kind,
    })
}

/// SHA-256 of the canonical text (serde_json sorts object keys).
fn identity(value: &Value) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, value.to_string().as_bytes()).as_ref());
    out
}

fn endpoint_stats(stats: Option<&Value>) -> Result<Vec<FieldCount>, String> {
    let stats = stats
        .and_then(Value::as_array)
        .ok_or("stats missing or not an array")?;
    // Merge repeated (endpoint, field) pairs so each appears once.
    let mut merged: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    for entry in stats {
        let endpoint = entry
            .get("endpoint")
            .and_then(Value::as_str)
            .ok_or("stats[].endpoint missing")?;
        let (namespace, endpoint) = split_endpoint(endpoint)?;
        let properties = entry
            .get("propertyStats")
            .and_then(Value::as_object)
            .ok_or("stats[].propertyStats missing or not an object")?;
        for (field, count) in properties {
            let count = count
                .as_i64()
                .filter(|c| (0..=MAX_COUNT).contains(c))
                .ok_or_else(|| format!("propertyStats[{field:?}] is not a count"))?;
            check_field(field)?;
            *merged
                .entry((namespace.clone(), endpoint.clone(), field.clone()))
                .or_default() += count;
        }
    }
    Ok(merged
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|((namespace, endpoint, field), count)| FieldCount {
            namespace,
            endpoint,
            field,
            count,
        })
        .collect())
}

/// `"rumpel/locations"` → (`rumpel`, `locations`); the endpoint may itself contain `/`.
/// Both become part of keys and of every public read: short names of a safe charset only.
fn split_endpoint(full: &str) -> Result<(String, String), String> {
    let shown: String = full.chars().take(80).collect();
    let Some((ns, ep)) = full.split_once('/') else {
        return Err(format!("endpoint {shown:?} is not <namespace>/<endpoint>"));
    };
    let name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if ns.is_empty() || ns.len() > MAX_NAMESPACE_BYTES || !ns.chars().all(name) {
        return Err(format!(
            "endpoint {shown:?}: a namespace has 1 to {MAX_NAMESPACE_BYTES} of [A-Za-z0-9_.-]"
        ));
    }
    if ep.is_empty() || ep.len() > MAX_ENDPOINT_BYTES || !ep.chars().all(|c| name(c) || c == '/') {
        return Err(format!(
            "endpoint {shown:?}: an endpoint has 1 to {MAX_ENDPOINT_BYTES} of [A-Za-z0-9_.-/]"
        ));
    }
    Ok((ns.to_owned(), ep.to_owned()))
}

/// A field path: 1 to `MAX_FIELD_BYTES` bytes, no control characters, not the name DEX
/// counts overflowing fields under.
fn check_field(field: &str) -> Result<(), String> {
    if field.is_empty()
        || field.len() > MAX_FIELD_BYTES
        || field.chars().any(char::is_control)
        || field == OTHER_FIELDS
    {
        return Err(format!(
            "a field path has 1 to {MAX_FIELD_BYTES} bytes and no control characters"
        ));
    }
    Ok(())
}

/// `"Enable()"` and `"Enable"` are the same operation.
pub fn normalise_operation(op: &str) -> String {
    op.trim().trim_end_matches("()").to_owned()
}

fn debit_event(
    object: &serde_json::Map<String, Value>,
    source: &str,
) -> Result<DebitEvent, String> {
    let debit = object
        .get("dataDebit")
        .and_then(Value::as_object)
        .ok_or("dataDebit missing")?;
    let key = debit
        .get("dataDebitKey")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or("dataDebit.dataDebitKey missing")?;
    // Both become part of the debit event's sort key.
    if key.len() > MAX_DEBIT_KEY {
        return Err(format!(
            "dataDebit.dataDebitKey has more than {MAX_DEBIT_KEY} bytes"
        ));
    }
    let operation = normalise_operation(
        object
            .get("operation")
            .and_then(Value::as_str)
            .ok_or("operation missing")?,
    );
    if operation.is_empty() || operation.len() > MAX_OPERATION {
        return Err(format!("operation must have 1 to {MAX_OPERATION} bytes"));
    }
    let enabled = match operation.as_str() {
        "Enable" => true,
        "Disable" => false,
        // Create/Change carry the debit's own state: `active` (v2.6) or enabled bundles (legacy).
        _ => debit
            .get("active")
            .and_then(Value::as_bool)
            .unwrap_or_else(|| {
                debit
                    .get("bundles")
                    .and_then(Value::as_array)
                    .is_some_and(|b| {
                        b.iter()
                            .any(|x| x.get("enabled").and_then(Value::as_bool) == Some(true))
                    })
            }),
    };
    Ok(DebitEvent {
        data_debit_key: key.to_owned(),
        operation,
        enabled,
        application_id: debit
            .get("requestApplicationId")
            .and_then(Value::as_str)
            .map(str::to_owned),
        source: source.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn debit_keys_and_operations_are_bounded() {
        let debit = |key: &str, op: &str| {
            json!({"dataDebit":{"dataDebitKey":key,"dateCreated":"2021-03-10T13:35:10+0000","permissions":[],
                "active":true},"operation":op,"time":1615383310000i64,"user":{},"logEntry":"x","statsType":"datadebit"})
        };
        assert!(parse_item(&debit(&"k".repeat(MAX_DEBIT_KEY), "Create")).is_ok());
        let err = parse_item(&debit(&"k".repeat(MAX_DEBIT_KEY + 1), "Create")).unwrap_err();
        assert!(err.contains("dataDebitKey"), "{err}");
        let err = parse_item(&debit("offer-1", &"x".repeat(65))).unwrap_err();
        assert!(err.contains("operation"), "{err}");
    }

    fn inbound() -> Value {
        json!({"time":"2021-03-10T13:34:59+0000",
            "user":{"userId":"8a6e0000-0000-0000-0000-000000000000","email":"alice","name":"Alice","role":"owner","roles":[{"role":"owner"}]},
            "stats":[{"endpoint":"rumpel/locations","propertyStats":{"latitude":2,"longitude":2,"tags[]":3}}],
            "logEntry":"saved batch for rumpel/locations","statsType":"inbound"})
    }

    #[test]
    fn inbound_counts_each_field() {
        let item = parse_item(&inbound()).unwrap();
        assert_eq!(item.time, 1_615_383_299_000);
        let StatsKind::Inbound(fields) = item.kind else {
            panic!()
        };
        assert_eq!(fields.len(), 3);
        assert_eq!(fields.iter().map(|f| f.count).sum::<i64>(), 7);
        assert!(
            fields
                .iter()
                .all(|f| f.namespace == "rumpel" && f.endpoint == "locations")
        );
    }

    #[test]
    fn identity_ignores_key_order_but_not_content() {
        let a = parse_item(&inbound()).unwrap();
        let reordered: Value = serde_json::from_str(
            &inbound()
                .to_string()
                .replace("\"time\":\"2021-03-10T13:34:59+0000\",", "")
                .replacen('{', "{\"time\":\"2021-03-10T13:34:59+0000\",", 1),
        )
        .unwrap();
        assert_eq!(parse_item(&reordered).unwrap().identity, a.identity);
        let mut other = inbound();
        other["stats"][0]["propertyStats"]["latitude"] = json!(3);
        assert_ne!(parse_item(&other).unwrap().identity, a.identity);
    }

    #[test]
    fn debit_operations_with_or_without_parentheses() {
        for (op, enabled) in [("Enable()", true), ("Enable", true), ("Disable()", false)] {
            let v = json!({"dataDebit":{"dataDebitKey":"offer-1","dateCreated":"2021-03-10T13:35:10+0000","permissions":[],
                "requestClientName":"n","requestClientUrl":"u","requestClientLogoUrl":"l","active":true},
                "operation":op,"time":1615383310000i64,"user":{},"logEntry":op,"statsType":"datadebit"});
            let StatsKind::DataDebit(e) = parse_item(&v).unwrap().kind else {
                panic!()
            };
            assert_eq!((e.data_debit_key.as_str(), e.enabled), ("offer-1", enabled));
            assert_eq!(e.operation, op.trim_end_matches("()"));
        }
    }

    #[test]
    fn bad_items_are_skipped_with_reasons() {
        let report = parse_report(&[
            inbound(),
            json!({"statsType":"weird","time":"2021-03-10T13:34:59+0000"}),
            json!(42),
            json!({"statsType":"inbound","time":"not a time","stats":[]}),
            json!({"statsType":"inbound","time":1,"stats":[{"endpoint":"noslash","propertyStats":{}}]}),
            json!({"statsType":"inbound","time":1,"stats":[{"endpoint":"a/b","propertyStats":{"x":-1}}]}),
            inbound(),
        ]);
        assert_eq!(
            report.items.len(),
            1,
            "the copy of the first item is the same item"
        );
        assert_eq!(
            report.skipped.iter().map(|s| s.index).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert!(report.skipped[0].reason.contains("unknown statsType"));
    }

    #[test]
    fn names_are_bounded_in_length_and_charset() {
        let item = |endpoint: &str, field: &str| {
            parse_item(&json!({"time": 1, "statsType": "inbound",
                "stats": [{"endpoint": endpoint, "propertyStats": {field: 1}}]}))
        };
        let ns = "n".repeat(MAX_NAMESPACE_BYTES);
        let ep = format!("{}/x", "e".repeat(MAX_ENDPOINT_BYTES - 2));
        let field = "f".repeat(MAX_FIELD_BYTES);
        assert!(item(&format!("{ns}/{ep}"), &field).is_ok());
        assert!(item("she/insights/activity-records", "data.location.city").is_ok());
        assert!(item("rumpel/locations", "tags[]").is_ok());
        assert!(item("rumpel/locations", "naïve name").is_ok());
        for (endpoint, field) in [
            (format!("n{ns}/ep"), "f".to_owned()),
            (format!("ns/e{ep}"), "f".to_owned()),
            ("ns/ep".to_owned(), format!("f{field}")),
            ("n s/ep".to_owned(), "f".to_owned()),
            ("ns/ep#1".to_owned(), "f".to_owned()),
            ("ns/ep".to_owned(), "a\nb".to_owned()),
            ("ns/ep".to_owned(), OTHER_FIELDS.to_owned()),
            ("ns/".to_owned(), "f".to_owned()),
        ] {
            assert!(item(&endpoint, &field).is_err(), "{endpoint} {field}");
        }
    }

    #[test]
    fn deprecated_variants_parse() {
        let storage = json!({"time":"2021-03-10T13:34:59+0000","dataTableStats":[],"logEntry":"x","statsType":"storage"});
        assert_eq!(parse_item(&storage).unwrap().kind, StatsKind::Storage);
        let credit = json!({"operation":"Create()","time":"2021-03-10T13:34:59+0000","user":{},"logEntry":"x","statsType":"datacredit"});
        assert_eq!(parse_item(&credit).unwrap().kind, StatsKind::DataCredit);
        let legacy = json!({"dataDebit":{"dataDebitKey":"k","dateCreated":"2021-03-10T13:34:59+0000","client":{},
            "bundles":[{"enabled":true}]},"operation":"Create()","time":"2021-03-10T13:34:59+0000","user":{},"logEntry":"x","statsType":"datadebitEvent"});
        let StatsKind::DataDebit(e) = parse_item(&legacy).unwrap().kind else {
            panic!()
        };
        assert!(e.enabled);
        let out = json!({"time":"2021-03-10T13:34:59+0000","user":{},"dataDebitId":"d","stats":[{"endpoint":"a/b","propertyStats":{"x":4}}],"logEntry":"x","statsType":"outbound"});
        assert!(matches!(
            parse_item(&out).unwrap().kind,
            StatsKind::Outbound { .. }
        ));
    }
}
