//! The route table of the root `Cargo.toml` (`[workspace.metadata.lambda.watch.router]`, what
//! `cargo lambda watch` serves), parsed in one place for the routes test and the bench.

use std::path::Path;

/// One `{ method, function }` of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterEntry {
    /// Upper case.
    pub method: String,
    pub path: String,
    pub function: String,
}

/// The entries (by path, then as listed), and what is malformed (each a sentence naming the path).
#[derive(Debug, Default)]
pub struct Router {
    pub entries: Vec<RouterEntry>,
    pub problems: Vec<String>,
}

/// Parses the router of a workspace manifest's text; `Err` when there is no router table.
pub fn parse_router(manifest: &str) -> Result<Router, String> {
    let manifest: toml::Table = manifest
        .parse()
        .map_err(|e| format!("the manifest does not parse: {e}"))?;
    let table = ["workspace", "metadata", "lambda", "watch", "router"]
        .iter()
        .try_fold(&manifest, |t, key| t.get(*key).and_then(|v| v.as_table()))
        .ok_or("no [workspace.metadata.lambda.watch.router] table")?;
    let mut router = Router::default();
    for (path, entries) in table {
        let Some(entries) = entries.as_array() else {
            router.problems.push(format!(
                "router entry {path:?} is not an array of {{method, function}}"
            ));
            continue;
        };
        for entry in entries {
            let method = entry.get("method").and_then(|m| m.as_str());
            let function = entry.get("function").and_then(|f| f.as_str());
            let (Some(method), Some(function)) = (method, function) else {
                router.problems.push(format!(
                    "router entry for {path:?} lacks a method or a function: {entry}"
                ));
                continue;
            };
            router.entries.push(RouterEntry {
                method: method.to_ascii_uppercase(),
                path: path.clone(),
                function: function.to_owned(),
            });
        }
    }
    Ok(router)
}

/// [`parse_router`] of `<root>/Cargo.toml`.
pub fn read_router(root: &Path) -> Result<Router, String> {
    let path = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_router(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_and_names_malformed_ones() {
        let router = parse_router(
            r#"
            [workspace.metadata.lambda.watch.router]
            "/a" = [{ method = "get", function = "fa" }, { method = "POST", function = "fb" }]
            "/b" = "not a list"
            "/c" = [{ method = "GET" }]
            "#,
        )
        .unwrap();
        assert_eq!(
            router.entries,
            vec![
                RouterEntry {
                    method: "GET".into(),
                    path: "/a".into(),
                    function: "fa".into()
                },
                RouterEntry {
                    method: "POST".into(),
                    path: "/a".into(),
                    function: "fb".into()
                },
            ]
        );
        assert_eq!(router.problems.len(), 2);
        assert!(router.problems[0].contains("\"/b\""));
        assert!(router.problems[1].contains("\"/c\""));
        assert!(parse_router("[workspace]").is_err());
    }
}
