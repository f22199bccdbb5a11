//! DEX accounts (docs/decisions.md §3): creation, administration, login, and the authorisation
//! component every account-authenticated endpoint uses.

use serde::{Deserialize, Serialize};

use crate::auth::dex_token::{self, DexClaims};
use crate::auth::password;
use crate::error::{DexError, DexResult};
use crate::keyring::SigningKeys;
use crate::ports::{Clock, Random};
use crate::roles::Role;
use crate::store::AccountStore;
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
        if username.is_empty() || username.len() > 254 || username.chars().any(char::is_control) {
            details.push("username: 1 to 254 printable characters".to_owned());
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
                return Err(DexError::bad_request(
                    "an admin cannot disable their own account",
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
        self.store
            .update_account(&next, current.version, events)
            .await?;
        Ok(next)
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
