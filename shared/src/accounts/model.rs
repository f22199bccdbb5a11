//! Accounts as DEX keeps them and shows them, and who acts.

use serde::{Deserialize, Serialize};

use crate::roles::Role;
use crate::txlog::Subject;

#[derive(Clone, PartialEq)]
pub struct Account {
    pub account_id: String,
    pub username: String,
    /// argon2id PHC string; never serialised into a response.
    pub password_hash: String,
    pub roles: Vec<Role>,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// Optimistic-concurrency counter.
    pub version: u64,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("account_id", &self.account_id)
            .field("username", &self.username)
            .field("roles", &self.roles)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

impl Account {
    pub fn has(&self, role: &Role) -> bool {
        self.roles.contains(role)
    }

    pub fn subject(&self) -> Subject {
        Subject::account(&self.account_id)
    }
}

/// An account as the API shows it: never the hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub account_id: String,
    pub username: String,
    pub roles: Vec<String>,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        Self {
            account_id: a.account_id.clone(),
            username: a.username.clone(),
            roles: a.roles.iter().map(Role::to_string).collect(),
            disabled: a.disabled,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// Usernames are unique regardless of case and surrounding blanks.
pub fn normalise_username(username: &str) -> String {
    username.trim().to_lowercase()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAccount {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AccountChange {
    pub roles: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

/// Who is acting, as every service and log entry names it.
#[derive(Debug, Clone)]
pub enum Actor {
    /// An authenticated account.
    Account(Account),
    /// A HAT whose signed token was verified (its address).
    Hat(String),
    /// The operator's command line.
    Operator,
    /// An unauthenticated caller (e.g. a HAT registering itself).
    Anonymous,
}

impl Actor {
    /// The actor as the log stores it: `account:<id>`, `hat:<address>`, `dexctl`, `anonymous`.
    pub fn id(&self) -> String {
        match self {
            Actor::Account(a) => a.subject().into(),
            Actor::Hat(address) => Subject::hat(address).into(),
            Actor::Operator => "dexctl".into(),
            Actor::Anonymous => "anonymous".into(),
        }
    }
}
