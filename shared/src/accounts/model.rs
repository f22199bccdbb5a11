//! Accounts as DEX keeps them and shows them, and who acts.

use serde::{Deserialize, Serialize};

use crate::error::{DexError, DexResult};
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
    /// Incremented by every password change; tokens carry the value they were issued with
    /// (`pwv`), so a change ends every earlier token of the account.
    pub password_version: u64,
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

    /// Whether the account keeps the deployment administered: an enabled admin.
    pub fn is_enabled_admin(&self) -> bool {
        self.has(&Role::Admin) && !self.disabled
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAccount {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

impl std::fmt::Debug for NewAccount {
    // Never the password, even in a debug dump.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAccount")
            .field("username", &self.username)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

/// The longest username DEX stores (and so the longest one worth looking up).
pub const MAX_USERNAME_LEN: usize = 254;
/// Account ids are UUIDs; anything much longer is not one (and would break key limits).
pub const MAX_ACCOUNT_ID_LEN: usize = 64;

/// Refuses an account id no account can have, before it becomes part of a key.
pub fn check_account_id(account_id: &str) -> DexResult<()> {
    if account_id.is_empty() || account_id.len() > MAX_ACCOUNT_ID_LEN {
        return Err(DexError::invalid(
            "invalid account id",
            vec![format!("accountId: 1 to {MAX_ACCOUNT_ID_LEN} characters")],
        ));
    }
    Ok(())
}

/// An account that must still be at `version` when another account's change commits: the
/// enabled admin that keeps the deployment administered while another admin is demoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountGuard {
    pub account_id: String,
    pub version: u64,
}

/// The `Conflict` message when an [`AccountGuard`] no longer holds.
pub fn guard_changed() -> String {
    "an admin account changed meanwhile; read the accounts again and retry".into()
}

/// A password change: by the account itself (`currentPassword` required) or by an admin.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordChange {
    #[serde(default)]
    pub current_password: Option<String>,
    pub new_password: String,
}

impl std::fmt::Debug for PasswordChange {
    // Never a password, even in a debug dump.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordChange").finish_non_exhaustive()
    }
}

/// Absent fields are left as they are; `null` is not a value of either (a 400).
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AccountChange {
    #[serde(default, deserialize_with = "crate::limits::present")]
    pub roles: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::limits::present")]
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
    /// The deployment itself: its first admin, created at that admin's first login, and its
    /// first signing key.
    Bootstrap,
    /// The scheduled sweep of expired claim reservations (offers::sweep).
    Sweeper,
}

impl Actor {
    /// The actor as the log stores it: `account:<id>`, `hat:<address>`, `dexctl`, `anonymous`,
    /// `bootstrap`, `sweeper`.
    pub fn id(&self) -> String {
        match self {
            Actor::Account(a) => a.subject().into(),
            Actor::Hat(address) => Subject::hat(address).into(),
            Actor::Operator => "dexctl".into(),
            Actor::Anonymous => "anonymous".into(),
            Actor::Bootstrap => "bootstrap".into(),
            Actor::Sweeper => "sweeper".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_new_password() {
        let new: NewAccount = serde_json::from_value(serde_json::json!({
            "username": "ops@example.com", "password": "a very secret password", "roles": ["admin"],
        }))
        .unwrap();
        let text = format!("{new:?}");
        assert!(
            text.contains("ops@example.com") && text.contains("admin"),
            "{text}"
        );
        assert!(!text.contains("very secret"), "{text}");
    }

    #[test]
    fn account_ids_are_bounded() {
        assert!(check_account_id("0b5e4f3a-6f1c-4d8e-9a1b-2c3d4e5f6a7b").is_ok());
        assert_eq!(check_account_id("").unwrap_err().status(), 400);
        let long = "a".repeat(MAX_ACCOUNT_ID_LEN + 1);
        assert_eq!(check_account_id(&long).unwrap_err().status(), 400);
    }
}
