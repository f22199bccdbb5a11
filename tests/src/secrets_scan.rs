//! The rules of the secrets scan of `make test` (`tests/src/bin/secrets-scan.rs` runs them
//! after the suite and the fuzzer): which secrets the run made, where each one may appear in
//! clear, and where they did.
//!
//! The secrets come from three sources:
//! - the local gateway's capture of every exchange (`DEX_CAPTURE_FILE`): what clients sent
//!   as passwords and tokens (the `password`, `X-Auth-Token` and `Authorization` headers, and
//!   every JSON string field named `*password*`, `*token*` or `*secret*`), and what DEX
//!   answered whose purpose is a secret (the `accessToken` of `access_token`, the
//!   `passwordPlain` of an offer's `claims`);
//! - the ledger of the test support (`crate::secrets_ledger`): test HATs' private keys, their
//!   platform passwords, the login tokens they handed DEX;
//! - every secret value in Secrets Manager (DEX's signing and encryption keys, generated
//!   passwords), read by the binary.
//!
//! They are looked for in every function log line, every answer (headers and body) and every
//! table item. A secret may appear in clear only in the answers whose purpose it is
//! ([`Allowed`]); stored hashes and sealed values are not the secret, so they never match.
//! Values shorter than [`MIN_SECRET_LEN`] or of fewer than [`MIN_DISTINCT_CHARS`] different
//! characters are not secrets a test makes (they are random and long) and could match by
//! chance, so they are ignored.

use std::collections::HashMap;

use aho_corasick::AhoCorasick;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::Value;

/// Shorter values are ignored: every secret the suite makes is longer, and short strings
/// (a fuzzed `password` of `"0"`) would match anywhere.
pub const MIN_SECRET_LEN: usize = 8;

/// Fewer different characters are not a secret a test makes (a limits test's token of
/// 10,000 `a`s) and would match every long run of that character.
pub const MIN_DISTINCT_CHARS: usize = 5;

/// Whether `value` can be one of the run's secrets: long enough and not a repetition.
fn could_be_secret(value: &str) -> bool {
    let mut distinct: Vec<char> = value.chars().take(4096).collect();
    distinct.sort_unstable();
    distinct.dedup();
    value.chars().count() >= MIN_SECRET_LEN && distinct.len() >= MIN_DISTINCT_CHARS
}

/// Private key PEM text in clear, whatever key it is (also catches keys no source listed).
const PRIVATE_KEY_MARKER: &str = "PRIVATE KEY-----";

/// One exchange the local gateway captured (one JSON line of its capture file).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Exchange {
    pub method: String,
    /// Path and query as sent.
    pub path: String,
    #[serde(default)]
    pub request_headers: Vec<(String, String)>,
    #[serde(default)]
    pub request_body: String,
    pub status: u16,
    #[serde(default)]
    pub response_headers: Vec<(String, String)>,
    #[serde(default)]
    pub response_body: String,
}

impl Exchange {
    /// The exchange as the client saw it. The default route (`functions/default-route`)
    /// hands an alias to the canonical function with Lambda's Invoke API, through the same
    /// gateway: such an exchange (`POST /2015-03-31/functions/<name>/invocations`) carries the
    /// API Gateway event and the function's answer, so it is read as that request and that
    /// answer (an alias of `.../claims` answers the credentials as the canonical path does).
    /// Any other exchange is kept as it is.
    #[must_use]
    pub fn edge_view(self) -> Exchange {
        let path = self.path.split('?').next().unwrap_or_default();
        let is_invocation = self.method.eq_ignore_ascii_case("POST")
            && path.starts_with("/2015-03-31/functions/")
            && path.ends_with("/invocations");
        if !is_invocation {
            return self;
        }
        let (Ok(event), Ok(answer)) = (
            serde_json::from_str::<serde_json::Value>(&self.request_body),
            serde_json::from_str::<serde_json::Value>(&self.response_body),
        ) else {
            return self;
        };
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        let pairs = |v: &serde_json::Value| -> Vec<(String, String)> {
            v.as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
                .unwrap_or_default()
        };
        let body = |v: &serde_json::Value| {
            let raw = text(&v["body"]);
            if v["isBase64Encoded"].as_bool() == Some(true) {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(&raw)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or(raw)
            } else {
                raw
            }
        };
        let query = text(&event["rawQueryString"]);
        Exchange {
            method: text(&event["requestContext"]["http"]["method"]),
            path: match query.is_empty() {
                true => text(&event["rawPath"]),
                false => format!("{}?{query}", text(&event["rawPath"])),
            },
            request_headers: pairs(&event["headers"]),
            request_body: body(&event),
            status: answer["statusCode"]
                .as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(self.status),
            response_headers: pairs(&answer["headers"]),
            response_body: body(&answer),
        }
    }

