//! The HAT side of the fuzz run (`scripts/fuzz.sh`): starts a test HAT cluster, certifies a
//! fresh cluster domain for it, registers its HATs, creates an admin account for the fuzzer,
//! writes the tokens schemathesis needs to the file named by its argument, and keeps the
//! HATs serving until it is stopped.
//!
//! Reads the same environment as the end-to-end suites (DEX_TEST_URL, DEX_PUBLIC_URL, the
//! bootstrap admin's credentials).

use dex_tests::hat_support::{certify_cluster, register_hat_ok, unique_domain};
use dex_tests::support::{Dex, admin_token, create_account, public_url};
use dex_tests::test_hat::TestHatCluster;
use serde_json::json;

/// How many HATs the fuzzer signs as (each one's tokens are valid for 30 days).
const HATS: usize = 3;

#[tokio::main]
async fn main() {
    let Some(out) = std::env::args().nth(1) else {
        eprintln!("usage: fuzz-hat TOKEN_FILE");
        std::process::exit(2);
    };
    let cluster = TestHatCluster::start().await;
    let domain = unique_domain();
    let admin = admin_token().await;
    let (platform_user, platform_pass) = cluster.platform_credentials();
    let certified = certify_cluster(&admin, &domain, (&platform_user, &platform_pass)).await;
    let mut hats = Vec::new();
    for i in 0..HATS {
        let hat = cluster.add_hat(&format!("fuzz{i}.{domain}"));
        register_hat_ok(hat.address()).await;
        hats.push(hat);
    }
    // Its own admin, so that what the fuzzer does to accounts never touches the bootstrap one;
    // also a marketplace, so that it registers offers.
    let (admin_id, username, password) = create_account(&admin, &["admin", "marketplace"]).await;
    let fuzz_admin = Dex::new().token(&username, &password).await;
    // What the hooks hand the fuzzer instead when it picks the HATs' cluster or its own
    // account from a listing to decertify or change (it would lock itself out).
    let spare_domain = unique_domain();
    certify_cluster(&admin, &spare_domain, (&platform_user, &platform_pass)).await;
    let (spare_account, _, _) = create_account(&admin, &[]).await;
    let tokens = json!({
        "adminToken": fuzz_admin,
        "adminId": admin_id,
        "adminUsername": username,
        "adminPassword": password,
        "cluster": certified.domain,
        "spareCluster": spare_domain,
        "spareAccount": spare_account,
        "hats": hats.iter().map(|h| json!({
            "address": h.address(),
            "token": h.dex_token(&public_url()),
        })).collect::<Vec<_>>(),
    });
    let tmp = format!("{out}.tmp");
    std::fs::write(&tmp, tokens.to_string()).expect("write the token file");
    std::fs::rename(&tmp, &out).expect("move the token file in place");
    eprintln!(
        "fuzz-hat: cluster {domain} on port {} with {HATS} registered HATs; tokens in {out}",
        cluster.port()
    );
    // Serve the HATs until the script stops this process with the rest of the stack.
    let _cluster = cluster;
    std::future::pending::<()>().await;
}
