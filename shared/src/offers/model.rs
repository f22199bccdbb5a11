//! Offers as the API shows them (docs/wire-contract.md "Offers"): the registration a
//! marketplace posts, the offer, a HAT's claim and the credentials the buyer reads.
//! Times are epoch milliseconds. The data bundles are kept as the client sent them (after
//! their shape is checked), so fields DEX does not know survive the round trip.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An offer's status (docs/decisions.md §9). Only `approved` offers are claimable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OfferStatus {
    Draft,
    Approved,
    Rejected,
    Satisfied,
    Oversubscribed,
    Paid,
}

impl OfferStatus {
    pub const ALL: [OfferStatus; 6] = [
        Self::Draft,
        Self::Approved,
        Self::Rejected,
        Self::Satisfied,
        Self::Oversubscribed,
        Self::Paid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Satisfied => "satisfied",
            Self::Oversubscribed => "oversubscribed",
            Self::Paid => "paid",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Shown in the public list (`GET /api/{v}/offers`).
    pub fn is_listed(self) -> bool {
        matches!(
            self,
            Self::Approved | Self::Satisfied | Self::Oversubscribed
        )
    }
}

impl fmt::Display for OfferStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of `POST /api/{v}/offer`, as parsed; [`super::rules::validate_registration`]
/// turns it into an [`OfferTerms`] or says everything that is wrong with it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferRegistration {
    pub offer_id: String,
    pub title: String,
    pub description: String,
    /// Epoch milliseconds or an ISO-8601 date-time (docs/decisions.md §1: read leniently).
    #[serde(deserialize_with = "instant")]
    pub starts: i64,
    #[serde(deserialize_with = "instant")]
    pub expires: i64,
    #[serde(default)]
    pub collection_duration: Option<i64>,
    #[serde(default)]
    pub data_conditions: Option<Value>,
    pub required_data: Value,
    pub required_min_user: i64,
    pub required_max_user: i64,
    /// Ignored: a new offer is always a draft (docs/decisions.md §13).
    #[serde(default)]
    pub status: Option<Value>,
    /// Ignored: DEX sets `created`.
    #[serde(default)]
    pub created: Option<Value>,
}

/// An instant as the ecosystem writes it: epoch milliseconds or an ISO-8601 string.
fn instant<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let value = Value::deserialize(deserializer)?;
    crate::time::parse_instant_json(&value).ok_or_else(|| {
        serde::de::Error::custom("a time: epoch milliseconds or an ISO-8601 date-time")
    })
}

/// What a valid registration fixes for the offer's life.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferTerms {
    pub offer_id: String,
    pub title: String,
    pub description: String,
    pub starts: i64,
    pub expires: i64,
    /// Milliseconds; `expires - starts` when the registration gives none.
    pub collection_duration: i64,
    pub data_conditions: Option<Value>,
    pub required_data: Value,
    pub required_min_user: u32,
    pub required_max_user: u32,
}

/// The HAT credentials DEX generated for an offer (`login` = [`credentials_login`]): the
/// password sealed with the deployment's encryption key (`auth::sealing`, bound to the offer
/// id), never kept in clear, and its bcrypt hash, which the claiming HATs get.
#[derive(Clone, PartialEq)]
pub struct OfferCredentials {
    pub password_sealed: String,
    /// `$2a$10$...`.
    pub password_hash: String,
}

impl fmt::Debug for OfferCredentials {
    // Neither the sealed password nor its hash, even in a debug dump.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OfferCredentials").finish_non_exhaustive()
    }
}

/// An offer as DEX keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    pub terms: OfferTerms,
    pub credentials: OfferCredentials,
    /// The owner's account id.
    pub provider: String,
    pub status: OfferStatus,
    pub created: i64,
    /// Claims kept (final); the next kept claim gets number `claims_kept + 1`.
    pub claims_kept: u32,
    /// Places taken: kept claims plus claims in progress.
    pub places_taken: u32,
    /// Set once `required_min_user` claims were confirmed at the same time; never unset.
    pub claims_released: bool,
    /// Optimistic-concurrency counter.
    pub version: u64,
}

/// An offer as the API shows it: the registration's fields, `created`, `provider`, `status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OfferView {
    pub offer_id: String,
    pub created: i64,
    pub title: String,
    pub description: String,
    pub starts: i64,
    pub expires: i64,
    pub collection_duration: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_conditions: Option<Value>,
    pub required_data: Value,
    pub required_min_user: u32,
    pub required_max_user: u32,
    pub status: OfferStatus,
    pub provider: String,
}

impl From<&Offer> for OfferView {
    fn from(offer: &Offer) -> Self {
        let t = &offer.terms;
        Self {
            offer_id: t.offer_id.clone(),
            created: offer.created,
            title: t.title.clone(),
            description: t.description.clone(),
            starts: t.starts,
            expires: t.expires,
            collection_duration: t.collection_duration,
            data_conditions: t.data_conditions.clone(),
            required_data: t.required_data.clone(),
            required_min_user: t.required_min_user,
            required_max_user: t.required_max_user,
            status: offer.status,
            provider: offer.provider.clone(),
        }
    }
}

/// The HAT of a claim: its address and the public key DEX pinned at registration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OfferHat {
    pub address: String,
    pub public_key: String,
}

/// `OfferClaimSummary`: one HAT's claim of an offer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClaimView {
    pub offer_id: String,
    pub user: OfferHat,
    /// Always `"claim"`.
    pub relationship: String,
    pub confirmed: bool,
    /// The data debit DEX set up on the HAT: the offer id.
    pub data_debit_id: String,
    pub date_created: i64,
    pub claimer_number: u32,
}

/// `OfferHatCredentialsSummary`: the login the buyer uses on every claiming HAT. Only the
/// `claims` answer carries it, to the offer's owner or an admin; never logged.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsView {
    pub offer_id: String,
    pub login: String,
    pub password_plain: String,
    pub password_hash: String,
    pub date_created: i64,
}

impl fmt::Debug for CredentialsView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialsView")
            .field("offer_id", &self.offer_id)
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

/// `OfferClaimsInfo`, the answer of `GET /api/{v}/offer/{id}/claims`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClaimsInfo {
    pub credentials: CredentialsView,
    pub claims: Vec<ClaimView>,
}

/// The HAT user that holds an offer's credentials (`login` = `offer-<offerId>`).
pub fn credentials_login(offer_id: &str) -> String {
    format!("offer-{offer_id}")
}
