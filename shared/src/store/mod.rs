//! Storage ports: one narrow trait per capability, so each function depends only on what it
//! uses. `dynamo` implements them all on one DynamoDB table.

pub mod counters;
pub mod dynamo;
mod dynamo_accounts;
mod dynamo_hats;
mod dynamo_log;
mod dynamo_stats;
pub mod schema;

use std::collections::BTreeMap;
use std::future::Future;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::accounts::Account;
use crate::error::{DexError, DexResult};
use crate::txlog::{LogEntry, LogEvent, LogFilter};

pub use dynamo::DynamoStore;
pub use dynamo_hats::HATS_COUNTER;

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

pub trait AccountStore: Send + Sync {
    /// Creates the account and its log entry; `Conflict` when the username is taken.
    fn insert_account(
        &self,
        account: &Account,
        event: LogEvent,
    ) -> impl Future<Output = DexResult<()>> + Send;
    fn get_account(
        &self,
        account_id: &str,
    ) -> impl Future<Output = DexResult<Option<Account>>> + Send;
    fn find_account_by_username(
        &self,
        username: &str,
    ) -> impl Future<Output = DexResult<Option<Account>>> + Send;
    fn list_accounts(
        &self,
        page: PageRequest,
    ) -> impl Future<Output = DexResult<Page<Account>>> + Send;
    /// Replaces the account if it is still at `expected_version`; `Conflict` otherwise.
    fn update_account(
        &self,
        account: &Account,
        expected_version: u64,
        events: Vec<LogEvent>,
    ) -> impl Future<Output = DexResult<()>> + Send;
    /// `update_account`, committed only if the `guard` account is still at its version too;
    /// `Conflict` otherwise. The DynamoDB adapter checks both in one transaction; this
    /// default reads then writes, which is only good enough for single-threaded fakes.
    fn update_account_guarded(
        &self,
        account: &Account,
        expected_version: u64,
        guard: &AccountGuard,
        events: Vec<LogEvent>,
    ) -> impl Future<Output = DexResult<()>> + Send {
        async move {
            match self.get_account(&guard.account_id).await? {
                Some(g) if g.version == guard.version => {
                    self.update_account(account, expected_version, events).await
                }
                _ => Err(DexError::Conflict(guard_changed())),
            }
        }
    }
}

/// An account that must still be at `version` when another account's change commits: the
/// enabled admin that keeps the deployment administered while another admin is demoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountGuard {
    pub account_id: String,
    pub version: u64,
}

pub(crate) fn guard_changed() -> String {
    "an admin account changed meanwhile; read the accounts again and retry".into()
}

pub trait LogStore: Send + Sync {
    /// Appends events that accompany no other state change (e.g. a key rotation, whose state
    /// lives in Secrets Manager).
    fn append_log(
        &self,
        events: Vec<LogEvent>,
    ) -> impl Future<Output = DexResult<Vec<LogEntry>>> + Send;
    /// Newest first.
    fn query_log(
        &self,
        filter: &LogFilter,
        page: PageRequest,
    ) -> impl Future<Output = DexResult<Page<LogEntry>>> + Send;
    /// One subject's history, oldest first, for chain verification.
    fn subject_history(
        &self,
        subject: &str,
        page: PageRequest,
    ) -> impl Future<Output = DexResult<Page<LogEntry>>> + Send;
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
