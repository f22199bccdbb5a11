//! A notice as DEX keeps it and shows it (docs/wire-contract.md §6.5; times in epoch ms).

use serde::{Deserialize, Serialize};

use crate::txlog::Subject;

/// The longest notice message, in characters.
pub const MAX_MESSAGE: usize = 4000;
/// Addresses of one `withHatAddress` list.
pub const MAX_ADDRESSES: usize = 500;
/// Items of each other selector list (roles, e-mail addresses).
pub const MAX_SELECTORS: usize = 100;
/// One selector: a HAT address with a port at most, a role or an e-mail address.
pub const MAX_SELECTOR_LEN: usize = crate::limits::MAX_DOMAIN_LEN + 7;

/// Who a notice is for. Every list absent or empty: every HAT. `withHatAddress` names HATs;
/// the role and e-mail selectors are kept and shown but match no HAT yet (DEX knows neither
/// a HAT's roles nor its owner's e-mail).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoticeTarget {
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "list"
    )]
    pub with_any_role: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "list"
    )]
    pub with_all_roles: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "list"
    )]
    pub with_email: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "list"
    )]
    pub with_hat_address: Vec<String>,
}

/// A selector that is there must be a list (`null` is a 400, as the schema says).
fn list<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Vec::<String>::deserialize(deserializer)
}

impl NoticeTarget {
    /// Whether no selector holds anything: the notice is for every HAT.
    pub fn is_everyone(&self) -> bool {
        self.with_any_role.is_empty()
            && self.with_all_roles.is_empty()
            && self.with_email.is_empty()
            && self.with_hat_address.is_empty()
    }

    /// Whether the notice is addressed to the HAT `address` (addresses compared without
    /// regard to case, as DNS names are).
    pub fn addresses(&self, address: &str) -> bool {
        self.is_everyone()
            || self
                .with_hat_address
                .iter()
                .any(|a| a.eq_ignore_ascii_case(address))
    }
}

/// The `Notice` JSON: `id` from 1, `dateCreated` epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    pub id: u64,
    pub message: String,
    pub date_created: i64,
    pub target: NoticeTarget,
}

impl Notice {
    pub fn subject(&self) -> Subject {
        Subject::notice(self.id)
    }
}

/// One entry of a HAT's `GET /api/notices`: `received` is the notice's creation time,
/// `read` when the HAT first marked it read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoticeItem {
    pub notice: Notice,
    pub received: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read: Option<i64>,
}

impl NoticeItem {
    pub fn new(notice: Notice, read: Option<i64>) -> Self {
        Self {
            received: notice.date_created,
            notice,
            read,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_target_addresses_everyone_and_lists_name_hats() {
        let everyone: NoticeTarget = serde_json::from_str("{}").unwrap();
        assert!(everyone.addresses("a.hubat.net"));
        let empty: NoticeTarget =
            serde_json::from_str(r#"{"withHatAddress": [], "withEmail": []}"#).unwrap();
        assert!(empty.is_everyone());
        let named: NoticeTarget =
            serde_json::from_str(r#"{"withHatAddress": ["A.hubat.net"]}"#).unwrap();
        assert!(named.addresses("a.hubat.net"));
        assert!(!named.addresses("b.hubat.net"));
        let roles: NoticeTarget = serde_json::from_str(r#"{"withAnyRole": ["owner"]}"#).unwrap();
        assert!(!roles.addresses("a.hubat.net"));
        assert!(serde_json::from_str::<NoticeTarget>(r#"{"withEmail": null}"#).is_err());
        assert_eq!(serde_json::to_string(&everyone).unwrap(), "{}");
    }
}
