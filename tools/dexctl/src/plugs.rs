//! `dexctl plugs ...`: register, list, approve and unapprove data plugs.

use dex::accounts::Actor;
use dex::plugs::DataPlugView;
use dex::plugs::service::{NewPlug, PlugChange};
use dex_lambda::App;

use super::{fail, print_json, read_password, subcommand};

pub(crate) const USAGE: &str = "\
  dexctl plugs register --name N --provider ACCOUNT_ID --url U --illustration-url U
                        [--description D] (--password-env VAR | --password-stdin)
  dexctl plugs list [--approved]
  dexctl plugs approve PLUG_ID
  dexctl plugs unapprove PLUG_ID
";

pub(crate) async fn plugs(app: &App, argv: Vec<String>) -> Result<(), String> {
    let (sub, mut args) = subcommand(argv)?;
    match sub.as_str() {
        "register" => {
            let name = args.value("--name")?.ok_or("--name is required")?;
            let provider = args.value("--provider")?.ok_or("--provider is required")?;
            let url = args.value("--url")?.ok_or("--url is required")?;
            let illustration = args
                .value("--illustration-url")?
                .ok_or("--illustration-url is required")?;
            let description = args.value("--description")?.unwrap_or_default();
            let password = read_password(&mut args)?;
            args.finish()?;
            let plug = app
                .plugs()
                .register(
                    &Actor::Operator,
                    NewPlug {
                        name: Some(name),
                        description: Some(description),
                        url: Some(url),
                        illustration_url: Some(illustration),
                        provider_id: Some(provider),
                        password: Some(password),
                    },
                )
                .await
                .map_err(fail)?;
            print_json(&DataPlugView::from(&plug));
        }
        "list" => {
            let approved = args.flag("--approved");
            args.finish()?;
            let plugs = if approved {
                app.plugs().approved().await
            } else {
                app.plugs().all().await
            }
            .map_err(fail)?;
            let views: Vec<DataPlugView> = plugs.iter().map(DataPlugView::from).collect();
            print_json(&views);
        }
        verb @ ("approve" | "unapprove") => {
            let rest = args.finish()?;
            let [id] = rest.as_slice() else {
                return Err(format!("usage:\n{USAGE}"));
            };
            let change = PlugChange {
                approved: Some(verb == "approve"),
                ..PlugChange::default()
            };
            let plug = app
                .plugs()
                .update(&Actor::Operator, id, change)
                .await
                .map_err(fail)?;
            print_json(&DataPlugView::from(&plug));
        }
        _ => return Err(format!("usage:\n{USAGE}")),
    }
    Ok(())
}
