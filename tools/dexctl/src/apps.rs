//! `dexctl apps ...`: list, publish and suspend applications (as the operator, who manages
//! any application like an admin); `push` is update-application (`apps_push.rs`).

use dex::accounts::Actor;
use dex::apps::StoredApp;
use dex_lambda::App;
use serde_json::json;

use super::{fail, print_json, subcommand};

pub(crate) const USAGE: &str = "\
  dexctl apps list [--suspended]
  dexctl apps publish APPLICATION_ID
  dexctl apps suspend APPLICATION_ID
";

/// One line of the operator's listing: the state DEX keeps beside the document.
fn summary(app: &StoredApp) -> serde_json::Value {
    json!({
        "id": app.id,
        "kind": app.kind.as_str(),
        "version": app.version.to_string(),
        "developerId": app.developer_id,
        "published": app.published,
        "suspended": app.suspended,
        "updatedAt": app.updated_at,
    })
}

pub(crate) async fn apps(app: &App, argv: Vec<String>) -> Result<(), String> {
    let (sub, mut args) = subcommand(argv)?;
    match sub.as_str() {
        "list" => {
            let suspended_only = args.flag("--suspended");
            args.finish()?;
            let all = app.apps().all().await.map_err(fail)?;
            let lines: Vec<serde_json::Value> = all
                .iter()
                .filter(|a| !suspended_only || a.suspended)
                .map(summary)
                .collect();
            print_json(&lines);
        }
        verb @ ("publish" | "suspend") => {
            let rest = args.finish()?;
            let [id] = rest.as_slice() else {
                return Err(format!("usage:\n{USAGE}"));
            };
            let changed = if verb == "publish" {
                app.apps().publish(&Actor::Operator, id).await
            } else {
                app.apps().suspend(&Actor::Operator, id).await
            }
            .map_err(fail)?;
            print_json(&summary(&changed));
        }
        "push" => super::apps_push::push(app, args).await?,
        _ => return Err(format!("usage:\n{USAGE}{}", super::apps_push::USAGE)),
    }
    Ok(())
}
