//! Typed configuration, read once per container at init; a missing or malformed value stops
//! the function with a message naming the variable.

use std::net::IpAddr;
use std::time::Duration;

use crate::accounts::LoginLimits;

#[derive(Debug, Clone)]
pub struct Config {
    /// DynamoDB table holding every DEX record.
    pub table: String,
    /// Prefix of every Secrets Manager secret name of this deployment (e.g. `dex/`).
    pub secrets_prefix: String,
    /// DEX's public base URL without a trailing slash: the `iss` of DEX tokens and the
    /// `resource` HAT tokens must carry.
    pub public_url: String,
    pub token_lifetime: Duration,
    /// `https` in production; `http` only for local HATs (docs/decisions.md §6).
    pub hat_scheme: String,
    /// When set, every HAT host name resolves to this address and the private-address guard
    /// is off (docs/decisions.md §6).
    pub hat_resolve: Option<IpAddr>,
    /// How long a warm container trusts a HAT key it read from the table.
    pub hat_key_cache: Duration,
    /// Timeout of one call to a HAT.
    pub hat_timeout: Duration,
    /// The deadline of all the HAT calls of one request (`dex::hats::calls`), well before
    /// the functions' 29 s timeout so DEX still has time to record and answer.
    pub hat_budget: Duration,
    /// How long one update-application call starts pushes to HATs (`DEX_PUSH_BUDGET_SECS`);
    /// each HAT started then has its own allowance (`hats::push`), so the call answers well
    /// before the functions' timeout and `next` continues.
    pub push_budget: Duration,
    /// `DEX_LOCAL_STACK=1`: this is a local stack (the scripts set it), the only place where
    /// `DEX_HAT_SCHEME=http` and `DEX_HAT_RESOLVE` are accepted.
    pub local_stack: bool,
    /// How long a public read's snapshot is fresh; the figures lag at most twice this.
    pub stats_cache: Duration,
    /// The deployment's first admin (`DEX_FIRST_ADMIN_USERNAME`): created at its first login
    /// from the password the stack generated in the `first-admin` secret. Only the login
    /// function is given it.
    pub first_admin: Option<String>,
    /// Failed-login limits (`accounts::login_limits`).
    pub login_limits: LoginLimits,
}

/// The longest deadline of a request's HAT calls: the functions time out after 29 s, and
/// DEX needs the rest to record the outcome and answer.
pub const MAX_HAT_BUDGET_SECS: u64 = 24;

/// The longest time update-application keeps starting pushes; the HATs started last still
/// get their allowance within `MAX_HAT_BUDGET_SECS` (`hats::push::PushService::per_hat`).
pub const MAX_PUSH_BUDGET_SECS: u64 = 16;

