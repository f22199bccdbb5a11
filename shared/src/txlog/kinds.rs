//! The log's vocabulary: what happened (`Kind`) and to whom (`Subject`). Every entry DEX writes
//! is built from these, so the kinds an admin can filter on are all listed here.

use std::fmt;

/// What a log entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    AccountCreated,
    AccountRolesChanged,
    AccountDisabled,
    AccountEnabled,
    AccountPasswordChanged,
    ClusterCertified,
    ClusterDecertified,
    HatRegistered,
    HatKeyReplaced,
    StatsAccepted,
    StatsDescriptionsUpdated,
    SigningKeyCreated,
    SigningKeyRotated,
    OfferRegistered,
    OfferStatusChanged,
    OfferClaimed,
    OfferClaimConfirmed,
    OfferClaimUnconfirmed,
    /// The sweep gave an expired, unfinished claim's place back (offers::sweep).
    OfferClaimReleased,
    PlugRegistered,
    PlugUpdated,
    PlugApproved,
    PlugUnapproved,
    PlugConnected,
    // The applications registry and consent (apps).
    AppCreated,
    AppReplaced,
    AppVersioned,
    AppPublished,
    AppSuspended,
    DeveloperProfileUpdated,
    ConsentRecorded,
    NoticePosted,
    NoticeRead,
}

impl Kind {
    pub const ALL: [Kind; 33] = [
        Kind::AccountCreated,
        Kind::AccountRolesChanged,
        Kind::AccountDisabled,
        Kind::AccountEnabled,
        Kind::AccountPasswordChanged,
        Kind::ClusterCertified,
        Kind::ClusterDecertified,
        Kind::HatRegistered,
        Kind::HatKeyReplaced,
        Kind::StatsAccepted,
        Kind::StatsDescriptionsUpdated,
        Kind::SigningKeyCreated,
        Kind::SigningKeyRotated,
        Kind::OfferRegistered,
        Kind::OfferStatusChanged,
        Kind::OfferClaimed,
        Kind::OfferClaimConfirmed,
        Kind::OfferClaimUnconfirmed,
        Kind::OfferClaimReleased,
        Kind::PlugRegistered,
        Kind::PlugUpdated,
        Kind::PlugApproved,
        Kind::PlugUnapproved,
        Kind::PlugConnected,
        Kind::AppCreated,
        Kind::AppReplaced,
        Kind::AppVersioned,
        Kind::AppPublished,
        Kind::AppSuspended,
        Kind::DeveloperProfileUpdated,
        Kind::ConsentRecorded,
        Kind::NoticePosted,
        Kind::NoticeRead,
    ];

    /// The stored text (part of the wire format: the `kind` of every log entry).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::AccountCreated => "account.created",
            Kind::AccountRolesChanged => "account.roles-changed",
            Kind::AccountDisabled => "account.disabled",
            Kind::AccountEnabled => "account.enabled",
            Kind::AccountPasswordChanged => "account.password-changed",
            Kind::ClusterCertified => "cluster.certified",
            Kind::ClusterDecertified => "cluster.decertified",
            Kind::HatRegistered => "hat.registered",
            Kind::HatKeyReplaced => "hat.key-replaced",
            Kind::StatsAccepted => "stats.accepted",
            Kind::StatsDescriptionsUpdated => "stats.descriptions-updated",
            Kind::SigningKeyCreated => "signing-key.created",
            Kind::SigningKeyRotated => "signing-key.rotated",
            Kind::OfferRegistered => "offer.registered",
            Kind::OfferStatusChanged => "offer.status-changed",
            Kind::OfferClaimed => "offer.claimed",
            Kind::OfferClaimConfirmed => "offer.claim-confirmed",
            Kind::OfferClaimUnconfirmed => "offer.claim-unconfirmed",
            Kind::OfferClaimReleased => "offer.claim-released",
            Kind::PlugRegistered => "plug.registered",
            Kind::PlugUpdated => "plug.updated",
            Kind::PlugApproved => "plug.approved",
            Kind::PlugUnapproved => "plug.unapproved",
            Kind::PlugConnected => "plug.connected",
            Kind::AppCreated => "app.created",
            Kind::AppReplaced => "app.replaced",
            Kind::AppVersioned => "app.versioned",
            Kind::AppPublished => "app.published",
            Kind::AppSuspended => "app.suspended",
            Kind::DeveloperProfileUpdated => "developer.profile-updated",
            Kind::ConsentRecorded => "consent.recorded",
            Kind::NoticePosted => "notice.posted",
            Kind::NoticeRead => "notice.read",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose history an entry belongs to: each subject has its own hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subject(String);

impl Subject {
    pub fn account(account_id: &str) -> Self {
        Self(format!("account:{account_id}"))
    }

    pub fn cluster(domain: &str) -> Self {
        Self(format!("cluster:{domain}"))
    }

    pub fn hat(address: &str) -> Self {
        Self(format!("hat:{address}"))
    }

    /// An offer's own changes (registered, status); its claims go on the claiming HATs'
    /// chains (docs/decisions.md §13.7).
    pub fn offer(offer_id: &str) -> Self {
        Self(format!("offer:{offer_id}"))
    }

    /// A data plug's own changes (registered, changed, approved); its connections go on the
    /// HATs' chains.
    pub fn plug(id: &str) -> Self {
        Self(format!("plug:{id}"))
    }

    /// An application's own changes (created, replaced, versioned, published, suspended);
    /// consents go on the HATs' chains.
    pub fn app(id: &str) -> Self {
        Self(format!("app:{id}"))
    }

    /// A developer's profile (`PUT .../applications/developer`).
    pub fn developer(id: &str) -> Self {
        Self(format!("developer:{id}"))
    }

    /// A notice's posting; the HATs' reads of it go on their own chains.
    pub fn notice(id: u64) -> Self {
        Self(format!("notice:{id}"))
    }

    /// DEX's own signing keys (their state lives in Secrets Manager).
    pub fn signing_key() -> Self {
        Self("dex:signing-key".into())
    }

    /// The descriptions of the available-data tree.
    pub fn available_data() -> Self {
        Self("dex:available-data".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads as the stored text wherever a `&str` is expected.
impl std::ops::Deref for Subject {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<Subject> for String {
    fn eq(&self, other: &Subject) -> bool {
        *self == other.0
    }
}

impl From<Subject> for String {
    fn from(s: Subject) -> Self {
        s.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_distinct_dotted_names() {
        let mut texts: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        assert!(
            texts.iter().all(|t| t.split_once('.').is_some()),
            "{texts:?}"
        );
        texts.sort();
        texts.dedup();
        assert_eq!(texts.len(), Kind::ALL.len());
    }

    #[test]
    fn subjects_have_their_stored_shape() {
        assert_eq!(Subject::account("a1").as_str(), "account:a1");
        assert_eq!(Subject::cluster("hubat.net").as_str(), "cluster:hubat.net");
        assert_eq!(Subject::hat("x.hubat.net").as_str(), "hat:x.hubat.net");
        assert_eq!(Subject::signing_key().as_str(), "dex:signing-key");
        assert_eq!(Subject::available_data().as_str(), "dex:available-data");
    }
}
