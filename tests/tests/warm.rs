//! Each function warms at init exactly what its entry in routes.toml lets it use (issue 8 §2):
//! `TABLE` when it has table access, `SIGNING_KEYS` when it reads or writes DEX's keys, and only
//! the functions that call HATs (`register-hat`, and those that read the clusters' platform credentials) `HATS`. Fast, no stack needed.

use dex_tests::routes::{Table, TableAccess, read};

/// The `needs:` list of a function's `lambda_main!` (or, scheduled, `scheduled_main!`) call.
fn declared_needs(function: &str) -> Vec<String> {
    let main = read(&format!("functions/{function}/src/main.rs"));
    let call = main
        .split("lambda_main!(")
        .nth(1)
        .or_else(|| main.split("scheduled_main!(").nth(1))
        .unwrap_or_else(|| panic!("functions/{function}: no lambda_main! call"));
    let call = &call[..call.find(')').expect("the call closes")];
    let needs = call
        .split("needs:")
        .nth(1)
        .unwrap_or_else(|| panic!("functions/{function}: lambda_main! without needs:"));
    let needs = needs.split(",").next().unwrap_or_default();
    let mut names: Vec<String> = needs
        .split('|')
        .map(|n| n.trim().to_owned())
        .filter(|n| n != "NOTHING")
        .collect();
    names.sort();
    names
}

#[test]
fn every_function_warms_what_its_route_entry_lets_it_use() {
    let table = Table::load();
    let mut problems = Vec::new();
    for (name, function) in &table.functions {
        let mut expected = Vec::new();
        if function
            .secrets
            .iter()
            .chain(&function.writes_secrets)
            .any(|s| s.starts_with("signing"))
        {
            expected.push("SIGNING_KEYS".to_owned());
        }
        if !matches!(function.table, TableAccess::None) {
            expected.push("TABLE".to_owned());
        }
        if name == "register-hat" || function.reads_cluster_credentials {
            expected.push("HATS".to_owned());
        }
        expected.sort();
        let declared = declared_needs(name);
        if declared != expected {
            problems.push(format!(
                "{name}: lambda_main! needs {declared:?}, routes.toml says {expected:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
