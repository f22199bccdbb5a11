//! A development HAT for the local stack: `make run` starts it so that the sample events of
//! the HAT endpoints (`register-hat`, `hat-log`, `stats-report`) show their success path.
//!
//! It serves one HAT of the test HAT cluster (`dex_tests::test_hat`: a real RSA-2048 key at
//! `/publickey`, HAT2.0-format tokens) on a free port of 127.0.0.1, named
//! `dev-<start time>.<cluster>:<port>` so that a restarted dev HAT (a new key) never clashes
//! with the registration of an earlier one, and writes what `scripts/invoke.sh` needs to
//! `DEX_DEV_HAT_FILE` (JSON: address, token, cluster, platformUsername, platformPassword),
//! refreshing the token every ten minutes (DEX refuses HAT tokens older than 3 days).
//!
//! Settings: DEX_PUBLIC_URL (the `resource` of its tokens), DEX_DEV_HAT_FILE,
//! DEX_DEV_HAT_CLUSTER (default `hat.localhost`). DEX reaches it only with
//! `DEX_HAT_SCHEME=http` and `DEX_HAT_RESOLVE=127.0.0.1`, which `make run` sets with it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dex_tests::test_hat::TestHatCluster;

fn setting(name: &str, default: Option<&str>) -> String {
    match (std::env::var(name), default) {
        (Ok(value), _) if !value.is_empty() => value,
        (_, Some(default)) => default.to_owned(),
        _ => {
            eprintln!("dev-hat: {name} is not set");
            std::process::exit(2);
        }
    }
}

#[tokio::main]
async fn main() {
    let dex_url = setting("DEX_PUBLIC_URL", None);
    let file = setting("DEX_DEV_HAT_FILE", None);
    let cluster_domain = setting("DEX_DEV_HAT_CLUSTER", Some("hat.localhost"));
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();

    let cluster = TestHatCluster::start().await;
    let hat = cluster.add_hat(&format!("dev-{started}.{cluster_domain}"));
    let (platform_username, platform_password) = cluster.platform_credentials();
    println!(
        "dev-hat: serving {} on 127.0.0.1:{}, details in {file}",
        hat.address(),
        cluster.port()
    );
    loop {
        let details = serde_json::json!({
            "address": hat.address(),
            "token": hat.dex_token(&dex_url),
            "cluster": cluster_domain,
            "platformUsername": platform_username,
            "platformPassword": platform_password,
        });
        let tmp = format!("{file}.tmp");
        let written =
            std::fs::write(&tmp, details.to_string()).and_then(|()| std::fs::rename(&tmp, &file));
        if let Err(e) = written {
            eprintln!("dev-hat: cannot write {file}: {e}");
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_secs(600)).await;
    }
}
