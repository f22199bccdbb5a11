//! The data plug use cases (docs/decisions.md §8, §13 "Data plugs"): register, change and
//! approve (admins, `dexctl`), the public listing, and connect (owner or admin).

use serde::Deserialize;

use super::bcrypt_hash;
use super::model::{DataPlug, PlugConnection};
use super::ports::PlugStore;
use crate::accounts::{Account, AccountStore, Actor, check_account_id};
use crate::error::{DexError, DexResult};
use crate::hats::calls::{EnsuredUser, HatCalls, HatUser, UserRole};
use crate::hats::{HatHttp, HatStore};
use crate::ports::{Clock, Random, SecretStore};
use crate::roles::Role;
use crate::txlog::{Kind, LogEvent, Subject};

pub const MAX_NAME: usize = 64;
pub const MAX_DESCRIPTION: usize = 2000;
pub const MAX_URL: usize = 2048;
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The role the plug's user gets on a HAT, with the plug's name as detail.
pub const PLUG_HAT_ROLE: &str = "datacredit";

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewPlug {
    pub name: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
    pub illustration_url: Option<String>,
    pub provider_id: Option<String>,
    pub password: Option<String>,
}

/// Absent fields are left as they are; `null` is not a value of any (a 400).
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlugChange {
    #[serde(default, deserialize_with = "crate::limits::present")]
    pub approved: Option<bool>,
    #[serde(default, deserialize_with = "crate::limits::present")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "crate::limits::present")]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "crate::limits::present")]
    pub illustration_url: Option<String>,
    #[serde(default, deserialize_with = "crate::limits::present")]
    pub password: Option<String>,
}

impl std::fmt::Debug for PlugChange {
    // Never the password, even in a debug dump.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlugChange")
            .field("approved", &self.approved)
            .field("description", &self.description)
            .field("url", &self.url)
            .field("illustration_url", &self.illustration_url)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for NewPlug {
    // Never the password, even in a debug dump.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewPlug")
            .field("name", &self.name)
            .field("provider_id", &self.provider_id)
            .finish_non_exhaustive()
    }
}

pub struct PlugService<'a, S> {
    pub store: &'a S,
    pub clock: &'a dyn Clock,
    pub random: &'a dyn Random,
    /// Whether HAT addresses may carry a `:port` (only when HAT hosts are pinned, locally).
    pub allow_ports: bool,
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME || !name.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(format!(
            "name: 1 to {MAX_NAME} letters or digits ([A-Za-z0-9]+)"
        ));
    }
    Ok(())
}

fn check_text(field: &str, value: &str, max: usize, details: &mut Vec<String>) {
    // Characters, as openapi.yaml's maxLength counts them.
    if value.chars().count() > max {
        details.push(format!("{field}: at most {max} characters"));
    }
    if value.chars().any(char::is_control) {
        details.push(format!("{field}: no control characters"));
    }
}

