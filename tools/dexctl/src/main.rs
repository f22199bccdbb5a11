//! dexctl: DEX administration without HTTP, against the same table and secrets as the
//! functions, configured by the same environment variables.
//!
//! Passwords are never taken as arguments (they would land in shell history and `ps`):
//! they come from an environment variable named with `--password-env`, or from stdin.

use std::io::BufRead;
use std::process::ExitCode;

use dex::accounts::{AccountChange, AccountView, Actor, NewAccount, PasswordChange};
use dex::config::Config;
use dex::hats::clusters::NewCluster;
use dex::hats::{ClusterView, HatView};
use dex::page::PageRequest;
use dex::roles::Role;
use dex::{DexError, DexResult};
use dex_lambda::App;

mod offers;
mod plugs;

const USAGE: &str = "\
dexctl: operate a DEX deployment (uses DEX_TABLE, DEX_SECRETS_PREFIX, AWS_* like the functions)

  dexctl init                         create the table and the first signing key if missing,
                                      and publish its public half if that is missing (a
                                      deployment makes both at its first login by itself)
  dexctl ensure-admin [--enable]      create the admin account named by
                                      DEX_LOCAL_ADMIN_USERNAME / DEX_LOCAL_ADMIN_PASSWORD (both
                                      required, no defaults), or give it the admin role back;
                                      a disabled one is re-enabled only with --enable
  dexctl rotate-key                   make a new signing key current; the previous one keeps
                                      verifying until its tokens expire
  dexctl accounts create --username U [--role R]... (--password-env VAR | --password-stdin)
  dexctl accounts list [--limit N] [--cursor C]
  dexctl accounts update ACCOUNT_ID [--role R]... [--no-roles] [--disable | --enable]
  dexctl accounts password ACCOUNT_ID (--password-env VAR | --password-stdin)
                                      set a new password; the account's tokens stop working
  dexctl clusters certify --domain D --platform-username U --platform-password-env VAR
                          [--provisioner ACCOUNT_ID]...
  dexctl clusters list
  dexctl clusters decertify DOMAIN
  dexctl hats list [--cluster DOMAIN] [--limit N] [--cursor C]
";

struct Args(Vec<String>);

impl Args {
    fn flag(&mut self, name: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|a| a != name);
        before != self.0.len()
    }

    fn values(&mut self, name: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        while let Some(i) = self.0.iter().position(|a| a == name) {
            if i + 1 >= self.0.len() {
                return Err(format!("{name} needs a value"));
            }
            out.push(self.0.remove(i + 1));
            self.0.remove(i);
        }
        Ok(out)
    }

    fn value(&mut self, name: &str) -> Result<Option<String>, String> {
        Ok(self.values(name)?.pop())
    }

    fn finish(self) -> Result<Vec<String>, String> {
        if let Some(unknown) = self.0.iter().find(|a| a.starts_with("--")) {
            return Err(format!("unknown option {unknown}"));
        }
        Ok(self.0)
    }
}

fn required_env(var: &str) -> Result<String, String> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| format!("environment variable {var} is required"))
}

fn env_password(var: &str) -> Result<String, String> {
    std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))
}

fn read_password(args: &mut Args) -> Result<String, String> {
    if let Some(var) = args.value("--password-env")? {
        return env_password(&var);
    }
    if args.flag("--password-stdin") {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    Err("give --password-env VAR or --password-stdin".into())
}

fn config() -> DexResult<Config> {
    // dexctl neither signs nor verifies tokens, so DEX_PUBLIC_URL is optional here.
    Config::from_lookup(|name| {
        std::env::var(name)
            .ok()
            .or_else(|| (name == "DEX_PUBLIC_URL").then(|| "http://dexctl.invalid".into()))
    })
    .map_err(|e| DexError::bad_request(e.to_string()))
}

fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("serialisable")
    );
}