/// The variable that allows the local-only HAT settings.
pub const LOCAL_STACK_VAR: &str = "DEX_LOCAL_STACK";

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(String);

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, so tests need not touch the process env.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let public_url = get("DEX_PUBLIC_URL").ok_or_else(|| {
            ConfigError(
                "DEX_PUBLIC_URL is required (DEX's public base URL, e.g. https://dex.example.com)"
                    .into(),
            )
        })?;
        if !(public_url.starts_with("https://") || public_url.starts_with("http://")) {
            return Err(ConfigError(format!(
                "DEX_PUBLIC_URL must be an http(s) URL, got {public_url:?}"
            )));
        }
        let hat_scheme = get("DEX_HAT_SCHEME").unwrap_or_else(|| "https".into());
        if hat_scheme != "https" && hat_scheme != "http" {
            return Err(ConfigError(format!(
                "DEX_HAT_SCHEME must be http or https, got {hat_scheme:?}"
            )));
        }
        let hat_resolve = match get("DEX_HAT_RESOLVE") {
            None => None,
            Some(ip) => Some(ip.parse::<IpAddr>().map_err(|_| {
                ConfigError(format!("DEX_HAT_RESOLVE must be an IP address, got {ip:?}"))
            })?),
        };
        let local_stack = match get(LOCAL_STACK_VAR).as_deref() {
            None | Some("0") => false,
            Some("1") => true,
            Some(other) => {
                return Err(ConfigError(format!(
                    "{LOCAL_STACK_VAR} must be 1 or 0, got {other:?}"
                )));
            }
        };
        // These turn off TLS to HATs and the private-address guard: a deployment that
        // inherited them by mistake must not start.
        if !local_stack && (hat_scheme == "http" || hat_resolve.is_some()) {
            return Err(ConfigError(format!(
                "DEX_HAT_SCHEME=http and DEX_HAT_RESOLVE are for local stacks only: unset them, \
                 or set {LOCAL_STACK_VAR}=1 if this really is a local stack"
            )));
        }
        let seconds = |name: &str, default: u64| -> Result<Duration, ConfigError> {
            match get(name) {
                None => Ok(Duration::from_secs(default)),
                Some(v) => v.parse::<u64>().map(Duration::from_secs).map_err(|_| {
                    ConfigError(format!(
                        "{name} must be a whole number of seconds, got {v:?}"
                    ))
                }),
            }
        };
        Ok(Self {
            table: get("DEX_TABLE").unwrap_or_else(|| "dex".into()),
            secrets_prefix: get("DEX_SECRETS_PREFIX").unwrap_or_else(|| "dex/".into()),
            public_url: public_url.trim_end_matches('/').to_owned(),
            token_lifetime: seconds("DEX_TOKEN_LIFETIME_SECS", 86_400)?,
            hat_scheme,
            hat_resolve,
            hat_key_cache: seconds("DEX_HAT_KEY_CACHE_SECS", 60)?,
            hat_timeout: seconds("DEX_HAT_TIMEOUT_SECS", 5)?,
            hat_budget: {
                let budget = seconds("DEX_HAT_BUDGET_SECS", 20)?;
                if budget.is_zero() || budget > Duration::from_secs(MAX_HAT_BUDGET_SECS) {
                    return Err(ConfigError(format!(
                        "DEX_HAT_BUDGET_SECS must be 1 to {MAX_HAT_BUDGET_SECS} (the functions time out after 29 s)"
                    )));
                }
                budget
            },
            push_budget: {
                let budget = seconds("DEX_PUSH_BUDGET_SECS", 10)?;
                if budget.is_zero() || budget > Duration::from_secs(MAX_PUSH_BUDGET_SECS) {
                    return Err(ConfigError(format!(
                        "DEX_PUSH_BUDGET_SECS must be 1 to {MAX_PUSH_BUDGET_SECS} (each HAT started may take twice DEX_HAT_TIMEOUT_SECS more; the functions time out after 29 s)"
                    )));
                }
                budget
            },
            local_stack,
            stats_cache: seconds("DEX_STATS_CACHE_SECS", 2)?,
            first_admin: get("DEX_FIRST_ADMIN_USERNAME"),
            login_limits: {
                let d = LoginLimits::default();
                let whole = |name: &str, default: u64| -> Result<u64, ConfigError> {
                    match get(name) {
                        None => Ok(default),
                        Some(v) => v.parse::<u64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                            ConfigError(format!("{name} must be a whole number from 1, got {v:?}"))
                        }),
                    }
                };
                let count = |name: &str, default: u32| -> Result<u32, ConfigError> {
                    u32::try_from(whole(name, u64::from(default))?)
                        .map_err(|_| ConfigError(format!("{name} is too large")))
                };
                let limits = LoginLimits {
                    username_free: count("DEX_LOGIN_USERNAME_FAILURES", d.username_free)?,
                    source_free: count("DEX_LOGIN_SOURCE_FAILURES", d.source_free)?,
                    first_lock_secs: whole("DEX_LOGIN_FIRST_LOCK_SECS", d.first_lock_secs)?,
                    max_lock_secs: whole("DEX_LOGIN_MAX_LOCK_SECS", d.max_lock_secs)?,
                    forget_secs: whole("DEX_LOGIN_FORGET_SECS", d.forget_secs)?,
                };
                if limits.first_lock_secs > limits.max_lock_secs {
                    return Err(ConfigError(
                        "DEX_LOGIN_FIRST_LOCK_SECS must not exceed DEX_LOGIN_MAX_LOCK_SECS".into(),
                    ));
                }
                limits
            },
        })
    }

    /// The local-only settings in force, to be logged loudly at start.
    pub fn local_overrides(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.hat_scheme == "http" {
            out.push("DEX_HAT_SCHEME=http: HATs are called without TLS".to_owned());
        }
        if let Some(ip) = self.hat_resolve {
            out.push(format!(
                "DEX_HAT_RESOLVE={ip}: every HAT host resolves there, the private-address guard is off"
            ));
        }
        out
    }

    pub fn signing_key_secret(&self) -> String {
        format!("{}signing-keys", self.secrets_prefix)
    }

    /// The public halves of the signing keys: all that verifiers and publishers may read.
    pub fn public_keys_secret(&self) -> String {
        format!("{}signing-keys-public", self.secrets_prefix)
    }

    /// The AES-256-GCM key(s) sealing the values DEX keeps encrypted (`auth::sealing`).
    pub fn encryption_key_secret(&self) -> String {
        format!("{}encryption-keys", self.secrets_prefix)
    }

    /// `{"username", "password"}` of the first admin, generated by the stack.
    pub fn first_admin_secret(&self) -> String {
        format!("{}first-admin", self.secrets_prefix)
    }

    pub fn cluster_secret(&self, domain: &str) -> String {
        cluster_secret_name(&self.secrets_prefix, domain)
    }
}