fn check_password(password: &str, details: &mut Vec<String>) {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        details.push(format!(
            "password: at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    // Printable ASCII, so that the schema can say the limit: one byte a character, and
    // bcrypt reads no more than MAX_PASSWORD_BYTES.
    if !password.chars().all(|c| (' '..='~').contains(&c)) {
        details.push("password: printable ASCII characters only".into());
    }
    if password.len() > bcrypt_hash::MAX_PASSWORD_BYTES {
        details.push(format!(
            "password: at most {} characters (bcrypt reads no more)",
            bcrypt_hash::MAX_PASSWORD_BYTES
        ));
    }
}

impl<S: PlugStore + AccountStore + HatStore> PlugService<'_, S> {
    /// Registers a plug (unapproved), owned by `providerId`.
    pub async fn register(&self, actor: &Actor, new: NewPlug) -> DexResult<DataPlug> {
        let mut details = Vec::new();
        let required = |field: &str, v: &Option<String>, details: &mut Vec<String>| {
            if v.is_none() {
                details.push(format!("{field}: required"));
            }
        };
        required("name", &new.name, &mut details);
        required("description", &new.description, &mut details);
        required("url", &new.url, &mut details);
        required("illustrationUrl", &new.illustration_url, &mut details);
        required("providerId", &new.provider_id, &mut details);
        required("password", &new.password, &mut details);
        let name = new.name.unwrap_or_default();
        if !details.iter().any(|d| d.starts_with("name:"))
            && let Err(e) = check_name(&name)
        {
            details.push(e);
        }
        let description = new.description.unwrap_or_default();
        let url = new.url.unwrap_or_default();
        let illustration_url = new.illustration_url.unwrap_or_default();
        check_text("description", &description, MAX_DESCRIPTION, &mut details);
        check_text("url", &url, MAX_URL, &mut details);
        check_text("illustrationUrl", &illustration_url, MAX_URL, &mut details);
        if let Some(p) = &new.password {
            check_password(p, &mut details);
        }
        if !details.is_empty() {
            return Err(DexError::invalid("invalid data plug", details));
        }
        let provider_id = new.provider_id.unwrap_or_default();
        let provider = match check_account_id(&provider_id) {
            Ok(()) => self.store.get_account(&provider_id).await?,
            Err(_) => None,
        }
        .ok_or_else(|| {
            DexError::invalid(
                "unknown providerId",
                vec![format!("providerId: no account {provider_id:?}")],
            )
        })?;
        let password_hash = bcrypt_hash::hash(&new.password.unwrap_or_default(), self.random)?;
        let now = self.clock.now_millis();
        let plug = DataPlug {
            id: self.random.uuid().to_string(),
            provider_id: provider.account_id.clone(),
            provider_username: provider.username.clone(),
            provider_created: provider.created_at,
            name,
            description,
            url,
            illustration_url,
            password_hash,
            approved: false,
            created: now,
            updated_at: now,
            version: 1,
        };
        let event = LogEvent::new(
            plug.subject(),
            Kind::PlugRegistered,
            actor,
            serde_json::json!({
                "name": plug.name, "providerId": plug.provider_id,
                "url": plug.url, "illustrationUrl": plug.illustration_url,
            }),
        );
        self.store.insert_plug(&plug, event).await?;
        Ok(plug)
    }

    pub async fn get(&self, id: &str) -> DexResult<DataPlug> {
        let missing = || DexError::NotFound(format!("no data plug {id}"));
        if id.is_empty() || id.len() > 64 {
            return Err(missing());
        }
        self.store.get_plug(id).await?.ok_or_else(missing)
    }

    /// Changes a plug; approving or unapproving moves the Data Plugs figure in the same
    /// transaction. A change to what it already is writes nothing.
    pub async fn update(&self, actor: &Actor, id: &str, change: PlugChange) -> DexResult<DataPlug> {
        if change.approved.is_none()
            && change.description.is_none()
            && change.url.is_none()
            && change.illustration_url.is_none()
            && change.password.is_none()
        {
            return Err(DexError::bad_request(
                "nothing to change: give approved, description, url, illustrationUrl or password",
            ));
        }
        let mut details = Vec::new();
        if let Some(d) = &change.description {
            check_text("description", d, MAX_DESCRIPTION, &mut details);
        }
        if let Some(u) = &change.url {
            check_text("url", u, MAX_URL, &mut details);
        }
        if let Some(u) = &change.illustration_url {
            check_text("illustrationUrl", u, MAX_URL, &mut details);
        }
        if let Some(p) = &change.password {
            check_password(p, &mut details);
        }
        if !details.is_empty() {
            return Err(DexError::invalid("invalid data plug change", details));
        }
        let current = self.get(id).await?;
        let mut next = current.clone();
        let mut changed = serde_json::Map::new();
        if let Some(d) = change.description.filter(|d| *d != current.description) {
            changed.insert("description".into(), d.clone().into());
            next.description = d;
        }
        if let Some(u) = change.url.filter(|u| *u != current.url) {
            changed.insert("url".into(), u.clone().into());
            next.url = u;
        }
        if let Some(u) = change
            .illustration_url
            .filter(|u| *u != current.illustration_url)
        {
            changed.insert("illustrationUrl".into(), u.clone().into());
            next.illustration_url = u;
        }
        if let Some(p) = change.password {
            // Never the hash in the log: only that it changed.
            changed.insert("password".into(), "changed".into());
            next.password_hash = bcrypt_hash::hash(&p, self.random)?;
        }
        let mut delta = 0;
        if let Some(a) = change.approved.filter(|a| *a != current.approved) {
            changed.insert("approved".into(), a.into());
            next.approved = a;
            delta = if a { 1 } else { -1 };
        }
        if changed.is_empty() {
            return Ok(current);
        }
        let kind = match delta {
            1 => Kind::PlugApproved,
            -1 => Kind::PlugUnapproved,
            _ => Kind::PlugUpdated,
        };
        next.updated_at = self.clock.now_millis();
        next.version = current.version + 1;
        let event = LogEvent::new(next.subject(), kind, actor, changed.into());
        self.store
            .update_plug(&next, current.version, delta, event)
            .await?;
        Ok(next)
    }

    /// The approved plugs (the public listing), oldest first.
    pub async fn approved(&self) -> DexResult<Vec<DataPlug>> {
        self.store.list_plugs(true).await
    }

    /// Every plug (admins, dexctl).
    pub async fn all(&self) -> DexResult<Vec<DataPlug>> {
        self.store.list_plugs(false).await
    }

    /// Connects plug `id` to `hat` for `caller` (its owner or an admin): the plug's user made
    /// or re-enabled on the HAT first, then the connection recorded and logged on the HAT's
    /// chain. A failing HAT leaves nothing recorded; connecting again creates nothing new.
    pub async fn connect<H: HatHttp, K: SecretStore>(
        &self,
        calls: &HatCalls<'_, H, K>,
        caller: &Account,
        id: &str,
        hat: Option<&str>,
    ) -> DexResult<(DataPlug, String)> {
        let plug = self.get(id).await?;
        if caller.account_id != plug.provider_id && !caller.has(&Role::Admin) {
            return Err(DexError::Forbidden(
                "only the plug's owner or an admin can connect it".into(),
            ));
        }
        if !plug.approved {
            return Err(DexError::Forbidden(format!(
                "data plug {} is not approved",
                plug.name
            )));
        }
        let hat = hat
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                DexError::invalid("hat is required", vec!["hat: the HAT address".into()])
            })?;
        crate::limits::check_len("hat", hat, crate::limits::MAX_DOMAIN_LEN + 6)?;
        let (address, _, cluster) =
            crate::hats::certified_hat(self.store, hat, self.allow_ports).await?;

        let user = HatUser {
            user_id: self.random.uuid().to_string(),
            email: plug.name.clone(),
            pass: Some(plug.password_hash.clone()),
            name: plug.name.clone(),
            role: PLUG_HAT_ROLE.into(),
            roles: vec![UserRole {
                role: PLUG_HAT_ROLE.into(),
                detail: Some(plug.name.clone()),
            }],
        };
        let session = calls.session(&address, &cluster.secret_name, calls.deadline());
        let on_hat = match session.ensure_user(&user).await? {
            EnsuredUser::Created => "created",
            EnsuredUser::Enabled(_) => "enabled",
        };

        let connection = PlugConnection {
            plug_id: plug.id.clone(),
            hat: address.to_string(),
            connected_at: self.clock.now_millis(),
            by: caller.account_id.clone(),
        };
        let event = LogEvent::new(
            Subject::hat(&connection.hat),
            Kind::PlugConnected,
            &Actor::Account(caller.clone()),
            serde_json::json!({ "plugId": plug.id, "plug": plug.name, "hatUser": on_hat }),
        );
        self.store.record_connection(&connection, event).await?;
        let message = format!("{} connected to {address}", plug.name);
        Ok((plug, message))
    }
}
