//! Login, with the deployment's first admin. The stack generates the first admin's password
//! into the `first-admin` secret at deploy time (`{"username", "password"}`, never in the
//! template) and names the username in the login function's `DEX_FIRST_ADMIN_USERNAME`. The
//! account does not exist until its first login: a login for that username while no such
//! account exists, with the generated password, creates it (the username item's conditional
//! write makes concurrent first logins create it once). Once it exists the secret is not read
//! again. The first login of all also creates the deployment's first signing key (logged).

use serde::Deserialize;

use super::login_limits::{LoginLimitStore, LoginLimits, limited};
use super::model::{Account, Actor, NewAccount, normalise_username};
use super::ports::AccountStore;
use super::service::AccountService;
use crate::auth::keyring::signing_key_created;
use crate::error::{DexError, DexResult};
use crate::ports::SecretStore;
use crate::roles::Role;
use crate::txlog::LogStore;

#[derive(Deserialize)]
struct FirstAdminSecret {
    username: String,
    password: String,
}

/// Where the first admin comes from: its username (`None`: no first admin, e.g. a local stack,
/// whose admin `dexctl ensure-admin` makes) and the secret holding its generated password.
#[derive(Debug, Clone)]
pub struct FirstAdmin {
    pub username: Option<String>,
    pub secret_name: String,
}

pub struct LoginService<'a, S, K> {
    pub accounts: AccountService<'a, S, K>,
    pub secrets: &'a K,
    pub first_admin: &'a FirstAdmin,
    pub limits: &'a LoginLimits,
}

impl<S: AccountStore + LogStore + LoginLimitStore, K: SecretStore> LoginService<'_, S, K> {
    /// `login_from` without a known source address (only the username is counted).
    pub async fn login(&self, username: &str, password: &str) -> DexResult<(String, Account)> {
        self.login_from(username, password, None).await
    }

    /// Username/password login from `source` (the client's address), refused with 429 while
    /// the username or the address has failed too often (`login_limits`): creates the first
    /// admin at its first login, and logs the deployment's first signing key when this login
    /// created it.
    pub async fn login_from(
        &self,
        username: &str,
        password: &str,
        source: Option<&str>,
    ) -> DexResult<(String, Account)> {
        let keys = self.limits.keys(username, source);
        let now = self.accounts.clock.now_millis();
        let store = self.accounts.store;
        limited(
            store,
            self.limits,
            &keys,
            now,
            self.unlimited_login(username, password),
        )
        .await
    }

    async fn unlimited_login(
        &self,
        username: &str,
        password: &str,
    ) -> DexResult<(String, Account)> {
        self.ensure_first_admin(username, password).await?;
        let result = self.accounts.login(username, password).await;
        if let Some(kid) = self.accounts.tokens.signing().take_created() {
            self.accounts
                .store
                .append_log(vec![signing_key_created(&kid, &Actor::Bootstrap)])
                .await?;
        }
        result
    }

    /// Creates the first admin when `username`/`password` are its name and generated password
    /// and it does not exist yet. Returns whether this call created it; any other login goes
    /// on as usual (a wrong password is refused there, after the same work as any other).
    pub async fn ensure_first_admin(&self, username: &str, password: &str) -> DexResult<bool> {
        let Some(configured) = self.first_admin.username.as_deref() else {
            return Ok(false);
        };
        if normalise_username(configured) != normalise_username(username)
            || self.accounts.find_by_username(username).await?.is_some()
        {
            return Ok(false);
        }
        let name = &self.first_admin.secret_name;
        let secret: FirstAdminSecret = self.secrets.get_json(name).await?.ok_or_else(|| {
            DexError::internal(format!("the first-admin secret {name} has no value"))
        })?;
        if normalise_username(&secret.username) != normalise_username(configured) {
            return Err(DexError::internal(format!(
                "the first-admin secret {name} names another username than DEX_FIRST_ADMIN_USERNAME"
            )));
        }
        if aws_lc_rs::constant_time::verify_slices_are_equal(
            secret.password.as_bytes(),
            password.as_bytes(),
        )
        .is_err()
        {
            return Ok(false);
        }
        let new = NewAccount {
            username: configured.to_owned(),
            password: secret.password,
            roles: vec![Role::Admin.to_string()],
        };
        match self.accounts.create(&Actor::Bootstrap, new).await {
            Ok(_) => Ok(true),
            // A concurrent first login created it.
            Err(DexError::Conflict(_)) => Ok(false),
            // A generated password always passes the rules: anything else is a broken setup.
            Err(DexError::BadRequest { cause, details }) => Err(DexError::internal(format!(
                "the first admin cannot be created: {cause} ({})",
                details.join("; ")
            ))),
            Err(e) => Err(e),
        }
    }
}
