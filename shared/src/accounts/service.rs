//! The account use cases: creation, administration, login, and the authorisation component
//! every account-authenticated endpoint uses.

use super::model::{
    Account, AccountChange, AccountGuard, AccountView, Actor, MAX_USERNAME_LEN, NewAccount,
    PasswordChange, check_account_id,
};
use super::ports::AccountStore;
use crate::auth::password;
use crate::auth::tokens::{Grant, TokenIssuer};
use crate::error::{DexError, DexResult};
use crate::page::{Cursor, Page, PageRequest};
use crate::ports::{Clock, Random, SecretStore};
use crate::roles::Role;
use crate::txlog::{Kind, LogEvent};

/// The longest `currentPassword` a password change takes (openapi.yaml `maxLength`): it is
/// only compared, and no password DEX accepts is longer.
pub const MAX_CURRENT_PASSWORD: usize = 1024;

pub struct AccountService<'a, S, K> {
    pub store: &'a S,
    pub tokens: &'a TokenIssuer<K>,
    pub clock: &'a dyn Clock,
    pub random: &'a dyn Random,
}

impl<S, K> Clone for AccountService<'_, S, K> {
    fn clone(&self) -> Self {
        Self { ..*self }
    }
}

impl<S: AccountStore, K: SecretStore> AccountService<'_, S, K> {
    pub async fn create(&self, actor: &Actor, new: NewAccount) -> DexResult<Account> {
        let username = new.username.trim().to_owned();
        let mut details = Vec::new();
        // Control characters are refused where they stand, before the trim: a vertical tab
        // around a name is not a blank the owner typed (openapi.yaml's pattern says the same).
        if username.is_empty()
            || username.chars().count() > MAX_USERNAME_LEN
            || new.username.chars().any(char::is_control)
        {
            details.push(format!(
                "username: 1 to {MAX_USERNAME_LEN} printable characters"
            ));
        }
        if let Err(e) = password::check_password_policy(&new.password) {
            details.push(e);
        }
        crate::limits::push_if_many(&mut details, "roles", &new.roles, crate::limits::MAX_ROLES);
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
            password_version: 0,
        };
        let event = LogEvent::new(
            account.subject(),
            Kind::AccountCreated,
            actor,
            serde_json::json!({ "username": account.username, "roles": AccountView::from(&account).roles }),
        );
        self.store.insert_account(&account, event).await?;
        Ok(account)
    }

    /// Accounts by username.
    pub async fn list(&self, page: PageRequest) -> DexResult<Page<Account>> {
        self.store.list_accounts(page).await
    }

    pub async fn find_by_username(&self, username: &str) -> DexResult<Option<Account>> {
        self.store.find_account_by_username(username).await
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
        if let Some(roles) = &change.roles {
            let mut details = Vec::new();
            crate::limits::push_if_many(&mut details, "roles", roles, crate::limits::MAX_ROLES);
            if !details.is_empty() {
                return Err(DexError::invalid("invalid account change", details));
            }
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
                Kind::AccountRolesChanged,
                actor,
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
                Kind::AccountDisabled
            } else {
                Kind::AccountEnabled
            };
            events.push(LogEvent::new(
                current.subject(),
                kind,
                actor,
                serde_json::json!({}),
            ));
        }
        if events.is_empty() {
            return Ok(current);
        }
        next.version = current.version + 1;
        next.updated_at = self.clock.now_millis();
        if current.is_enabled_admin() && !next.is_enabled_admin() {
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

    /// Sets a new password (the rules of account creation). The account itself must give its
    /// current password (also through the admin path); an admin changing another account's
    /// need not. Every token issued before the change stops working (its `pwv` no longer
    /// matches), the caller's own included.
    pub async fn change_password(
        &self,
        actor: &Actor,
        account_id: &str,
        change: PasswordChange,
    ) -> DexResult<Account> {
        password::check_password_policy(&change.new_password)
            .map_err(|e| DexError::invalid("invalid password", vec![e]))?;
        if let Some(given) = &change.current_password {
            crate::limits::check_len("currentPassword", given, MAX_CURRENT_PASSWORD)?;
        }
        let current = self.get(account_id).await?;
        let by_self = matches!(actor, Actor::Account(me) if me.account_id == current.account_id);
        if by_self {
            let given = change.current_password.as_deref().ok_or_else(|| {
                DexError::bad_request("currentPassword is required to change your own password")
            })?;
            if !password::verify_password(given, &current.password_hash) {
                return Err(DexError::Forbidden("the current password is wrong".into()));
            }
        }
        let mut next = current.clone();
        next.password_hash = password::hash_password(&change.new_password, self.random)?;
        next.password_version = current.password_version + 1;
        next.version = current.version + 1;
        next.updated_at = self.clock.now_millis();
        let event = LogEvent::new(
            current.subject(),
            Kind::AccountPasswordChanged,
            actor,
            serde_json::json!({ "by": if by_self { "self" } else { "admin" } }),
        );
        self.store
            .update_account(&next, current.version, vec![event])
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
            && me.is_enabled_admin()
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
                .filter(|a| a.account_id != except && a.is_enabled_admin())
            {
                if let Some(admin) = self.store.get_account(&candidate.account_id).await?
                    && admin.is_enabled_admin()
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
            page = PageRequest {
                limit: PageRequest::MAX_LIMIT,
                cursor: Some(Cursor::new(cursor)),
            };
        }
    }

    /// Username/password login. Unknown usernames cost the same hash work as known ones.
    pub async fn login(&self, username: &str, password: &str) -> DexResult<(String, Account)> {
        let refused = || DexError::Unauthorized("wrong username or password".into());
        // No account has a longer name; refusing it early keeps it out of the key.
        if username.trim().chars().count() > MAX_USERNAME_LEN {
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
        let token = self
            .tokens
            .issue(
                &account.account_id,
                Grant {
                    roles: account.roles.iter().map(Role::to_string).collect(),
                    password_version: account.password_version,
                },
                self.clock.now().timestamp(),
                self.random.hex(16),
            )
            .await?;
        Ok((token, account))
    }

    /// The authorisation component: verifies a DEX token (signature against the current and
    /// previous keys, expiry, issuer) and loads the account, which must exist and be enabled.
    /// Roles come from the account as it is now, so revoking a role takes effect at once.
    pub async fn authenticate(&self, token: Option<&str>) -> DexResult<Account> {
        let token =
            token.ok_or_else(|| DexError::Unauthorized("X-Auth-Token header missing".into()))?;
        let claims = self.tokens.verify(token).await?;
        let account =
            self.store.get_account(&claims.sub).await?.ok_or_else(|| {
                DexError::Unauthorized("the token's account no longer exists".into())
            })?;
        if account.disabled {
            return Err(DexError::Unauthorized("this account is disabled".into()));
        }
        if claims.pwv != account.password_version {
            return Err(DexError::Unauthorized(
                "the account's password changed after this token was issued: log in again".into(),
            ));
        }
        Ok(account)
    }

    /// `authenticate`, then require `role`.
    pub async fn authorize(&self, token: Option<&str>, role: &Role) -> DexResult<Account> {
        let account = self.authenticate(token).await?;
        if !account.has(role) {
            return Err(DexError::Forbidden(format!("this needs the {role} role")));
        }
        Ok(account)
    }
}