async fn run(mut argv: Vec<String>) -> Result<(), String> {
    if argv.is_empty() || argv[0] == "help" || argv[0] == "--help" {
        print!("{USAGE}{}{}", plugs::USAGE, offers::USAGE);
        return Ok(());
    }
    let command = argv.remove(0);
    let config = config().map_err(fail)?;
    let (dynamodb, secrets) = dex_aws::aws_clients().await;
    // dexctl is the one consumer that also creates the table, so it keeps the client.
    let app = App::with_clients(config, dynamodb.clone(), secrets);
    match command.as_str() {
        "init" => {
            Args(argv).finish()?;
            let table = &app.config().table;
            let created = dex_aws::dynamo::schema::ensure_table(&dynamodb, table)
                .await
                .map_err(fail)?;
            println!(
                "table {table}: {}",
                if created { "created" } else { "exists" }
            );
            let name = app.config().signing_key_secret();
            let public = app.config().public_keys_secret();
            let created = app
                .signing_key_admin()
                .ensure(&Actor::Operator)
                .await
                .map_err(fail)?;
            println!(
                "signing key secret {name}: {} (public keys in {public})",
                if created { "created" } else { "exists" }
            );
        }
        "ensure-admin" => {
            let mut args = Args(argv);
            let enable = args.flag("--enable");
            args.finish()?;
            // No defaults: the README's local credentials must never become a deployment's.
            let username = required_env("DEX_LOCAL_ADMIN_USERNAME")?;
            let password = required_env("DEX_LOCAL_ADMIN_PASSWORD")?;
            let accounts = app.accounts();
            match accounts.find_by_username(&username).await.map_err(fail)? {
                None => {
                    let new = NewAccount {
                        username: username.clone(),
                        password,
                        roles: vec!["admin".into()],
                    };
                    let account = accounts.create(&Actor::Operator, new).await.map_err(fail)?;
                    println!("admin {username} created ({})", account.account_id);
                }
                Some(account) => {
                    if account.disabled && !enable {
                        return Err(format!(
                            "admin {username} ({}) is disabled; pass --enable to enable it again",
                            account.account_id
                        ));
                    }
                    let mut roles: Vec<String> =
                        account.roles.iter().map(Role::to_string).collect();
                    if !account.has(&Role::Admin) {
                        roles.push("admin".into());
                    }
                    let change = AccountChange {
                        roles: Some(roles),
                        disabled: enable.then_some(false),
                    };
                    accounts
                        .update(&Actor::Operator, &account.account_id, change)
                        .await
                        .map_err(fail)?;
                    println!("admin {username} exists ({})", account.account_id);
                }
            }
        }
        "rotate-key" => {
            Args(argv).finish()?;
            let (kid, previous) = app
                .signing_key_admin()
                .rotate(&Actor::Operator, app.config().token_lifetime)
                .await
                .map_err(fail)?;
            println!(
                "new signing key {kid} is current; previous {previous:?} verifies until its tokens expire"
            );
        }
        "accounts" => accounts(&app, argv).await?,
        "clusters" => clusters(&app, argv).await?,
        "hats" => hats(&app, argv).await?,
        "plugs" => plugs::plugs(&app, argv).await?,
        "offers" => {
            let store = dex_aws::dynamo::DynamoStore::new(
                dynamodb.clone(),
                &app.config().table,
                std::sync::Arc::new(dex::ports::SystemClock),
                std::sync::Arc::new(dex::ports::SystemRandom),
            );
            offers::offers(store, argv).await?
        }
        other => return Err(format!("unknown command {other:?}\n\n{USAGE}")),
    }
    Ok(())
}

