//! Outbound HTTP to HATs (decisions §4.2, §6): short timeouts, no redirects, bounded bodies,
//! and no connections to loopback, private, link-local or metadata addresses unless the
//! deployment pins HAT hosts to an address (`DEX_HAT_RESOLVE`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use dex::config::Config;
use dex::error::DexError;
use dex::hats::address::HatAddress;

/// A HAT's public key is about 450 bytes; anything much larger is not one.
pub const PUBLIC_KEY_BODY_LIMIT: usize = 16 * 1024;

#[derive(Clone)]
pub struct HatClient {
    http: reqwest::Client,
    scheme: String,
}

/// Resolves HAT host names: either every name to the configured address, or through DNS
/// keeping only public addresses.
struct GuardedResolver {
    pinned: Option<IpAddr>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to private, loopback, link-local or metadata addresses")]
struct ForbiddenTarget(String);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let pinned = self.pinned;
        Box::pin(async move {
            if let Some(ip) = pinned {
                let addrs: Addrs = Box::new(std::iter::once(SocketAddr::new(ip, 0)));
                return Ok(addrs);
            }
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?
                .filter(|a| is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(
                    Box::new(ForbiddenTarget(host)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether DEX may connect to `ip` on a HAT's behalf.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local() // includes 169.254.169.254, the metadata service
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
                || (a == 192 && b == 0)
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local, includes fd00:ec2::254 (metadata)
                || (first & 0xffc0) == 0xfe80) // link-local
        }
    }
}

impl HatClient {
    pub fn new(config: &Config) -> Result<Self, DexError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.hat_timeout)
            .connect_timeout(config.hat_timeout.min(Duration::from_secs(3)))
            .dns_resolver(Arc::new(GuardedResolver {
                pinned: config.hat_resolve,
            }))
            .user_agent("DEX")
            .build()
            .map_err(DexError::internal)?;
        Ok(Self {
            http,
            scheme: config.hat_scheme.clone(),
        })
    }

    pub fn url(&self, hat: &HatAddress, path: &str) -> String {
        format!("{}://{hat}{path}", self.scheme)
    }

    /// `GET /publickey`: the HAT's PEM text, or a 502/504 naming the HAT and what went wrong.
    pub async fn fetch_public_key(&self, hat: &HatAddress) -> Result<String, DexError> {
        let url = self.url(hat, "/publickey");
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            match self
                .http
                .get(&url)
                .header("accept", "text/plain")
                .send()
                .await
            {
                Ok(r) => break r,
                // Retry once, only for a connection that failed before any answer.
                Err(e) if e.is_connect() && attempt < 2 && !is_forbidden(&e) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(transport_error(hat, "fetching its public key", &e)),
            }
        };
        let status = response.status();
        if status.is_redirection() {
            return Err(DexError::BadGateway(format!(
                "HAT {hat} answered /publickey with a redirect ({status}); redirects are not followed"
            )));
        }
        if !status.is_success() {
            return Err(DexError::BadGateway(format!(
                "HAT {hat} answered /publickey with {status}"
            )));
        }
        let body = read_limited(response, PUBLIC_KEY_BODY_LIMIT)
            .await
            .map_err(|e| match e {
                LimitedRead::TooLarge => DexError::BadGateway(format!(
                    "HAT {hat} answered /publickey with more than {PUBLIC_KEY_BODY_LIMIT} bytes"
                )),
                LimitedRead::Transport(e) => transport_error(hat, "reading its public key", &e),
            })?;
        String::from_utf8(body).map_err(|_| {
            DexError::BadGateway(format!("HAT {hat} answered /publickey with non-text bytes"))
        })
    }
}

impl dex::hats::HatHttp for HatClient {
    async fn fetch_public_key(&self, hat: &HatAddress) -> Result<String, DexError> {
        HatClient::fetch_public_key(self, hat).await
    }
}

enum LimitedRead {
    TooLarge,
    Transport(reqwest::Error),
}

async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, LimitedRead> {
    if response.content_length().is_some_and(|l| l > limit as u64) {
        return Err(LimitedRead::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(LimitedRead::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(LimitedRead::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn is_forbidden(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<ForbiddenTarget>().is_some() {
            return true;
        }
        source = s.source();
    }
    false
}

/// A clear error naming the HAT and the step: 504 when it did not answer in time, 502 when
/// it could not be reached, 400 when its name points somewhere DEX must not go.
pub fn transport_error(hat: &HatAddress, step: &str, e: &reqwest::Error) -> DexError {
    if is_forbidden(e) {
        return DexError::bad_request(format!(
            "HAT {hat} resolves only to private or reserved addresses"
        ));
    }
    if e.is_timeout() {
        DexError::GatewayTimeout(format!("HAT {hat} did not answer in time when {step}"))
    } else if e.is_connect() {
        DexError::BadGateway(format!("HAT {hat} could not be reached when {step}"))
    } else {
        DexError::BadGateway(format!("HAT {hat} failed when {step}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_metadata_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} allowed");
        }
        for ip in ["8.8.8.8", "2606:4700::1111", "1.1.1.1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip} refused");
        }
    }
}
