//! HAT addresses and cluster domains (docs/decisions.md §4.1): lowercase DNS names, matched to a
//! cluster on a label boundary, with a `:port` only where the deployment allows it.

use std::fmt;

/// A HAT address has at most this many labels (`alice.hubat.net` has 3). DNS allows 127, but
/// every label costs a read of a candidate cluster when a HAT token is verified, before any
/// signature is checked: a forged `iss` must not buy a hundred reads.
pub const MAX_HAT_LABELS: usize = 8;

/// A syntactically valid HAT address: `host` is a lowercase DNS name, `port` is present only
/// when the deployment allows ports (local development).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HatAddress {
    host: String,
    port: Option<u16>,
}

impl HatAddress {
    /// Parses `text` as sent by a provisioner. `allow_port` is the deployment's choice
    /// (`DEX_HAT_RESOLVE` set).
    pub fn parse(text: &str, allow_port: bool) -> Result<Self, String> {
        if text.is_empty() {
            return Err("hatAddress is empty".into());
        }
        if text.contains("://") || text.contains('/') {
            return Err("hatAddress must be a bare host name, without scheme or path".into());
        }
        if text.contains('@') {
            return Err("hatAddress must not contain user information".into());
        }
        if text.starts_with('[') || text.matches(':').count() > 1 {
            return Err("hatAddress must be a DNS name, not an IP address".into());
        }
        let (host, port) = match text.split_once(':') {
            None => (text, None),
            Some((host, port)) => {
                if !allow_port {
                    return Err("hatAddress must not carry a port".into());
                }
                let port: u16 = port
                    .parse()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("{port:?} is not a valid port"))?;
                (host, Some(port))
            }
        };
        validate_hat_host(host)?;
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The certified cluster domain this address belongs to, if any: the address must end in
    /// `.<domain>` (so `evilhubat.net` is not under `hubat.net`). The longest match wins.
    pub fn cluster_of<'a>(&self, domains: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
        domains
            .into_iter()
            .filter(|d| self.is_under(d))
            .max_by_key(|d| d.len())
    }

    pub fn is_under(&self, domain: &str) -> bool {
        self.host.len() > domain.len() + 1
            && self.host.ends_with(domain)
            && self.host.as_bytes()[self.host.len() - domain.len() - 1] == b'.'
    }

    /// Every parent domain of the host that could be a cluster (two labels or more), nearest
    /// first (`a.b.hubat.net` → `b.hubat.net`, `hubat.net`): the candidates for its cluster,
    /// at most `MAX_HAT_LABELS - 2`.
    pub fn parent_domains(&self) -> impl Iterator<Item = &str> {
        self.host
            .match_indices('.')
            .map(move |(i, _)| &self.host[i + 1..])
            .filter(|d| d.contains('.'))
    }
}

impl fmt::Display for HatAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

fn validate_hat_host(host: &str) -> Result<(), String> {
    validate_dns_name(host)?;
    let labels = host.split('.').count();
    if labels < 3 {
        return Err("hatAddress must be <name>.<cluster domain>".into());
    }
    if labels > MAX_HAT_LABELS {
        return Err(format!("hatAddress has at most {MAX_HAT_LABELS} labels"));
    }
    Ok(())
}

/// A cluster domain: a lowercase DNS name of at least two labels.
pub fn validate_domain(domain: &str) -> Result<(), String> {
    validate_dns_name(domain)?;
    let labels = domain.split('.').count();
    if labels < 2 {
        return Err("a cluster domain has at least two labels (e.g. hubat.net)".into());
    }
    // Room for at least one label of a HAT address under it.
    if labels >= MAX_HAT_LABELS {
        return Err(format!(
            "a cluster domain has at most {} labels",
            MAX_HAT_LABELS - 1
        ));
    }
    Ok(())
}

fn validate_dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err("must be a DNS name of 1 to 253 characters".into());
    }
    if name.ends_with('.') {
        return Err("must not end with a dot".into());
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("must be lowercase".into());
    }
    if name == "localhost" || name.ends_with(".localhost") {
        return Err("localhost is not a HAT".into());
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("every label must have 1 to 63 characters".into());
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!("label {label:?} may only contain a-z, 0-9 and '-'"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label {label:?} must not start or end with '-'"));
        }
    }
    // Every top-level domain starts with a letter (`xn--` ones too); an all-numeric last
    // label would make this an IPv4 literal.
    if !name
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.starts_with(|c: char| c.is_ascii_lowercase()))
    {
        return Err(
            "must be a DNS name whose last label starts with a letter, not an IP address".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_hat_addresses() {
        let a = HatAddress::parse("alice.hubat.net", false).unwrap();
        assert_eq!(a.to_string(), "alice.hubat.net");
        assert_eq!(
            a.cluster_of(["hubat.net", "hubofallthings.net"]),
            Some("hubat.net")
        );
        let parents: Vec<_> = a.parent_domains().collect();
        assert_eq!(parents, ["hubat.net"]);
    }

    #[test]
    fn labels_are_bounded_before_any_read() {
        let deepest = format!("{}hubat.net", "a.".repeat(MAX_HAT_LABELS - 2));
        let a = HatAddress::parse(&deepest, false).unwrap();
        assert_eq!(a.parent_domains().count(), MAX_HAT_LABELS - 2);
        assert_eq!(a.parent_domains().last(), Some("hubat.net"));
        let deeper = format!("a.{deepest}");
        assert!(
            HatAddress::parse(&deeper, false)
                .unwrap_err()
                .contains("labels")
        );
        // What DNS allows (127 labels, 253 characters) is far beyond a HAT address.
        let dns_max = format!("{}net", "a.".repeat(125));
        assert!(dns_max.len() <= 253);
        assert!(HatAddress::parse(&dns_max, false).is_err());
        assert!(validate_domain(&format!("{}net", "a.".repeat(MAX_HAT_LABELS - 2))).is_ok());
        assert!(validate_domain(&format!("{}net", "a.".repeat(MAX_HAT_LABELS - 1))).is_err());
    }

    #[test]
    fn label_boundary_matters() {
        let a = HatAddress::parse("alice.evilhubat.net", false).unwrap();
        assert_eq!(a.cluster_of(["hubat.net"]), None);
        let b = HatAddress::parse("evil.hubat.net.attacker.com", false).unwrap();
        assert_eq!(b.cluster_of(["hubat.net"]), None);
    }

    #[test]
    fn ports_only_when_allowed() {
        assert!(HatAddress::parse("alice.hubat.net:9000", false).is_err());
        let a = HatAddress::parse("alice.hubat.net:9000", true).unwrap();
        assert_eq!(a.port(), Some(9000));
        assert_eq!(a.to_string(), "alice.hubat.net:9000");
        assert!(HatAddress::parse("alice.hubat.net:0", true).is_err());
        assert!(HatAddress::parse("alice.hubat.net:x", true).is_err());
    }

    #[test]
    fn rejects_what_is_not_a_hat_host() {
        for bad in [
            "Alice.hubat.net",
            "alice.hubat.net.",
            "127.0.0.1",
            "10.0.0.1",
            "[::1]",
            "::1",
            "localhost",
            "a.localhost",
            "user@alice.hubat.net",
            "alice.hubat.net/path",
            "https://alice.hubat.net",
            "hubat.net",
            "alice..hubat.net",
            "-alice.hubat.net",
            "al_ice.hubat.net",
            "",
        ] {
            assert!(HatAddress::parse(bad, true).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn domains() {
        assert!(validate_domain("hubat.net").is_ok());
        assert!(validate_domain("net").is_err());
        assert!(validate_domain("Hubat.net").is_err());
    }
}
