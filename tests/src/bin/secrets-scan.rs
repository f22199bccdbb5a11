//! `secrets-scan`: the secrets scan of `make test` (scripts/test.sh runs it after the suite
//! and the fuzzer, on the same stack). It gathers the run's secrets (the local gateway's
//! capture `DEX_CAPTURE_FILE`, the test support's ledger `DEX_SECRETS_LEDGER`, every secret
//! in Secrets Manager but the public keys) and looks for them in clear in the functions' log
//! (`$DEX_LOG_DIR/serve.log`, what `cargo lambda watch` prints of every function) and the
//! gateway's, in every answer of the capture, and in every item of every table of DynamoDB
//! Local. It exits 1 listing each secret by kind and SHA-256 prefix and where it was, never
//! the secret itself. The rules (what is a secret, where it may be) are in
//! `dex_tests::secrets_scan`.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};

use dex::auth::sealing::{Sealer, StoredEncryptionKeys};
use dex_tests::secrets_scan::{
    Exchange, Finding, Place, Secrets, answer_text, item_key, item_text,
};

/// The logs scanned, in `DEX_LOG_DIR`: the functions' (through `cargo lambda watch`) and the
/// local edge's. The test tools' own logs (schemathesis, the fuzz HATs) are not DEX's.
const LOGS: [&str; 2] = ["serve.log", "gateway.log"];

/// Findings listed before the rest are only counted.
const SHOWN: usize = 60;

#[tokio::main]
async fn main() {
    let log_dir = PathBuf::from(required("DEX_LOG_DIR"));
    let capture = PathBuf::from(required("DEX_CAPTURE_FILE"));
    let mut secrets = Secrets::default();

    let exchanges = for_each_exchange(&capture, |i, exchange| secrets.harvest(i, &exchange));
    let from_traffic = secrets.len();
    if let Some(ledger) = std::env::var_os("DEX_SECRETS_LEDGER").filter(|p| !p.is_empty())
        && Path::new(&ledger).exists()
    {
        let text = std::fs::read_to_string(&ledger)
            .unwrap_or_else(|e| fail(&format!("cannot read the ledger {ledger:?}: {e}")));
        secrets
            .add_ledger(&text)
            .unwrap_or_else(|e| fail(&format!("the ledger {ledger:?}: {e}")));
    }
    let (dynamodb, secrets_manager) = dex_aws::aws_clients().await;
    let (stored, sealers) = add_stored_secrets(&secrets_manager, &mut secrets).await;
    add_offer_passwords(&dynamodb, &sealers, &mut secrets).await;
    let scanner = secrets.scanner();

    let mut findings: Vec<Finding> = Vec::new();
    let mut lines = 0;
    for name in LOGS {
        let path = log_dir.join(name);
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        lines += text.lines().count();
        findings.extend(scanner.scan_log(name, &text));
    }
    for_each_exchange(&capture, |i, exchange| {
        findings.extend(scanner.scan(&answer_text(&exchange), &Place::answer(i, &exchange)));
    });
    let (tables, items) = scan_tables(&dynamodb, &scanner, &mut findings).await;

    eprintln!(
        "secrets scan: {} secrets ({from_traffic} from {exchanges} captured exchanges, \
         {stored} Secrets Manager secrets, the rest from the test support's ledger) looked for \
         in {lines} log lines, {exchanges} answers and {items} items of {tables} tables",
        secrets.len()
    );
    if findings.is_empty() {
        eprintln!("secrets scan: no secret in clear");
        return;
    }
    eprintln!("secrets scan FAILED: {} secrets in clear:", findings.len());
    for finding in findings.iter().take(SHOWN) {
        eprintln!("  {finding}");
    }
    if findings.len() > SHOWN {
        eprintln!("  ... and {} more", findings.len() - SHOWN);
    }
    std::process::exit(1);
}

fn required(var: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| fail(&format!("{var} is not set (run it through `make test`)")))
}

fn fail(message: &str) -> ! {
    eprintln!("secrets scan: {message}");
    std::process::exit(2);
}

