//! Accounts on DynamoDB: the account item plus a username item that makes usernames unique.

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem};

use super::item::{Codec, get_bool, get_n, get_s, get_string_list, n, s, string_list};
use super::keys::{self, gsi};
use super::{Commit, DynamoStore, Item, Query};
use dex::accounts::{Account, AccountGuard, AccountStore, guard_changed, normalise_username};
use dex::error::{DexError, DexResult};
use dex::page::{Page, PageRequest};
use dex::roles::Role;
use dex::txlog::LogEvent;

impl Codec for Account {
    fn to_item(&self) -> Item {
        let a = self;
        let mut item = keys::account(&a.account_id);
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
            ("passwordVersion".to_owned(), n(a.password_version)),
        ]);
        item.extend(gsi("gsi1", keys::ACCOUNTS, normalise_username(&a.username)));
        item
    }

    fn from_item(item: &Item) -> DexResult<Self> {
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
            // Accounts written before password changes existed have none.
            password_version: if item.contains_key("passwordVersion") {
                get_n(item, "passwordVersion")?
            } else {
                0
            },
        })
    }
}

impl AccountStore for DynamoStore {
    async fn insert_account(&self, account: &Account, event: LogEvent) -> DexResult<()> {
        let mut username = keys::username(&account.username);
        username.insert("accountId".to_owned(), s(&account.account_id));
        let writes = vec![self.put_new(username), self.put_new(account.to_item())];
        match self.commit(writes, vec![event]).await? {
            Commit::Done(_) => Ok(()),
            refused if refused.refused_index() == Some(0) => Err(DexError::Conflict(format!(
                "username {:?} is taken",
                account.username
            ))),
            Commit::Refused(_) => Err(DexError::Conflict("account id collision".into())),
        }
    }

    async fn get_account(&self, account_id: &str) -> DexResult<Option<Account>> {
        self.get_item(keys::account(account_id), true)
            .await?
            .as_ref()
            .map(Account::from_item)
            .transpose()
    }

    async fn find_account_by_username(&self, username: &str) -> DexResult<Option<Account>> {
        match self.get_item(keys::username(username), true).await? {
            None => Ok(None),
            Some(item) => self.get_account(&get_s(&item, "accountId")?).await,
        }
    }

    async fn list_accounts(&self, page: PageRequest) -> DexResult<Page<Account>> {
        let query = Query {
            index: Some("gsi1"),
            partition: keys::ACCOUNTS,
            ..Query::default()
        };
        self.query_page(query, &page).await
    }

    async fn update_account(
        &self,
        account: &Account,
        expected_version: u64,
        events: Vec<LogEvent>,
    ) -> DexResult<()> {
        let write = self.put_at_version(account.to_item(), expected_version, true);
        self.commit(vec![write], events)
            .await?
            .or_conflict("the account changed meanwhile; read it again and retry")?;
        Ok(())
    }

    async fn update_account_guarded(
        &self,
        account: &Account,
        expected_version: u64,
        guard: &AccountGuard,
        events: Vec<LogEvent>,
    ) -> DexResult<()> {
        let write = self.put_at_version(account.to_item(), expected_version, true);
        // The guard is only checked, never written: any change to it bumps its version.
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(keys::account(&guard.account_id)))
            .condition_expression("attribute_exists(pk) AND #v = :v")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":v", n(guard.version))
            .build()
            .expect("table, key and condition set");
        let check = TransactWriteItem::builder().condition_check(check).build();
        match self.commit(vec![write, check], events).await? {
            Commit::Done(_) => Ok(()),
            refused if refused.refused_index() == Some(0) => Err(DexError::Conflict(
                "the account changed meanwhile; read it again and retry".into(),
            )),
            Commit::Refused(_) => Err(DexError::Conflict(guard_changed())),
        }
    }
}
