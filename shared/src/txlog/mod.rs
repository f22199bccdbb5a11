//! The transaction log (decisions §11): every state change is written with its log entry in
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

#[cfg(test)]
mod tests {
    use super::*;

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
