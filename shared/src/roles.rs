//! DEX account roles (docs/decisions.md §3).

use std::fmt;

use crate::error::DexError;
use crate::hats::address::validate_domain;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Admin,
    Marketplace,
    /// Provisioner of the HATs of one cluster domain.
    Provisioner(String),
    /// Developer of the applications of one developer id.
    Developer(String),
}

impl Role {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "admin" => Ok(Self::Admin),
            "marketplace" => Ok(Self::Marketplace),
            _ => {
                if let Some(domain) = text.strip_prefix("provisioner:") {
                    validate_domain(domain).map_err(|e| format!("{text:?}: {e}"))?;
                    Ok(Self::Provisioner(domain.to_owned()))
                } else if let Some(id) = text.strip_prefix("developer:") {
                    let ok = !id.is_empty()
                        && id.len() <= 128
                        && id
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
                    if ok {
                        Ok(Self::Developer(id.to_owned()))
                    } else {
                        Err(format!(
                            "{text:?}: a developer id is 1-128 letters, digits, '-', '_' or '.'"
                        ))
                    }
                } else {
                    Err(format!(
                        "{text:?} is not a role (admin, marketplace, provisioner:<domain>, developer:<id>)"
                    ))
                }
            }
        }
    }

    /// Parses a list of roles, collecting every bad one as a validation detail.
    pub fn parse_all(texts: &[String]) -> Result<Vec<Role>, DexError> {
        let mut roles = Vec::new();
        let mut bad = Vec::new();
        for text in texts {
            match Role::parse(text) {
                Ok(role) => roles.push(role),
                Err(e) => bad.push(format!("roles: {e}")),
            }
        }
        if !bad.is_empty() {
            return Err(DexError::invalid("unknown or malformed role", bad));
        }
        roles.sort();
        roles.dedup();
        Ok(roles)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Admin => f.write_str("admin"),
            Self::Marketplace => f.write_str("marketplace"),
            Self::Provisioner(d) => write!(f, "provisioner:{d}"),
            Self::Developer(id) => write!(f, "developer:{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip() {
        for text in [
            "admin",
            "marketplace",
            "provisioner:hubat.net",
            "developer:dev-1",
        ] {
            assert_eq!(Role::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn bad_roles_are_listed() {
        let err = Role::parse_all(&["admin".into(), "root".into(), "provisioner:HUBAT".into()])
            .unwrap_err();
        match err {
            DexError::BadRequest { details, .. } => {
                assert_eq!(details.len(), 2, "{details:?}");
                assert!(details[0].contains("root"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn duplicates_collapse() {
        let roles = Role::parse_all(&["admin".into(), "admin".into()]).unwrap();
        assert_eq!(roles, vec![Role::Admin]);
    }
}