/// The secret holding a cluster's platform credentials.
pub fn cluster_secret_name(secrets_prefix: &str, domain: &str) -> String {
    format!("{secrets_prefix}clusters/{domain}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn public_url_is_required_and_normalised() {
        let err = config(&[]).unwrap_err();
        assert!(err.to_string().contains("DEX_PUBLIC_URL"));
        let c = config(&[("DEX_PUBLIC_URL", "https://dex.example.com/")]).unwrap();
        assert_eq!(c.public_url, "https://dex.example.com");
        assert_eq!(c.hat_scheme, "https");
        assert!(c.hat_resolve.is_none());
        assert_eq!(c.signing_key_secret(), "dex/signing-keys");
        assert_eq!(c.public_keys_secret(), "dex/signing-keys-public");
        assert_eq!(c.first_admin_secret(), "dex/first-admin");
        assert!(c.first_admin.is_none());
    }

    #[test]
    fn malformed_values_name_the_variable() {
        let base = ("DEX_PUBLIC_URL", "https://dex.example.com");
        let err = config(&[base, ("DEX_HAT_RESOLVE", "localhost")]).unwrap_err();
        assert!(err.to_string().contains("DEX_HAT_RESOLVE"));
        let err = config(&[base, ("DEX_TOKEN_LIFETIME_SECS", "1d")]).unwrap_err();
        assert!(err.to_string().contains("DEX_TOKEN_LIFETIME_SECS"));
        let err = config(&[base, ("DEX_HAT_SCHEME", "ftp")]).unwrap_err();
        assert!(err.to_string().contains("DEX_HAT_SCHEME"));
        let err = config(&[base, ("DEX_HAT_BUDGET_SECS", "28")]).unwrap_err();
        assert!(err.to_string().contains("DEX_HAT_BUDGET_SECS"));
        let c = config(&[base, ("DEX_HAT_BUDGET_SECS", "3")]).unwrap();
        assert_eq!(c.hat_budget, Duration::from_secs(3));
        assert_eq!(c.push_budget, Duration::from_secs(10));
        for bad in ["0", "17", "x"] {
            let err = config(&[base, ("DEX_PUSH_BUDGET_SECS", bad)]).unwrap_err();
            assert!(err.to_string().contains("DEX_PUSH_BUDGET_SECS"), "{bad}");
        }
        let c = config(&[base, ("DEX_PUSH_BUDGET_SECS", "1")]).unwrap();
        assert_eq!(c.push_budget, Duration::from_secs(1));
        let err = config(&[base, ("DEX_LOCAL_STACK", "yes")]).unwrap_err();
        assert!(err.to_string().contains("DEX_LOCAL_STACK"));
    }

    #[test]
    fn local_hat_settings_need_the_local_stack_switch() {
        let base = ("DEX_PUBLIC_URL", "https://dex.example.com");
        for local in [("DEX_HAT_SCHEME", "http"), ("DEX_HAT_RESOLVE", "127.0.0.1")] {
            let err = config(&[base, local]).unwrap_err().to_string();
            assert!(
                err.contains(local.0) && err.contains("DEX_LOCAL_STACK"),
                "{err}"
            );
            let err = config(&[base, local, ("DEX_LOCAL_STACK", "0")]).unwrap_err();
            assert!(err.to_string().contains("local stacks only"));
            let c = config(&[base, local, ("DEX_LOCAL_STACK", "1")]).unwrap();
            assert!(c.local_stack);
            assert_eq!(c.local_overrides().len(), 1, "{:?}", c.local_overrides());
        }
        // https is the default and always allowed; nothing to warn about.
        let c = config(&[base, ("DEX_HAT_SCHEME", "https")]).unwrap();
        assert!(!c.local_stack && c.local_overrides().is_empty());
    }
}