    fn request_header(&self, name: &str) -> Option<&str> {
        self.request_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without its query, lower case, without a trailing slash.
    fn route_path(&self) -> String {
        let path = self.path.split('?').next().unwrap_or_default();
        path.trim_end_matches('/').to_ascii_lowercase()
    }

    fn is_login(&self) -> bool {
        self.method.eq_ignore_ascii_case("GET")
            && self.route_path().ends_with("/users/access_token")
    }

    /// The offer id of a `GET .../offer/{offerId}/claims` (the credentials' answer).
    fn claims_offer(&self) -> Option<String> {
        if !self.method.eq_ignore_ascii_case("GET") {
            return None;
        }
        let path = self.path.split('?').next().unwrap_or_default();
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        match segments.as_slice() {
            [.., offer, id, claims]
                if offer.eq_ignore_ascii_case("offer") && claims.eq_ignore_ascii_case("claims") =>
            {
                Some(percent_decode(id))
            }
            _ => None,
        }
    }

    /// The fuzzer's own requests: hypothesis copies a generated string from one field to
    /// another, so a fuzzed "password" may also be a fuzzed description DEX stores by design.
    /// Its fixed credentials (the fuzz admin's password and token, the test HATs' tokens) are
    /// seen in the requests of tests/src/bin/fuzz-hat.rs, which is not schemathesis.
    fn is_fuzzer(&self) -> bool {
        self.request_header("user-agent")
            .is_some_and(|ua| ua.to_ascii_lowercase().starts_with("schemathesis"))
    }
}

/// Where a secret may appear in clear, besides nowhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Allowed {
    /// In the answer of that exchange (index in the capture): a login's own token.
    InAnswer(usize),
    /// In the answers of `GET .../offer/{offerId}/claims` for that offer: the owner reads
    /// the offer's credentials there (docs/decisions.md §13), as often as it asks.
    InOfferClaims(String),
}

/// A secret of the run and where it may appear.
#[derive(Debug, Clone, Default)]
pub struct Secret {
    pub kind: String,
    pub allowed: Vec<Allowed>,
}

/// Every secret of a run, by value.
#[derive(Debug, Default)]
pub struct Secrets {
    by_value: HashMap<String, Secret>,
}

impl Secrets {
    /// Adds a secret (ignored when shorter than [`MIN_SECRET_LEN`]); `allowed` adds to the
    /// places it may already appear.
    pub fn add(&mut self, kind: &str, value: &str, allowed: Option<Allowed>) {
        if !could_be_secret(value) {
            return;
        }
        let entry = self.by_value.entry(value.to_owned()).or_default();
        if entry.kind.is_empty() {
            entry.kind = kind.to_owned();
        }
        if let Some(allowed) = allowed
            && !entry.allowed.contains(&allowed)
        {
            entry.allowed.push(allowed);
        }
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.by_value.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_value.is_empty()
    }