async fn accounts(app: &App, argv: Vec<String>) -> Result<(), String> {
    let (sub, mut args) = subcommand(argv)?;
    match sub.as_str() {
        "create" => {
            let username = args.value("--username")?.ok_or("--username is required")?;
            let roles = args.values("--role")?;
            let password = read_password(&mut args)?;
            args.finish()?;
            let account = app
                .accounts()
                .create(
                    &Actor::Operator,
                    NewAccount {
                        username,
                        password,
                        roles,
                    },
                )
                .await
                .map_err(fail)?;
            print_json(&AccountView::from(&account));
        }
        "list" => {
            let page = PageRequest::parse(
                args.value("--limit")?.as_deref(),
                args.value("--cursor")?.as_deref(),
            )
            .map_err(fail)?;
            args.finish()?;
            let page = app.accounts().list(page).await.map_err(fail)?;
            print_json(&page.map(AccountView::from));
        }
        "update" => {
            let roles = args.values("--role")?;
            let no_roles = args.flag("--no-roles");
            let disabled = match (args.flag("--disable"), args.flag("--enable")) {
                (true, true) => return Err("--disable and --enable exclude each other".into()),
                (true, false) => Some(true),
                (false, true) => Some(false),
                (false, false) => None,
            };
            let rest = args.finish()?;
            let [id] = rest.as_slice() else {
                return Err("give exactly one ACCOUNT_ID".into());
            };
            let roles = if no_roles || !roles.is_empty() {
                Some(roles)
            } else {
                None
            };
            let account = app
                .accounts()
                .update(&Actor::Operator, id, AccountChange { roles, disabled })
                .await
                .map_err(fail)?;
            print_json(&AccountView::from(&account));
        }
        "password" => {
            let new_password = read_password(&mut args)?;
            let rest = args.finish()?;
            let [id] = rest.as_slice() else {
                return Err("give exactly one ACCOUNT_ID".into());
            };
            let change = PasswordChange {
                current_password: None,
                new_password,
            };
            let account = app
                .accounts()
                .change_password(&Actor::Operator, id, change)
                .await
                .map_err(fail)?;
            print_json(&AccountView::from(&account));
        }
        other => return Err(format!("unknown accounts command {other:?}")),
    }
    Ok(())
}

async fn clusters(app: &App, argv: Vec<String>) -> Result<(), String> {
    let (sub, mut args) = subcommand(argv)?;
    match sub.as_str() {
        "certify" => {
            let domain = args.value("--domain")?.ok_or("--domain is required")?;
            let platform_username = args
                .value("--platform-username")?
                .ok_or("--platform-username is required")?;
            let var = args
                .value("--platform-password-env")?
                .ok_or("--platform-password-env is required")?;
            let platform_password = env_password(&var)?;
            let provisioners = args.values("--provisioner")?;
            args.finish()?;
            let new = NewCluster {
                domain,
                platform_username,
                platform_password,
                provisioners,
            };
            let cluster = app
                .clusters()
                .certify(&Actor::Operator, new)
                .await
                .map_err(fail)?;
            print_json(&ClusterView::from(&cluster));
        }
        "list" => {
            args.finish()?;
            let clusters = app.clusters().list().await.map_err(fail)?;
            print_json(&clusters.iter().map(ClusterView::from).collect::<Vec<_>>());
        }
        "decertify" => {
            let rest = args.finish()?;
            let [domain] = rest.as_slice() else {
                return Err("give exactly one DOMAIN".into());
            };
            let cluster = app
                .clusters()
                .decertify(&Actor::Operator, domain)
                .await
                .map_err(fail)?;
            print_json(&ClusterView::from(&cluster));
        }
        other => return Err(format!("unknown clusters command {other:?}")),
    }
    Ok(())
}

async fn hats(app: &App, mut argv: Vec<String>) -> Result<(), String> {
    if argv.first().map(String::as_str) != Some("list") {
        return Err(USAGE.into());
    }
    argv.remove(0);
    let mut args = Args(argv);
    let cluster = args.value("--cluster")?;
    let page = PageRequest::parse(
        args.value("--limit")?.as_deref(),
        args.value("--cursor")?.as_deref(),
    )
    .map_err(fail)?;
    args.finish()?;
    let page = app
        .clusters()
        .hats(cluster.as_deref(), page)
        .await
        .map_err(fail)?;
    print_json(&page.map(HatView::from));
    Ok(())
}

/// Splits `SUBCOMMAND ARGS...`.
fn subcommand(mut argv: Vec<String>) -> Result<(String, Args), String> {
    if argv.is_empty() {
        return Err(USAGE.into());
    }
    let sub = argv.remove(0);
    Ok((sub, Args(argv)))
}

/// An error as the operator reads it.
fn fail(e: DexError) -> String {
    format!("{}: {}", e.body().message, describe(&e))
}

fn describe(e: &DexError) -> String {
    match e {
        // The operator's own terminal: the internal detail helps and goes nowhere else.
        DexError::Internal(detail) => detail.clone(),
        other => {
            let body = other.body();
            if body.details.is_empty() {
                body.cause
            } else {
                format!("{} ({})", body.cause, body.details.join("; "))
            }
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("dexctl: {message}");
            ExitCode::FAILURE
        }
    }
}
