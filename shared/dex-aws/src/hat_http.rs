//! Outbound HTTP to HATs (docs/decisions.md §4.2, §6): short timeouts, no redirects, bounded bodies,
//! and no connections to loopback, private, link-local or metadata addresses unless the
//! deployment pins HAT hosts to an address (`DEX_HAT_RESOLVE`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use dex::config::Config;
use dex::error::DexError;
use dex::hats::address::HatAddress;
use dex::hats::{HatMethod, HatRequest, HatResponse, HatTransport};

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

/// Whether DEX may connect to `ip` on a HAT's behalf: only globally reachable unicast
/// addresses, per the IANA special-purpose registries (RFC 6890 and successors). Addresses
/// that embed an IPv4 address (mapped, NAT64, 6to4) are judged by that address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(v4: std::net::Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    !(v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local() // includes 169.254.169.254, the metadata service
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 88 && c == 99) // deprecated 6to4 relay anycast
        || (a == 198 && (b & 0xfe) == 18) // 198.18.0.0/15, benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(v6: std::net::Ipv6Addr) -> bool {
    let seg = v6.segments();
    let embedded_v4 = |hi: u16, lo: u16| {
        std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
    };
    // ::ffff:a.b.c.d (mapped): what the host connects to is the IPv4 address.
    if let Some(v4) = v6.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // 64:ff9b::/96, the well-known NAT64 prefix: the gateway connects to the embedded address.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded_v4(seg[6], seg[7]));
    }
    // 2002::/16, 6to4: the embedded address is the far end's relay.
    if seg[0] == 0x2002 {
        return is_public_v4(embedded_v4(seg[1], seg[2]));
    }
    // Everything else that is public lies in 2000::/3 (global unicast); this excludes ::/8
    // (loopback, unspecified, IPv4-compatible, SIIT), 64:ff9b:1::/48 (local NAT64),
    // 100::/64 (discard), fc00::/7, fe80::/10, fec0::/10 and ff00::/8.
    if (seg[0] & 0xe000) != 0x2000 {
        return false;
    }
    // 2001::/23 IETF protocol assignments (Teredo, ...) and 2001:db8::/32 documentation.
    let ietf_or_documentation = seg[0] == 0x2001 && (seg[1] < 0x0200 || seg[1] == 0x0db8);
    !(ietf_or_documentation
        || (seg[0] & 0xfff0) == 0x3ff0 // 3fff::/20 documentation
        || seg[0] == 0x5f00) // segment routing SIDs
}

impl HatClient {
    pub fn new(config: &Config) -> Result<Self, DexError> {
        let http = reqwest::Client::builder()
            // HTTP(S)_PROXY in the environment would send HAT calls past the resolver's guard.
            .no_proxy()
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

    async fn send(
        &self,
        hat: &HatAddress,
        request: &HatRequest,
    ) -> Result<HatResponse, HatTransport> {
        HatClient::send(self, hat, request).await
    }
}

impl HatClient {
    /// One attempt of a HAT API call (`dex::hats::calls` retries and keeps the deadline):
    /// the request's own timeout, no redirect followed, the body read up to its limit.
    pub async fn send(
        &self,
        hat: &HatAddress,
        request: &HatRequest,
    ) -> Result<HatResponse, HatTransport> {
        let url = self.url(hat, &request.path);
        let method = match request.method {
            HatMethod::Get => reqwest::Method::GET,
            HatMethod::Post => reqwest::Method::POST,
            HatMethod::Put => reqwest::Method::PUT,
        };
        let mut builder = self
            .http
            .request(method, &url)
            .timeout(request.timeout)
            .header("accept", "application/json");
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let classify = |e: &reqwest::Error| {
            if is_forbidden(e) {
                HatTransport::Forbidden
            } else if e.is_timeout() {
                HatTransport::Timeout
            } else if e.is_connect() {
                HatTransport::Unreachable
            } else {
                HatTransport::Dropped
            }
        };
        let response = builder.send().await.map_err(|e| classify(&e))?;
        let status = response.status().as_u16();
        let body =
            match tokio::time::timeout(request.timeout, read_limited(response, request.body_limit))
                .await
            {
                Err(_) => return Err(HatTransport::Timeout),
                Ok(Err(LimitedRead::TooLarge)) => return Err(HatTransport::TooLarge),
                Ok(Err(LimitedRead::Transport(e))) => return Err(classify(&e)),
                Ok(Ok(body)) => body,
            };
        Ok(HatResponse { status, body })
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

    #[test]
    fn special_purpose_and_embedding_addresses_are_refused() {
        for ip in [
            // IPv4 special-purpose ranges
            "198.18.0.1",
            "198.19.255.254",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "192.88.99.1",
            "240.0.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "0.1.2.3",
            // NAT64 (well-known prefix with a private IPv4, and the local-use prefix)
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::808:808",
            // 6to4 with a private or loopback IPv4 inside
            "2002:7f00:1::1",
            "2002:a00:1::1",
            "2002:a9fe:a9fe::",
            // IPv4-compatible (deprecated), SIIT and mapped
            "::127.0.0.1",
            "::8.8.8.8",
            "::ffff:0:7f00:1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            // site-local, ULA, link-local, multicast, discard, documentation, Teredo, SRv6
            "fec0::1",
            "fc00::1",
            "ff02::1",
            "100::1",
            "2001:db8::1",
            "3fff::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "5f00::1",
            "::",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} allowed");
        }
        // Embedded public IPv4 addresses stay reachable through their translators.
        for ip in [
            "64:ff9b::808:808",
            "2002:808:808::1",
            "::ffff:8.8.8.8",
            "2a00:1450::1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip} refused");
        }
    }
}
