//! A data plug as DEX keeps it and as the API shows it (docs/wire-contract.md §6.4, with the hash
//! always empty: docs/decisions.md §13 "Data plugs").

use serde::Serialize;

use crate::txlog::Subject;

#[derive(Clone, PartialEq)]
pub struct DataPlug {
    /// A random UUID.
    pub id: String,
    /// The owner's account id.
    pub provider_id: String,
    /// The owner's username and creation time, kept with the plug (usernames never change)
    /// so the public listing reads no account.
    pub provider_username: String,
    pub provider_created: i64,
    /// `[A-Za-z0-9]+`, unique without regard to case: the plug's HAT username.
    pub name: String,
    pub description: String,
    pub url: String,
    pub illustration_url: String,
    /// bcrypt `$2a$10$...` of the plug's HAT password; never shown.
    pub password_hash: String,
    pub approved: bool,
    pub created: i64,
    pub updated_at: i64,
    pub version: u64,
}

impl std::fmt::Debug for DataPlug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlug")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("provider_id", &self.provider_id)
            .field("approved", &self.approved)
            .finish_non_exhaustive()
    }
}

impl DataPlug {
    pub fn subject(&self) -> Subject {
        Subject::plug(&self.id)
    }
}

/// The `DataPlug` JSON: `passwordHash` is always `""` (clients keep parsing the field).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DataPlugView {
    pub uuid: String,
    pub provider_id: String,
    pub created: i64,
    pub name: String,
    pub description: String,
    pub url: String,
    pub illustration_url: String,
    pub password_hash: &'static str,
    pub approved: bool,
}

impl From<&DataPlug> for DataPlugView {
    fn from(p: &DataPlug) -> Self {
        Self {
            uuid: p.id.clone(),
            provider_id: p.provider_id.clone(),
            created: p.created,
            name: p.name.clone(),
            description: p.description.clone(),
            url: p.url.clone(),
            illustration_url: p.illustration_url.clone(),
            password_hash: "",
            approved: p.approved,
        }
    }
}

/// The provider of a listing entry (`DexAccount`): `password` always `""`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProviderView {
    pub id: String,
    pub email: String,
    pub email_confirmed: bool,
    pub password: &'static str,
    pub name: String,
    pub date_created: i64,
}

/// One entry of `GET /api/dataplugs`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlugListing {
    pub plug: DataPlugView,
    pub provider: ProviderView,
}

impl From<&DataPlug> for PlugListing {
    fn from(p: &DataPlug) -> Self {
        Self {
            plug: DataPlugView::from(p),
            provider: ProviderView {
                id: p.provider_id.clone(),
                email: p.provider_username.clone(),
                email_confirmed: true,
                password: "",
                name: p.provider_username.clone(),
                date_created: p.provider_created,
            },
        }
    }
}

/// A plug connected to a HAT (recorded only after the HAT has the plug's user).
#[derive(Debug, Clone, PartialEq)]
pub struct PlugConnection {
    pub plug_id: String,
    pub hat: String,
    pub connected_at: i64,
    /// The account that connected it.
    pub by: String,
}
