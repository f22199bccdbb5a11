//! `dexctl notices ...`: post a notice, list every notice.

use dex::accounts::Actor;
use dex::notices::{NewNotice, NoticeTarget};
use dex_lambda::App;

use super::{fail, print_json, subcommand};

pub(crate) const USAGE: &str = "\
  dexctl notices post --message TEXT [--hat ADDRESS]...
                      (no --hat: every HAT; each --hat names one)
  dexctl notices list                 every notice, newest first
";

pub(crate) async fn notices(app: &App, argv: Vec<String>) -> Result<(), String> {
    let (sub, mut args) = subcommand(argv)?;
    match sub.as_str() {
        "post" => {
            let message = args.value("--message")?.ok_or("--message is required")?;
            let hats = args.values("--hat")?;
            let rest = args.finish()?;
            if !rest.is_empty() {
                return Err(format!("usage:\n{USAGE}"));
            }
            let new = NewNotice {
                message: Some(message),
                target: Some(NoticeTarget {
                    with_hat_address: hats,
                    ..NoticeTarget::default()
                }),
            };
            let notice = app
                .notices()
                .post(&Actor::Operator, new)
                .await
                .map_err(fail)?;
            print_json(&notice);
        }
        "list" => {
            args.finish()?;
            print_json(&app.notices().all().await.map_err(fail)?);
        }
        _ => return Err(format!("usage:\n{USAGE}")),
    }
    Ok(())
}