/// Calls `each` on every exchange of the capture, streamed (it is large); returns how many.
fn for_each_exchange(path: &Path, mut each: impl FnMut(usize, Exchange)) -> usize {
    let file = std::fs::File::open(path)
        .unwrap_or_else(|e| fail(&format!("cannot open the capture {}: {e}", path.display())));
    let mut count = 0;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.unwrap_or_else(|e| fail(&format!("reading the capture: {e}")));
        if line.trim().is_empty() {
            continue;
        }
        let exchange: Exchange = serde_json::from_str(&line)
            .unwrap_or_else(|e| fail(&format!("capture line {}: {e}", i + 1)));
        each(i, exchange.edge_view());
        count += 1;
    }
    count
}

/// Every secret value in Secrets Manager but the public keys (`jwks` serves them); returns
/// how many, and a sealer for each encryption-key secret (to open the table's sealed values).
async fn add_stored_secrets(
    client: &aws_sdk_secretsmanager::Client,
    secrets: &mut Secrets,
) -> (usize, Vec<Sealer>) {
    let mut names = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = client
            .list_secrets()
            .set_next_token(next.take())
            .send()
            .await
            .unwrap_or_else(|e| fail(&format!("ListSecrets: {}", display(&e))));
        names.extend(
            page.secret_list()
                .iter()
                .filter_map(|s| s.name().map(str::to_owned)),
        );
        match page.next_token() {
            Some(token) if !token.is_empty() => next = Some(token.to_owned()),
            _ => break,
        }
    }
    let mut count = 0;
    let mut sealers = Vec::new();
    for name in names.iter().filter(|n| !n.contains("public")) {
        // A secret created empty (the key secrets before their first use) has no value.
        let Ok(value) = client.get_secret_value().secret_id(name).send().await else {
            continue;
        };
        if let Some(text) = value.secret_string() {
            secrets.add_stored_secret(name, text);
            count += 1;
            if name.ends_with("encryption-keys")
                && let Ok(stored) = serde_json::from_str::<StoredEncryptionKeys>(text)
                && let Ok(sealer) = Sealer::load(&stored)
            {
                sealers.push(sealer);
            }
        }
    }
    (count, sealers)
}

/// Opens every offer's sealed password in every table (the `passwordSealed` attribute, bound
/// to `offer-credentials:<offerId>` as dex::offers::credentials seals it) with each
/// deployment's encryption key, so that an offer whose claims no test read is covered too.
async fn add_offer_passwords(
    client: &aws_sdk_dynamodb::Client,
    sealers: &[Sealer],
    secrets: &mut Secrets,
) {
    use aws_sdk_dynamodb::types::AttributeValue;
    for table in list_tables(client).await {
        let mut pages = client
            .scan()
            .table_name(&table)
            .filter_expression("attribute_exists(passwordSealed)")
            .into_paginator()
            .items()
            .send();
        while let Some(Ok(item)) = pages.next().await {
            let (Some(AttributeValue::S(offer)), Some(AttributeValue::S(sealed))) =
                (item.get("offerId"), item.get("passwordSealed"))
            else {
                continue;
            };
            let context = format!("offer-credentials:{offer}");
            if let Some(plain) = sealers.iter().find_map(|s| s.open(&context, sealed).ok()) {
                secrets.add_offer_password(offer, &String::from_utf8_lossy(&plain));
            }
        }
    }
}

async fn list_tables(client: &aws_sdk_dynamodb::Client) -> Vec<String> {
    let mut tables = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let page = client
            .list_tables()
            .set_exclusive_start_table_name(start.take())
            .send()
            .await
            .unwrap_or_else(|e| fail(&format!("ListTables: {}", display(&e))));
        tables.extend(page.table_names().iter().cloned());
        match page.last_evaluated_table_name() {
            Some(last) => start = Some(last.to_owned()),
            None => break,
        }
    }
    tables
}

/// Scans every item of every table; returns `(tables, items)`.
async fn scan_tables(
    client: &aws_sdk_dynamodb::Client,
    scanner: &dex_tests::secrets_scan::Scanner,
    findings: &mut Vec<Finding>,
) -> (usize, usize) {
    let tables = list_tables(client).await;
    let mut items = 0;
    for table in &tables {
        let mut pages = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            // A test's own table may be deleted while it is listed.
            let Ok(item) = item else { break };
            items += 1;
            let place = Place::Item {
                table: table.clone(),
                key: item_key(&item),
            };
            findings.extend(scanner.scan(&item_text(&item), &place));
        }
    }
    (tables.len(), items)
}

fn display(e: &impl std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}
