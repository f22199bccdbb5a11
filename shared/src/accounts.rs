//! DEX accounts (decisions §3): creation, administration, login, and the authorisation
//! component every account-authenticated endpoint uses.

use serde::{Deserialize, Serialize};

use crate::auth::dex_token::{self, DexClaims};
use crate::auth::password;
use crate::error::{DexError, DexResult};
use crate::keyring::SigningKeys;
use crate::ports::{Clock, Random};
use crate::roles::Role;
use crate::store::{AccountGuard, AccountStore, PageRequest};
use crate::txlog::LogEvent;

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

    pub fn subject(&self) -> String {
        format!("account:{}", self.account_id)
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

/// Whether an account keeps the deployment administered: an enabled admin.
fn is_enabled_admin(account: &Account) -> bool {
    account.has(&Role::Admin) && !account.disabled
}

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

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AccountChange {
    pub roles: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

/// Who is acting: an authenticated account or the operator's command line.
#[derive(Debug, Clone)]
pub enum Actor {
    Account(Account),
    Operator,
}

impl Actor {
    pub fn id(&self) -> String {
        match self {
            Actor::Account(a) => a.subject(),
            Actor::Operator => "dexctl".into(),
        }
    }
}

pub struct AccountService<'a, S> {
    pub store: &'a S,
    pub clock: &'a dyn Clock,
    pub random: &'a dyn Random,
}

impl<S: AccountStore> AccountService<'_, S> {
    pub async fn create(&self, actor: &Actor, new: NewAccount) -> DexResult<Account> {
        let username = new.username.trim().to_owned();
        let mut details = Vec::new();
        if username.is_empty()
            || username.len() > MAX_USERNAME_LEN
            || username.chars().any(char::is_control)
        {
            details.push(format!(
                "username: 1 to {MAX_USERNAME_LEN} printable characters"
            ));
        }
        if let Err(e) = password::check_password_policy(&new.password) {
            details.push(e);
        }
        let roles = match Role::parse_all(&new.roles) {
            Ok(r) => r,
            Err(DexError::BadRequest { details: mut d, .. }) => {
                details.append(&mut d);
                vec![]
            }
            Err(e) => return Err(e),
        };
        if !details.is_empty() {
            return Err(DexError::invalid("invalid account", details));
        }
        let now = self.clock.now_millis();
        let account = Account {
            account_id: self.random.uuid().to_string(),
            username,
            password_hash: password::hash_password(&new.password, self.random)?,
            roles,
            disabled: false,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let event = LogEvent::new(
            account.subject(),
            "account.created",
            actor.id(),
            serde_json::json!({ "username": account.username, "roles": AccountView::from(&account).roles }),
        );
        self.store.insert_account(&account, event).await?;
        Ok(account)
    }

    pub async fn get(&self, account_id: &str) -> DexResult<Account> {
        check_account_id(account_id)?;
        self.store
            .get_account(account_id)
            .await?
            .ok_or_else(|| DexError::NotFound(format!("no account {account_id}")))
    }

    /// Changes roles and/or the disabled flag; each change is its own log entry.
    pub async fn update(
        &self,
        actor: &Actor,
        account_id: &str,
        change: AccountChange,
    ) -> DexResult<Account> {
        if change.roles.is_none() && change.disabled.is_none() {
            return Err(DexError::bad_request(
                "nothing to change: give roles and/or disabled",
            ));
        }
        let roles = change.roles.as_deref().map(Role::parse_all).transpose()?;
        let current = self.get(account_id).await?;
        let mut next = current.clone();
        let mut events = Vec::new();
        if let Some(roles) = roles
            && roles != current.roles
        {
            next.roles = roles;
            events.push(LogEvent::new(
                current.subject(),
                "account.roles-changed",
                actor.id(),
                serde_json::json!({
                    "from": AccountView::from(&current).roles,
                    "to": next.roles.iter().map(Role::to_string).collect::<Vec<_>>(),
                }),
            ));
        }
        if let Some(disabled) = change.disabled
            && disabled != current.disabled
        {
            if let Actor::Account(me) = actor
                && me.account_id == current.account_id
                && disabled
            {
                return Err(DexError::Conflict(
                    "an admin cannot disable their own account".into(),
                ));
            }
            next.disabled = disabled;
            let kind = if disabled {
                "account.disabled"
            } else {
                "account.enabled"
            };
            events.push(LogEvent::new(
                current.subject(),
                kind,
                actor.id(),
                serde_json::json!({}),
            ));
        }
        if events.is_empty() {
            return Ok(current);
        }
        next.version = current.version + 1;
        next.updated_at = self.clock.now_millis();
        if is_enabled_admin(&current) && !is_enabled_admin(&next) {
            if let Actor::Account(me) = actor
                && me.account_id == current.account_id
            {
                return Err(DexError::Conflict(
                    "an admin cannot take the admin role away from their own account".into(),
                ));
            }
            // Another enabled admin must remain, and the write is conditioned on it being
            // unchanged: two admins demoting each other cannot both succeed.
            let guard = self.other_enabled_admin(actor, &current.account_id).await?;
            self.store
                .update_account_guarded(&next, current.version, &guard, events)
                .await?;
            return Ok(next);
        }
        self.store
            .update_account(&next, current.version, events)
            .await?;
        Ok(next)
    }

    /// An enabled admin other than `except`, as read now (consistently): the acting admin
    /// when it is one, else the first one listed.
    async fn other_enabled_admin(&self, actor: &Actor, except: &str) -> DexResult<AccountGuard> {
        let last = || {
            DexError::Conflict(
                "this is the last enabled admin: it cannot lose the admin role or be disabled"
                    .into(),
            )
        };
        if let Actor::Account(me) = actor
            && me.account_id != except
            && is_enabled_admin(me)
        {
            return Ok(AccountGuard {
                account_id: me.account_id.clone(),
                version: me.version,
            });
        }
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        loop {
            let listed = self.store.list_accounts(page).await?;
            // The listing may lag: confirm the candidate with a consistent read.
            for candidate in listed
                .items
                .iter()
                .filter(|a| a.account_id != except && is_enabled_admin(a))
            {
                if let Some(admin) = self.store.get_account(&candidate.account_id).await?
                    && is_enabled_admin(&admin)
                {
                    return Ok(AccountGuard {
                        account_id: admin.account_id,
                        version: admin.version,
                    });
                }
            }
            let Some(cursor) = listed.cursor else {
                return Err(last());
            };
            page = PageRequest::parse(None, Some(&cursor))?;
            page.limit = PageRequest::MAX_LIMIT;
        }
    }

    /// Username/password login. Unknown usernames cost the same hash work as known ones.
    pub async fn login(
        &self,
        keys: &SigningKeys,
        issuer: &str,
        lifetime_secs: i64,
        username: &str,
        password: &str,
    ) -> DexResult<(String, Account)> {
        let refused = || DexError::Unauthorized("wrong username or password".into());
        // No account has a longer name; refusing it early keeps it out of the key.
        if username.trim().len() > MAX_USERNAME_LEN {
            return Err(DexError::invalid(
                "invalid username",
                vec![format!("username: at most {MAX_USERNAME_LEN} characters")],
            ));
        }
        let Some(account) = self.store.find_account_by_username(username).await? else {
            password::verify_against_dummy(password);
            return Err(refused());
        };
        if !password::verify_password(password, &account.password_hash) {
            return Err(refused());
        }
        if account.disabled {
            return Err(DexError::Forbidden("this account is disabled".into()));
        }
        let now = self.clock.now().timestamp();
        let claims = DexClaims {
            iss: issuer.to_owned(),
            sub: account.account_id.clone(),
            iat: now,
            exp: now + lifetime_secs,
            jti: self.random.hex(16),
            roles: account.roles.iter().map(Role::to_string).collect(),
        };
        let token = dex_token::sign(&*keys.ring().await?, &claims)?;
        Ok((token, account))
    }

    /// The authorisation component: verifies a DEX token (signature against the current and
    /// previous keys, expiry, issuer) and loads the account, which must exist and be enabled.
    /// Roles come from the account as it is now, so revoking a role takes effect at once.
    pub async fn authenticate(
        &self,
        keys: &SigningKeys,
        issuer: &str,
        token: Option<&str>,
    ) -> DexResult<Account> {
        let token =
            token.ok_or_else(|| DexError::Unauthorized("X-Auth-Token header missing".into()))?;
        let claims = keys.verify(issuer, token).await?;
        let account =
            self.store.get_account(&claims.sub).await?.ok_or_else(|| {
                DexError::Unauthorized("the token's account no longer exists".into())
            })?;
        if account.disabled {
            return Err(DexError::Unauthorized("this account is disabled".into()));
        }
        Ok(account)
    }

    /// `authenticate`, then require `role`.
    pub async fn authorize(
        &self,
        keys: &SigningKeys,
        issuer: &str,
        token: Option<&str>,
        role: &Role,
    ) -> DexResult<Account> {
        let account = self.authenticate(keys, issuer, token).await?;
        if !account.has(role) {
            return Err(DexError::Forbidden(format!("this needs the {role} role")));
        }
        Ok(account)
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
