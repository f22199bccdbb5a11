//! The transaction log (docs/decisions.md §11): every state change is written with its log entry in
//! one DynamoDB transaction, and entries are chained per subject by hash, so altering a
//! subject's history is detectable by anyone holding it.

use aws_lc_rs::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};

pub mod kinds;
pub mod ports;
pub mod service;

pub use kinds::{Kind, Subject};
pub use ports::LogStore;
pub use service::LogService;

use crate::accounts::Actor;

/// What a state change says about itself; the store turns it into a chained entry.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEvent {
    /// `account:<id>`, `cluster:<domain>`, `hat:<address>`, `dex:signing-key`.
    pub subject: String,
    /// e.g. `account.created`.
    pub kind: String,
    /// Who caused it: `account:<id>`, `hat:<address>`, `dexctl`, `anonymous`.
    pub actor: String,
    /// Facts about the change (never secrets, never payloads).
    pub details: serde_json::Value,
}

impl LogEvent {
    pub fn new(subject: Subject, kind: Kind, actor: &Actor, details: serde_json::Value) -> Self {
        Self {
            subject: subject.into(),
            kind: kind.as_str().to_owned(),
            actor: actor.id(),
            details,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    pub subject: String,
    pub seq: u64,
    pub kind: String,
    pub actor: String,
    /// Epoch milliseconds.
    pub at: i64,
    pub details: serde_json::Value,
    pub hash: String,
    pub prev_hash: String,
}

/// The `prevHash` of a subject's first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Chains `events` onto their subjects' current heads (`head(subject)` = the last entry's
/// `(seq, hash)`, `None` for a new chain), in order, all stamped `at`. Answers the entries
/// and each subject's new head. Every store commits exactly these.
pub fn chain_events<'a>(
    events: &[LogEvent],
    subjects: impl IntoIterator<Item = &'a str>,
    head: impl Fn(&str) -> Option<(u64, String)>,
    at: i64,
) -> (
    Vec<LogEntry>,
    std::collections::HashMap<&'a str, (u64, String)>,
) {
    let mut next: std::collections::HashMap<&'a str, (u64, String)> = subjects
        .into_iter()
        .map(|s| (s, head(s).unwrap_or((0, GENESIS_HASH.to_owned()))))
        .collect();
    let mut entries = Vec::with_capacity(events.len());
    for event in events {
        let (seq, prev) = next
            .get_mut(event.subject.as_str())
            .expect("every event's subject is among the subjects");
        *seq += 1;
        let entry = LogEntry::chain(event.clone(), *seq, at, prev.clone());
        *prev = entry.hash.clone();
        entries.push(entry);
    }
    (entries, next)
}

impl LogEntry {
    pub fn chain(event: LogEvent, seq: u64, at: i64, prev_hash: String) -> Self {
        let mut entry = Self {
            subject: event.subject,
            seq,
            kind: event.kind,
            actor: event.actor,
            at,
            details: event.details,
            hash: String::new(),
            prev_hash,
        };
        entry.hash = entry.compute_hash();
        entry
    }