    /// The secrets a captured exchange shows: what the client sent as secrets (unless it is
    /// the fuzzer), and the secret an answer exists to give.
    pub fn harvest(&mut self, index: usize, exchange: &Exchange) {
        if !exchange.is_fuzzer() {
            for (name, value) in &exchange.request_headers {
                let kind = match name.to_ascii_lowercase().as_str() {
                    "password" => "a password (login header)",
                    "x-auth-token" => "a token (X-Auth-Token)",
                    "authorization" => "a token (Authorization)",
                    _ => continue,
                };
                let value = value.strip_prefix("Bearer ").unwrap_or(value);
                self.add(kind, value, None);
                self.add(kind, &percent_decode(value), None);
            }
            if let Ok(body) = serde_json::from_str::<Value>(&exchange.request_body) {
                let mut found = Vec::new();
                secret_fields(&body, None, &mut found);
                for (field, value) in found {
                    self.add(&format!("a request's {field:?}"), &value, None);
                }
            }
        }
        if !(200..300).contains(&exchange.status) {
            return;
        }
        let Ok(body) = serde_json::from_str::<Value>(&exchange.response_body) else {
            return;
        };
        if exchange.is_login()
            && let Some(token) = body["accessToken"].as_str()
        {
            self.add(
                "a DEX token (access_token's answer)",
                token,
                Some(Allowed::InAnswer(index)),
            );
        }
        if let Some(offer) = exchange.claims_offer()
            && let Some(password) = body["credentials"]["passwordPlain"].as_str()
        {
            self.add(
                "an offer password (its claims' answer)",
                password,
                Some(Allowed::InOfferClaims(offer)),
            );
        }
    }

    /// Adds the secrets of a ledger's text (`crate::secrets_ledger`).
    pub fn add_ledger(&mut self, text: &str) -> Result<(), String> {
        for (kind, secret) in crate::secrets_ledger::parse(text)? {
            self.add(&kind, &secret, None);
        }
        Ok(())
    }

    /// Adds one Secrets Manager secret: a JSON document's key and password fields (not a
    /// key's public `kid`, nor a cluster's platform username), or the whole text. `name` says
    /// which secret it was.
    pub fn add_stored_secret(&mut self, name: &str, text: &str) {
        match serde_json::from_str::<Value>(text) {
            Ok(json @ (Value::Object(_) | Value::Array(_))) => {
                let mut found = Vec::new();
                string_fields(&json, None, &mut found);
                for (field, value) in found {
                    let field = field.unwrap_or_default().to_ascii_lowercase();
                    let secret = field == "key"
                        || ["password", "private", "secret", "token"]
                            .iter()
                            .any(|w| field.contains(w));
                    if secret {
                        self.add(&format!("Secrets Manager {name}"), &value, None);
                    }
                }
            }
            _ => self.add(&format!("Secrets Manager {name}"), text, None),
        }
    }

    /// Adds an offer's password opened from its sealed value in the table: the scan knows it
    /// even when no test read that offer's claims.
    pub fn add_offer_password(&mut self, offer_id: &str, password: &str) {
        self.add(
            "an offer password (opened from the table)",
            password,
            Some(Allowed::InOfferClaims(offer_id.to_owned())),
        );
    }

    /// The scanner over every form a secret may take in text.
    #[must_use]
    pub fn scanner(&self) -> Scanner {
        let mut secrets = Vec::new();
        // One needle may be several secrets' form: a tampered token keeps its original's
        // signature, and the original is allowed in its login's answer.
        let mut by_needle: HashMap<String, Vec<Option<usize>>> = HashMap::new();
        for (value, secret) in &self.by_value {
            let id = secrets.len();
            secrets.push((secret.clone(), fingerprint(value), value.chars().count()));
            for needle in forms(value) {
                by_needle.entry(needle).or_default().push(Some(id));
            }
        }
        by_needle
            .entry(PRIVATE_KEY_MARKER.to_owned())
            .or_default()
            .push(None);
        let (needles, owners): (Vec<String>, Vec<Vec<Option<usize>>>) =
            by_needle.into_iter().unzip();
        let automaton = AhoCorasick::new(&needles).expect("an automaton over the secrets");
        Scanner {
            automaton,
            owners,
            secrets,
        }
    }
}

/// Where a text comes from, for the allowance and the report.
#[derive(Debug, Clone)]
pub enum Place {
    /// Line `line` (1-based) of a log file.
    Log { file: String, line: usize },
    /// The answer (headers and body) of captured exchange `index`.
    Answer {
        index: usize,
        method: String,
        path: String,
        status: u16,
        claims_offer: Option<String>,
    },
    /// An item of a table.
    Item { table: String, key: String },
}

impl Place {
    #[must_use]
    pub fn answer(index: usize, exchange: &Exchange) -> Self {
        Self::Answer {
            index,
            method: exchange.method.clone(),
            path: exchange
                .path
                .split('?')
                .next()
                .unwrap_or_default()
                .to_owned(),
            status: exchange.status,
            claims_offer: (exchange.status == 200)
                .then(|| exchange.claims_offer())
                .flatten(),
        }
    }

