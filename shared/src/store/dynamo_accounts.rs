//! Accounts on DynamoDB: the account item plus a username item that makes usernames unique.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem};

use super::dynamo::{
    CommitFailure, DynamoStore, Item, get_bool, get_n, get_s, get_string_list, n, s, sdk_error,
    string_list,
};
use super::{AccountGuard, AccountStore, Page, PageRequest, guard_changed};
use crate::accounts::{Account, normalise_username};
use crate::error::{DexError, DexResult};
use crate::roles::Role;
use crate::txlog::LogEvent;

fn account_key(id: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(format!("ACCOUNT#{id}"))),
        ("sk".to_owned(), s("ACCOUNT")),
    ])
}

pub(super) fn account_item(a: &Account) -> Item {
    let mut item = account_key(&a.account_id);
    item.extend([
        ("accountId".to_owned(), s(&a.account_id)),
        ("username".to_owned(), s(&a.username)),
        ("passwordHash".to_owned(), s(&a.password_hash)),
        (
            "roles".to_owned(),
            string_list(a.roles.iter().map(Role::to_string)),
        ),
        ("disabled".to_owned(), AttributeValue::Bool(a.disabled)),
        ("createdAt".to_owned(), n(a.created_at)),
        ("updatedAt".to_owned(), n(a.updated_at)),
        ("version".to_owned(), n(a.version)),
        ("gsi1pk".to_owned(), s("ACCOUNTS")),
        ("gsi1sk".to_owned(), s(normalise_username(&a.username))),
    ]);
    item
}

fn account_from(item: &Item) -> DexResult<Account> {
    let roles = get_string_list(item, "roles")
        .iter()
        .map(|r| Role::parse(r).map_err(DexError::internal))
        .collect::<DexResult<Vec<_>>>()?;
    Ok(Account {
        account_id: get_s(item, "accountId")?,
        username: get_s(item, "username")?,
        password_hash: get_s(item, "passwordHash")?,
        roles,
        disabled: get_bool(item, "disabled"),
        created_at: get_n(item, "createdAt")?,
        updated_at: get_n(item, "updatedAt")?,
        version: get_n(item, "version")?,
    })
}

impl AccountStore for DynamoStore {
    async fn insert_account(&self, account: &Account, event: LogEvent) -> DexResult<()> {
        let username = HashMap::from([
            (
                "pk".to_owned(),
                s(format!(
                    "USERNAME#{}",
                    normalise_username(&account.username)
                )),
            ),
            ("sk".to_owned(), s("USERNAME")),
            ("accountId".to_owned(), s(&account.account_id)),
        ]);
        let writes = vec![
            self.put(username, Some("attribute_not_exists(pk)"), &[], vec![]),
            self.put(
                account_item(account),
                Some("attribute_not_exists(pk)"),
                &[],
                vec![],
            ),
        ];
        match self.commit(writes, vec![event]).await {
            Ok(_) => Ok(()),
            Err(f) if f.failed_index() == Some(0) => Err(DexError::Conflict(format!(
                "username {:?} is taken",
                account.username
            ))),
            Err(CommitFailure::Condition(_)) => {
                Err(DexError::Conflict("account id collision".into()))
            }
            Err(CommitFailure::Error(e)) => Err(e),
        }
    }

    async fn get_account(&self, account_id: &str) -> DexResult<Option<Account>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(account_key(account_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        out.item().map(account_from).transpose()
    }

    async fn find_account_by_username(&self, username: &str) -> DexResult<Option<Account>> {
        let key = HashMap::from([
            (
                "pk".to_owned(),
                s(format!("USERNAME#{}", normalise_username(username))),
            ),
            ("sk".to_owned(), s("USERNAME")),
        ]);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        match out.item() {
            None => Ok(None),
            Some(item) => self.get_account(&get_s(item, "accountId")?).await,
        }
    }

    async fn list_accounts(&self, page: PageRequest) -> DexResult<Page<Account>> {
        self.query_page(Some("gsi1"), "ACCOUNTS", None, &page, account_from)
            .await
    }

    async fn update_account(
        &self,
        account: &Account,
        expected_version: u64,
        events: Vec<LogEvent>,
    ) -> DexResult<()> {
        let write = self.put(
            account_item(account),
            Some("attribute_exists(pk) AND #v = :v"),
            &[("#v", "version")],
            vec![(":v", n(expected_version))],
        );
        match self.commit(vec![write], events).await {
            Ok(_) => Ok(()),
            Err(CommitFailure::Condition(_)) => Err(DexError::Conflict(
                "the account changed meanwhile; read it again and retry".into(),
            )),
            Err(CommitFailure::Error(e)) => Err(e),
        }
    }

    async fn update_account_guarded(
        &self,
        account: &Account,
        expected_version: u64,
        guard: &AccountGuard,
        events: Vec<LogEvent>,
    ) -> DexResult<()> {
        let write = self.put(
            account_item(account),
            Some("attribute_exists(pk) AND #v = :v"),
            &[("#v", "version")],
            vec![(":v", n(expected_version))],
        );
        // The guard is only checked, never written: any change to it bumps its version.
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(account_key(&guard.account_id)))
            .condition_expression("attribute_exists(pk) AND #v = :v")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":v", n(guard.version))
            .build()
            .expect("table, key and condition set");
        let check = TransactWriteItem::builder().condition_check(check).build();
        match self.commit(vec![write, check], events).await {
            Ok(_) => Ok(()),
            Err(f) if f.failed_index() == Some(0) => Err(DexError::Conflict(
                "the account changed meanwhile; read it again and retry".into(),
            )),
            Err(CommitFailure::Condition(_)) => Err(DexError::Conflict(guard_changed())),
            Err(CommitFailure::Error(e)) => Err(e),
        }
    }
}