    /// SHA-256 (hex) over the canonical JSON of every field but `hash` itself. serde_json
    /// sorts object keys, so the text is canonical and anyone can recompute it.
    pub fn compute_hash(&self) -> String {
        let canonical = serde_json::json!({
            "subject": self.subject, "seq": self.seq, "kind": self.kind, "actor": self.actor,
            "at": self.at, "details": self.details, "prevHash": self.prev_hash,
        });
        hex::encode(digest(&SHA256, canonical.to_string().as_bytes()))
    }
}

/// Checks a subject's history, oldest first: every hash matches its content and links to the
/// previous entry. Returns the sequence number of the first bad entry.
pub fn verify_chain(entries: &[LogEntry]) -> Result<(), u64> {
    let mut prev = GENESIS_HASH.to_owned();
    for (i, entry) in entries.iter().enumerate() {
        if entry.seq != i as u64 + 1
            || entry.prev_hash != prev
            || entry.compute_hash() != entry.hash
        {
            return Err(entry.seq);
        }
        prev = entry.hash.clone();
    }
    Ok(())
}

/// Filters of the admin log query; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub subject: Option<String>,
    pub actor: Option<String>,
    pub kind: Option<String>,
    /// Inclusive bounds, epoch ms.
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl LogFilter {
    /// The query parameters of `GET /api/admin/log`: over-long values or unreadable times
    /// are a 400.
    pub fn parse(
        subject: Option<String>,
        actor: Option<String>,
        kind: Option<String>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> crate::error::DexResult<Self> {
        use crate::limits::{MAX_TIME_PARAM, check_len};
        let time = |name, value: Option<&str>| {
            value
                .map(|v| {
                    check_len(name, v, MAX_TIME_PARAM)?;
                    crate::time::parse_instant_param(v)
                })
                .transpose()
        };
        let filter = Self {
            subject,
            actor,
            kind,
            // Nothing was logged before the epoch: an earlier `from` means "from the start".
            from: time("from", from)?.map(|f: i64| f.max(0)),
            to: time("to", to)?,
        };
        filter.check()?;
        Ok(filter)
    }

    /// `from` after `to`, or `to` before the epoch: no entry can match (answered as an empty
    /// page, never asked).
    pub fn is_empty_range(&self) -> bool {
        matches!((self.from, self.to), (Some(from), Some(to)) if from > to)
            || self.to.is_some_and(|to| to < 0)
    }

    /// Each filter becomes part of a key: bounded before any query.
    pub fn check(&self) -> crate::error::DexResult<()> {
        use crate::limits::{MAX_KEY_PART, check_len};
        for (field, value) in [
            ("subject", &self.subject),
            ("actor", &self.actor),
            ("kind", &self.kind),
        ] {
            if let Some(value) = value {
                check_len(field, value, MAX_KEY_PART)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_before_the_epoch_match_nothing_earlier_than_it() {
        let before = LogFilter::parse(None, None, None, Some("-0865088"), Some("-88")).unwrap();
        assert!(before.is_empty_range());
        let since = LogFilter::parse(None, None, None, Some("-5"), None).unwrap();
        assert_eq!(since.from, Some(0));
        assert!(!since.is_empty_range());
    }

    #[test]
    fn log_filters_are_bounded_and_read_leniently() {
        let filter = LogFilter::parse(
            Some("hat:a.hubat.net".into()),
            None,
            None,
            Some("2025-01-01T00:00:00Z"),
            Some("1767225600000"),
        )
        .unwrap();
        assert_eq!(filter.from, Some(1_735_689_600_000));
        assert!(!filter.is_empty_range());
        let backwards = LogFilter::parse(None, None, None, Some("2000"), Some("1000")).unwrap();
        assert!(backwards.is_empty_range());
        let long_time = "1".repeat(crate::limits::MAX_TIME_PARAM + 1);
        assert!(LogFilter::parse(None, None, None, Some(&long_time), None).is_err());
        assert!(LogFilter::parse(None, None, None, None, Some("yesterday")).is_err());
        let long = "k".repeat(crate::limits::MAX_KEY_PART + 1);
        assert_eq!(
            LogFilter::parse(None, None, Some(long), None, None)
                .unwrap_err()
                .status(),
            400
        );
    }

    fn history() -> Vec<LogEntry> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=3)
            .map(|seq| {
                let e = LogEntry::chain(
                    LogEvent::new(
                        Subject::hat("a.hubat.net"),
                        Kind::StatsAccepted,
                        &Actor::Hat("a.hubat.net".into()),
                        serde_json::json!({"n": seq}),
                    ),
                    seq,
                    1_000 + seq as i64,
                    prev.clone(),
                );
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify_chain(&history()), Ok(()));
    }

    #[test]
    fn tampering_is_detected() {
        let mut h = history();
        h[1].details = serde_json::json!({"n": 99});
        assert_eq!(verify_chain(&h), Err(2));
        let mut h = history();
        h.remove(1);
        assert!(verify_chain(&h).is_err());
        let mut h = history();
        h[2].hash = h[2].compute_hash().replace('a', "b");
        assert!(verify_chain(&h).is_err() || h[2].hash == h[2].compute_hash());
    }
}
