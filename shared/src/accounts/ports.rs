//! The accounts' storage port.

use std::future::Future;

use super::model::{Account, AccountGuard};
use crate::error::DexResult;
use crate::page::{Page, PageRequest};
use crate::txlog::LogEvent;

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
    /// `update_account`, committed only if the `guard` account is still at its version too,
    /// both checked in the same atomic commit (a read then a write would let two admins
    /// demote each other); `Conflict` otherwise.
    fn update_account_guarded(
        &self,
        account: &Account,
        expected_version: u64,
        guard: &AccountGuard,
        events: Vec<LogEvent>,
    ) -> impl Future<Output = DexResult<()>> + Send;
}