    fn allows(&self, allowed: &Allowed) -> bool {
        match (self, allowed) {
            (Self::Answer { index, .. }, Allowed::InAnswer(i)) => index == i,
            (
                Self::Answer {
                    claims_offer: Some(offer),
                    ..
                },
                Allowed::InOfferClaims(o),
            ) => offer == o,
            _ => false,
        }
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Log { file, line } => write!(f, "log {file}, line {line}"),
            Self::Answer {
                index,
                method,
                path,
                status,
                ..
            } => write!(f, "answer #{index} to {method} {path} ({status})"),
            Self::Item { table, key } => write!(f, "table {table}, item {key}"),
        }
    }
}

/// A secret found in clear where it may not be. Its text holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub what: String,
    pub place: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in {}", self.what, self.place)
    }
}

/// Finds the secrets of a run in texts.
pub struct Scanner {
    automaton: AhoCorasick,
    /// The secrets of each needle (`None`: the private key marker).
    owners: Vec<Vec<Option<usize>>>,
    /// Each secret, its fingerprint and its length in characters.
    secrets: Vec<(Secret, String, usize)>,
}

impl Scanner {
    /// The secrets in `text` that may not be at `place`, once each.
    #[must_use]
    pub fn scan(&self, text: &str, place: &Place) -> Vec<Finding> {
        let mut seen = Vec::new();
        let mut findings = Vec::new();
        for m in self.automaton.find_overlapping_iter(text) {
            let owners = &self.owners[m.pattern().as_usize()];
            let allowed = owners
                .iter()
                .flatten()
                .any(|&id| self.secrets[id].0.allowed.iter().any(|a| place.allows(a)));
            let owner = owners[0];
            if allowed || seen.contains(&owner) {
                continue;
            }
            seen.push(owner);
            let what = match owner {
                None => "private key PEM text".to_owned(),
                Some(id) => {
                    let (secret, fingerprint, len) = &self.secrets[id];
                    format!("{} (sha256 {fingerprint}…, {len} chars)", secret.kind)
                }
            };
            findings.push(Finding {
                what,
                place: self.redact(&place.to_string()),
            });
        }
        findings
    }

    /// Every line of a log with the secrets it may not hold.
    #[must_use]
    pub fn scan_log(&self, file: &str, text: &str) -> Vec<Finding> {
        text.lines()
            .enumerate()
            .flat_map(|(i, line)| {
                self.scan(
                    line,
                    &Place::Log {
                        file: file.to_owned(),
                        line: i + 1,
                    },
                )
            })
            .collect()
    }

    /// `text` with every secret form replaced by its fingerprint (for report lines).
    #[must_use]
    pub fn redact(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for m in self.automaton.find_iter(text) {
            out.push_str(&text[last..m.start()]);
            match self.owners[m.pattern().as_usize()][0] {
                Some(id) => out.push_str(&format!("<secret {}…>", self.secrets[id].1)),
                None => out.push_str(&text[m.start()..m.end()]),
            }
            last = m.end();
        }
        out.push_str(&text[last..]);
        out
    }
}

/// The answer of an exchange as scanned: its headers, then its body.
#[must_use]
pub fn answer_text(exchange: &Exchange) -> String {
    let mut text = String::new();
    for (name, value) in &exchange.response_headers {
        text.push_str(&format!("{name}: {value}\n"));
    }
    text.push_str(&exchange.response_body);
    text
}

/// A table item as scanned: one `path: value` line per scalar, in clear (binary values both
/// as base64 and as text), so a secret matches whatever attribute holds it.
#[must_use]
pub fn item_text(item: &HashMap<String, AttributeValue>) -> String {
    let mut names: Vec<&String> = item.keys().collect();
    names.sort();
    let mut out = String::new();
    for name in names {
        attribute_text(name, &item[name], &mut out);
    }
    out
}

