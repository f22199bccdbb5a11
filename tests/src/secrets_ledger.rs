//! The secrets ledger of `make test`: every secret the test support makes or receives outside
//! DEX's HTTP traffic (test HATs' private keys, their platform passwords, the login tokens
//! they hand DEX) is appended to the file `DEX_SECRETS_LEDGER` names, so that the secrets
//! scan (`tests/src/bin/secrets-scan.rs`) can look for it in DEX's logs, answers and table.
//! Secrets that cross DEX's edge (passwords, tokens) are taken from the local gateway's
//! capture instead. Without the variable nothing is written.
//!
//! One line per secret: `<kind>\t<base64 of the secret>` (base64 keeps PEM newlines and
//! tabs out of the line format). Tests run in parallel processes: each line is one `write`
//! to a file opened with `O_APPEND`, which Linux never interleaves.

use std::io::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The variable scripts/test.sh sets to the ledger's path.
pub const LEDGER_VAR: &str = "DEX_SECRETS_LEDGER";

/// Appends `secret` (of kind `kind`, e.g. `"hat private key"`) to the ledger, if there is one.
/// Panics when the ledger is named but cannot be written: a scan over a partial ledger would
/// pass for the wrong reason.
pub fn record(kind: &str, secret: &str) {
    let Some(path) = std::env::var_os(LEDGER_VAR).filter(|p| !p.is_empty()) else {
        return;
    };
    let line = format_line(kind, secret);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .unwrap_or_else(|e| panic!("cannot append to the secrets ledger {path:?}: {e}"));
}

/// One ledger line (with its newline).
#[must_use]
pub fn format_line(kind: &str, secret: &str) -> String {
    let kind: String = kind
        .chars()
        .map(|c| if c == '\t' || c == '\n' { ' ' } else { c })
        .collect();
    format!("{kind}\t{}\n", STANDARD.encode(secret))
}

/// The `(kind, secret)` pairs of a ledger's text; malformed lines are errors.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let (kind, encoded) = line
                .split_once('\t')
                .ok_or_else(|| format!("ledger line {}: no tab", i + 1))?;
            let bytes = STANDARD
                .decode(encoded.trim())
                .map_err(|e| format!("ledger line {}: {e}", i + 1))?;
            let secret = String::from_utf8(bytes)
                .map_err(|_| format!("ledger line {}: not UTF-8", i + 1))?;
            Ok((kind.to_owned(), secret))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_secrets_with_newlines_and_tabs() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIE\tx\n-----END PRIVATE KEY-----\n";
        let text = format_line("hat\tkey", pem) + &format_line("platform password", "a+/% &pw");
        assert_eq!(text.lines().count(), 2);
        let parsed = parse(&text).unwrap();
        assert_eq!(
            parsed,
            vec![
                ("hat key".to_owned(), pem.to_owned()),
                ("platform password".to_owned(), "a+/% &pw".to_owned())
            ]
        );
        assert!(parse("no tab here\n").is_err());
    }
}
