//! Every sample event shows its function's success path through the documented command
//! (`scripts/invoke.sh`, i.e. `make invoke FN=...`), twice in a row: the second run proves
//! that creating events create something new each time and that the others are repeatable.
//! The expected status is the one `events/README.md` documents for the event.
//!
//! The development HAT that `make run` serves is played by an in-process test HAT, described
//! to the script in the same file format (`DEX_DEV_HAT_FILE`).

use std::collections::BTreeMap;
use std::process::Command;

use dex_tests::hat_support::unique_domain;
use dex_tests::routes::{Table, events_readme, workspace_root};
use dex_tests::support::{dex_url, public_url};
use dex_tests::test_hat::TestHatCluster;
use serde_json::{Value, json};

/// events/README.md: event file stem -> the documented success status.
fn documented_statuses() -> BTreeMap<String, u16> {
    events_readme()
        .into_iter()
        .filter_map(|row| Some((row.function.clone(), row.status()?)))
        .collect()
}

#[tokio::test]
async fn every_sample_event_answers_its_success_status_twice() {
    let port = dex_url()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .expect("DEX_TEST_URL ends with the port");
    let cluster = TestHatCluster::start().await;
    let domain = unique_domain();
    let hat = cluster.add_hat(&format!("dev.{domain}"));
    let (platform_username, platform_password) = cluster.platform_credentials();
    let dir = std::env::temp_dir().join(format!("dex-events-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let hat_file = dir.join("dev-hat.json");
    let details = json!({
        "address": hat.address(),
        "token": hat.dex_token(&public_url()),
        "cluster": domain,
        "platformUsername": platform_username,
        "platformPassword": platform_password,
    });
    std::fs::write(&hat_file, details.to_string()).expect("write the dev HAT file");

    let statuses = documented_statuses();
    let mut problems = Vec::new();
    let table = Table::load();
    let scheduled: Vec<String> = table
        .functions
        .iter()
        .filter(|(_, f)| f.schedule.is_some())
        .map(|(name, _)| name.clone())
        .collect();
    for function in table.function_names() {
        let Some(&wanted) = statuses.get(&function) else {
            problems.push(format!(
                "events/README.md documents no status for {function}"
            ));
            continue;
        };
        for run in 1..=2 {
            let script = workspace_root().join("scripts/invoke.sh");
            let output = tokio::task::spawn_blocking({
                let (function, hat_file) = (function.clone(), hat_file.clone());
                move || {
                    Command::new(script)
                        .arg(&function)
                        .env("DEX_PORT", port.to_string())
                        .env("DEX_DEV_HAT_FILE", &hat_file)
                        .output()
                        .expect("run scripts/invoke.sh")
                }
            })
            .await
            .expect("the invocation thread");
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            let answer = serde_json::from_str::<Value>(stdout.trim()).ok();
            let status = answer.as_ref().and_then(|r| {
                if scheduled.contains(&function) {
                    // A scheduled function answers its report: a JSON object, no Lambda error.
                    (r.is_object() && r.get("errorType").is_none()).then_some(200)
                } else {
                    r["statusCode"].as_u64()
                }
            });
            if status != Some(u64::from(wanted)) || !output.status.success() {
                problems.push(format!(
                    "invoke {function} (run {run}): expected {wanted}, got {status:?} \
                     (exit {:?})\n    stdout: {}\n    stderr: {}",
                    output.status.code(),
                    stdout.trim(),
                    stderr
                        .trim()
                        .lines()
                        .rev()
                        .take(5)
                        .collect::<Vec<_>>()
                        .join(" | ")
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    cluster.shutdown().await;
    assert!(
        problems.is_empty(),
        "sample events that do not show their success path:\n  - {}",
        problems.join("\n  - ")
    );
}