/// `pk`/`sk` of an item, for the report.
#[must_use]
pub fn item_key(item: &HashMap<String, AttributeValue>) -> String {
    ["pk", "sk", "PK", "SK"]
        .iter()
        .filter_map(|k| match item.get(*k) {
            Some(AttributeValue::S(s)) => Some(format!("{k}={s}")),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn attribute_text(path: &str, value: &AttributeValue, out: &mut String) {
    let mut line = |v: &str| out.push_str(&format!("{path}: {v}\n"));
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => line(s),
        AttributeValue::Ss(list) | AttributeValue::Ns(list) => list.iter().for_each(|s| line(s)),
        AttributeValue::B(b) => {
            line(&STANDARD.encode(b.as_ref()));
            line(&String::from_utf8_lossy(b.as_ref()));
        }
        AttributeValue::Bs(list) => {
            for b in list {
                line(&STANDARD.encode(b.as_ref()));
                line(&String::from_utf8_lossy(b.as_ref()));
            }
        }
        AttributeValue::Bool(b) => line(&b.to_string()),
        AttributeValue::Null(_) => line("null"),
        AttributeValue::L(list) => {
            for (i, v) in list.iter().enumerate() {
                attribute_text(&format!("{path}[{i}]"), v, out);
            }
        }
        AttributeValue::M(map) => {
            let mut names: Vec<&String> = map.keys().collect();
            names.sort();
            for name in names {
                attribute_text(&format!("{path}.{name}"), &map[name], out);
            }
        }
        _ => line("<unknown attribute type>"),
    }
}

/// The texts a secret shows as: itself, JSON-escaped (a log line or body quoting it),
/// percent-encoded (a header or query), a JWT's signature alone (with the public header and
/// claims it rebuilds the token), a private key's base64 body joined or line by line.
fn forms(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_owned()];
    let json = serde_json::to_string(value).unwrap_or_default();
    forms.push(json[1..json.len() - 1].to_owned());
    forms.push(percent_encode(value));
    let parts: Vec<&str> = value.split('.').collect();
    if parts.len() == 3
        && parts[2].len() >= 32
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    {
        forms.push(parts[2].to_owned());
    }
    if value.contains(PRIVATE_KEY_MARKER) {
        let lines: Vec<&str> = value
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("-----"))
            .collect();
        forms.push(lines.concat());
        // The first lines of a PKCS#8 RSA key are its fixed prefix and its public modulus;
        // from the eighth on it is private material only.
        forms.extend(
            lines
                .iter()
                .skip(7)
                .filter(|l| l.len() >= 32)
                .map(|l| (*l).to_owned()),
        );
    }
    forms.sort();
    forms.dedup();
    forms.retain(|f| f.chars().count() >= MIN_SECRET_LEN);
    forms
}

/// The JSON string fields whose name says they hold a secret.
fn secret_fields(value: &Value, field: Option<&str>, out: &mut Vec<(String, String)>) {
    match value {
        Value::String(s) => {
            if let Some(field) = field {
                let lower = field.to_ascii_lowercase();
                if ["password", "token", "secret"]
                    .iter()
                    .any(|w| lower.contains(w))
                {
                    out.push((field.to_owned(), s.clone()));
                }
            }
        }
        Value::Array(list) => list.iter().for_each(|v| secret_fields(v, field, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| secret_fields(v, Some(k), out)),
        _ => {}
    }
}

/// Every JSON string with the name of the field holding it.
fn string_fields(value: &Value, field: Option<&str>, out: &mut Vec<(Option<String>, String)>) {
    match value {
        Value::String(s) => out.push((field.map(str::to_owned), s.clone())),
        Value::Array(list) => list.iter().for_each(|v| string_fields(v, field, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| string_fields(v, Some(k), out)),
        _ => {}
    }
}

/// The first 12 hex digits of the SHA-256 of a secret: names it in a report without
/// revealing it (test secrets are long and random, so the prefix cannot be inverted).
#[must_use]
pub fn fingerprint(value: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, value.as_bytes());
    hex::encode(&digest.as_ref()[..6])
}

fn percent_encode(text: &str) -> String {
    crate::support::url_encode(text)
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "pw-0123456789abcdef0123456789abcdef";
    const TOKEN: &str =
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLW9mLWEtdGVzdC10b2tlbi1sb25nLWVub3VnaA";

    fn exchange(method: &str, path: &str, status: u16, body: &str) -> Exchange {
        Exchange {
            method: method.into(),
            path: path.into(),
            status,
            response_body: body.into(),
            ..Exchange::default()
        }
    }

    fn login(password: &str, token: &str) -> Exchange {
        Exchange {
            request_headers: vec![
                ("username".into(), "someone@dex.test".into()),
                ("password".into(), password.into()),
            ],
            ..exchange(
                "GET",
                "/api/users/access_token",
                200,
                &format!(r#"{{"accessToken":"{token}","userId":"u"}}"#),
            )
        }
    }

    fn log_place() -> Place {
        Place::Log {
            file: "serve.log".into(),
            line: 1,
        }
    }

    #[test]
    fn a_password_planted_in_a_log_line_is_found_and_the_report_hides_it() {
        let mut secrets = Secrets::default();
        secrets.harvest(0, &login(PASSWORD, TOKEN));
        let scanner = secrets.scanner();
        let log = format!("INFO start\nDEBUG login password={PASSWORD:?} ok\nINFO done\n");
        let findings = scanner.scan_log("serve.log", &log);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].place, "log serve.log, line 2");
        assert!(findings[0].what.contains("login header"), "{}", findings[0]);
        assert!(findings[0].what.contains(&fingerprint(PASSWORD)));
        assert!(!findings[0].to_string().contains(PASSWORD));
        assert!(
            scanner
                .scan_log("serve.log", "INFO nothing here\n")
                .is_empty()
        );
    }

    #[test]
    fn a_token_is_allowed_in_its_own_login_answer_only() {
        let mut secrets = Secrets::default();
        let first = login(PASSWORD, TOKEN);
        secrets.harvest(0, &first);
        let scanner = secrets.scanner();
        assert!(
            scanner
                .scan(&answer_text(&first), &Place::answer(0, &first))
                .is_empty()
        );
        let other = exchange(
            "GET",
            "/api/admin/accounts",
            200,
            &format!(r#"[{{"t":"{TOKEN}"}}]"#),
        );
        let findings = scanner.scan(&answer_text(&other), &Place::answer(1, &other));
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(
            findings[0].what.starts_with("a DEX token"),
            "{}",
            findings[0]
        );
        assert_eq!(
            findings[0].place,
            "answer #1 to GET /api/admin/accounts (200)"
        );
        // The signature alone is the token too (the header and claims are public).
        let signature = TOKEN.rsplit('.').next().unwrap();
        let line = format!("verified signature {signature}");
        assert_eq!(scanner.scan(&line, &log_place()).len(), 1);
    }

    #[test]
    fn a_tampered_copy_of_a_token_does_not_forbid_the_original_in_its_login_answer() {
        let mut secrets = Secrets::default();
        let first = login(PASSWORD, TOKEN);
        secrets.harvest(0, &first);
        let signature = TOKEN.rsplit('.').next().unwrap();
        let tampered = Exchange {
            request_headers: vec![(
                "x-auth-token".into(),
                format!("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ5In0.{signature}"),
            )],
            ..exchange("GET", "/api/admin/accounts", 401, "{}")
        };
        secrets.harvest(1, &tampered);
        let scanner = secrets.scanner();
        assert!(
            scanner
                .scan(&answer_text(&first), &Place::answer(0, &first))
                .is_empty()
        );
        assert_eq!(scanner.scan(signature, &log_place()).len(), 1);
    }

    #[test]
    fn a_login_answer_holding_the_password_is_a_finding() {
        let mut secrets = Secrets::default();
        let leaky = login(PASSWORD, TOKEN);
        let leaky = Exchange {
            response_body: format!(r#"{{"accessToken":"{TOKEN}","echo":"{PASSWORD}"}}"#),
            ..leaky
        };
        secrets.harvest(0, &leaky);
        let findings = secrets
            .scanner()
            .scan(&answer_text(&leaky), &Place::answer(0, &leaky));
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(findings[0].what.contains("password"));
    }

    /// CI's finding: an alias of `.../claims` reaches `offer-claims` through the default
    /// route's Lambda Invoke, which the gateway captures too; it is read as the alias.
    #[test]
    fn an_invocation_by_the_default_route_is_read_as_the_request_it_carries() {
        let answer = format!(
            r#"{{"credentials":{{"offerId":"o-1","login":"offer-o-1","passwordPlain":"{PASSWORD}"}},"claims":[]}}"#
        );
        let event = serde_json::json!({
            "rawPath": "/api/v2.6/offer/o-1/claims/", "rawQueryString": "",
            "headers": {"x-auth-token": "t", "user-agent": "dex-tests"},
            "requestContext": {"http": {"method": "GET"}}
        });
        let invocation = Exchange {
            method: "POST".into(),
            path: "/2015-03-31/functions/offer-claims/invocations".into(),
            request_body: event.to_string(),
            status: 200,
            response_body: serde_json::json!({"statusCode": 200, "headers": {}, "body": answer})
                .to_string(),
            ..Exchange::default()
        };
        let seen = invocation.clone().edge_view();
        assert_eq!((seen.method.as_str(), seen.status), ("GET", 200));
        assert_eq!(seen.claims_offer().as_deref(), Some("o-1"));
        assert_eq!(seen.response_body, answer);
        let mut secrets = Secrets::default();
        secrets.add_offer_password("o-1", PASSWORD);
        let scanner = secrets.scanner();
        assert!(
            scanner
                .scan(&answer_text(&seen), &Place::answer(7, &seen))
                .is_empty()
        );
        // Read as sent, the same answer would be a finding: the view is what allows it.
        assert!(
            !scanner
                .scan(&answer_text(&invocation), &Place::answer(7, &invocation))
                .is_empty()
        );
        // Anything else is kept as it is.
        let plain = exchange("GET", "/api/v2/offer/o-1/claims", 200, "{}");
        assert_eq!(plain.clone().edge_view().path, plain.path);
    }

    #[test]
    fn an_offer_password_is_allowed_in_that_offers_claims_answers_only() {
        let body = format!(
            r#"{{"credentials":{{"offerId":"o-1","login":"offer-o-1","passwordPlain":"{PASSWORD}","passwordHash":"$2a$10$x"}},"claims":[]}}"#
        );
        let claims = exchange("GET", "/api/v2/offer/o-1/claims", 200, &body);
        let mut secrets = Secrets::default();
        secrets.harvest(3, &claims);
        let scanner = secrets.scanner();
        let again = exchange("GET", "/api/v3/offer/o-1/claims/", 200, &body);
        assert!(scanner.scan(&body, &Place::answer(3, &claims)).is_empty());
        assert!(scanner.scan(&body, &Place::answer(9, &again)).is_empty());
        let other_offer = exchange("GET", "/api/v2/offer/o-2/claims", 200, &body);
        assert_eq!(
            scanner.scan(&body, &Place::answer(10, &other_offer)).len(),
            1
        );
        let listing = exchange("GET", "/api/v2/offers", 200, &body);
        assert_eq!(scanner.scan(&body, &Place::answer(11, &listing)).len(), 1);
    }

    #[test]
    fn a_platform_password_planted_in_a_table_item_is_found_in_any_attribute() {
        let platform = "0123456789abcdef0123456789abcdef+/% &pw";
        let certify = Exchange {
            request_body: serde_json::json!({
                "domain": "hubat.net",
                "platformUsername": "hatdex.org",
                "platformPassword": platform,
            })
            .to_string(),
            ..exchange("POST", "/api/admin/clusters", 201, "{}")
        };
        let mut secrets = Secrets::default();
        secrets.harvest(0, &certify);
        let scanner = secrets.scanner();
        let sealed: HashMap<String, AttributeValue> = [
            (
                "pk".to_owned(),
                AttributeValue::S("CLUSTER#hubat.net".into()),
            ),
            ("sk".to_owned(), AttributeValue::S("CLUSTER".into())),
            (
                "sealed".to_owned(),
                AttributeValue::S("v1.k1.c2VhbGVk".into()),
            ),
        ]
        .into();
        let place = Place::Item {
            table: "dex-test".into(),
            key: item_key(&sealed),
        };
        assert!(scanner.scan(&item_text(&sealed), &place).is_empty());
        let mut nested = sealed.clone();
        nested.insert(
            "platform".into(),
            AttributeValue::M(
                [(
                    "creds".to_owned(),
                    AttributeValue::L(vec![AttributeValue::B(platform.as_bytes().to_vec().into())]),
                )]
                .into(),
            ),
        );
        let findings = scanner.scan(&item_text(&nested), &place);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(
            findings[0].what.contains("platformPassword"),
            "{}",
            findings[0]
        );
        assert_eq!(
            findings[0].place,
            "table dex-test, item pk=CLUSTER#hubat.net sk=CLUSTER"
        );
    }

    #[test]
    fn private_keys_are_found_whole_by_line_or_by_their_marker() {
        let der: Vec<u8> = (0..1200u32).map(|i| (i * 7 + 3) as u8).collect();
        let pem = crate::test_hat::pem_encode("PRIVATE KEY", &der);
        let mut secrets = Secrets::default();
        secrets
            .add_ledger(&crate::secrets_ledger::format_line(
                "a test HAT's private key",
                &pem,
            ))
            .unwrap();
        let scanner = secrets.scanner();
        let tenth_line = pem.lines().nth(10).unwrap();
        assert_eq!(scanner.scan(tenth_line, &log_place()).len(), 1);
        let escaped = serde_json::to_string(&pem).unwrap();
        let findings = scanner.scan(&escaped, &log_place());
        assert!(
            findings
                .iter()
                .any(|f| f.what.starts_with("a test HAT's private key"))
        );
        // The marker alone is a finding: no private key PEM belongs in a log or an answer.
        let other = "-----BEGIN RSA PRIVATE KEY-----\nMIIB...";
        let findings = scanner.scan(other, &log_place());
        assert_eq!(findings[0].what, "private key PEM text");
    }

    #[test]
    fn stored_secrets_count_but_their_public_ids_and_short_values_do_not() {
        let mut secrets = Secrets::default();
        secrets.add_stored_secret(
            "dex-test/encryption-keys",
            r#"{"keys":[{"kid":"k-2026-12-01","key":"c2VjcmV0LWtleS1vZi0zMi1ieXRlcy1sb25nLWVub3VnaA","createdAt":1}]}"#,
        );
        secrets.add_stored_secret("dex-test/first-admin", "generated-first-admin-password");
        secrets.add_stored_secret(
            "dex-test/clusters/hubat.net",
            r#"{"username":"hatdex.org-platform","password":"0123456789abcdef+/% &pw"}"#,
        );
        secrets.add("a password", "short", None);
        secrets.add("a token", &"a".repeat(10_000), None);
        secrets.add("a token", "abab-abab-abab", None);
        assert_eq!(secrets.len(), 3);
        let scanner = secrets.scanner();
        assert!(
            scanner
                .scan("kid k-2026-12-01 short hatdex.org-platform", &log_place())
                .is_empty()
        );
        assert_eq!(
            scanner
                .scan("pw 0123456789abcdef+/% &pw", &log_place())
                .len(),
            1
        );
        assert_eq!(
            scanner
                .scan("generated-first-admin-password", &log_place())
                .len(),
            1
        );
    }

    #[test]
    fn the_fuzzers_generated_passwords_are_not_secrets_but_its_login_answers_are() {
        let fuzzed = Exchange {
            request_headers: vec![("user-agent".into(), "schemathesis/4.32.0".into())],
            request_body: r#"{"password":"AAAAAAAAAAAA","description":"AAAAAAAAAAAA"}"#.into(),
            ..exchange("POST", "/api/admin/dataplugs", 400, "{}")
        };
        let mut secrets = Secrets::default();
        secrets.harvest(0, &fuzzed);
        assert!(secrets.is_empty());
        let fuzzed_login = Exchange {
            request_headers: fuzzed.request_headers.clone(),
            ..login(PASSWORD, TOKEN)
        };
        secrets.harvest(1, &fuzzed_login);
        assert_eq!(secrets.len(), 1);
    }

    #[test]
    fn percent_encoded_and_json_escaped_forms_are_found() {
        let mut secrets = Secrets::default();
        let password = "0123456789abcdef+/% &pw\"x";
        secrets.add("a platform password", password, None);
        let scanner = secrets.scanner();
        let encoded = format!(
            "GET /users/access_token password={}",
            percent_encode(password)
        );
        assert_eq!(scanner.scan(&encoded, &log_place()).len(), 1);
        let escaped = serde_json::json!({ "p": password }).to_string();
        assert_eq!(scanner.scan(&escaped, &log_place()).len(), 1);
        assert!(!scanner.redact(&escaped).contains("abcdef"));
    }
}
