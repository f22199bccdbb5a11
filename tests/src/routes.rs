//! The route table (`routes.toml` at the workspace root) and what is generated from it.
//!
//! One parser for everyone who needs the routes (the routes tests, the e2e alias test, the
//! benchmark), and the generators of the files `make routes` writes:
//! - [`cargo_router`] writes `[workspace.metadata.lambda.watch.router]` in the root `Cargo.toml`;
//! - [`template_functions`] the function resources of `template.yaml`;
//! - [`default_route_table`] `functions/default-route/src/routes.rs`.
//!
//! Each generated text sits in its file between [`BEGIN`] and [`END`] marker lines, so the
//! hand-written rest of the file stays as it is.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The function behind API Gateway's `$default` route (and the local catch-all).
pub const DEFAULT_ROUTE_FUNCTION: &str = "default-route";

/// Methods the local router answers on every canonical path: those without a function there
/// go to the default route, as API Gateway sends them to `$default`.
pub const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE",
];

pub const BEGIN: &str = "# BEGIN generated from routes.toml by `make routes`: do not edit by hand";
pub const END: &str = "# END generated from routes.toml";

/// What a function may do on the DynamoDB table.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TableAccess {
    None,
    Read,
    Write,
    /// Reads only the partition keys in `leading_keys` (public, unauthenticated reads).
    Public,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Function {
    pub description: String,
    pub table: TableAccess,
    #[serde(default)]
    pub leading_keys: Vec<String>,
    /// For table = "public": the pk patterns it may also write (a read model's own items).
    #[serde(default)]
    pub writes_keys: Vec<String>,
    /// Secrets it may only read.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Secrets it reads and writes (their first value is made on first use, race-free).
    #[serde(default)]
    pub writes_secrets: Vec<String>,
    /// Environment variables set from template parameters: `VAR = "ParameterName"`.
    #[serde(default)]
    pub env_parameters: BTreeMap<String, String>,
    #[serde(default)]
    pub writes_cluster_credentials: bool,
    /// Reads "<stack>/clusters/<domain>" (the platform credentials of DEX calling HATs).
    #[serde(default)]
    pub reads_cluster_credentials: bool,
    pub memory: Option<u32>,
    pub memory_note: Option<String>,
    pub routes: Vec<String>,
    /// A scheduled function (no routes): the template parameter with its schedule expression.
    pub schedule: Option<String>,
    /// API Gateway throttling of its routes: `<Name>` = the template parameters
    /// `<Name>ThrottleRate` and `<Name>ThrottleBurst`.
    pub throttle: Option<String>,
}

/// `METHOD /path`, canonical.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub method: String,
    pub path: String,
    pub function: String,
}

impl Route {
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

#[derive(Clone, Debug)]
pub struct Table {
    /// function name -> function, in name order.
    pub functions: BTreeMap<String, Function>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    function: BTreeMap<String, Function>,
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The build's target directory (`CARGO_TARGET_DIR`, relative to the workspace, else
/// `target/`).
pub fn target_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    if target.is_relative() {
        workspace_root().join(target)
    } else {
        target
    }
}

/// A binary of the workspace that `make test` built (`cargo build --workspace --bins`).
pub fn built_binary(name: &str) -> PathBuf {
    let path = target_dir().join("debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --workspace --bins` (make test does)",
        path.display()
    );
    path
}

/// One row of the `events/README.md` table: the event's file stem, the route it shows and
/// the documented success answer (its status first, e.g. `201, a new account`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    pub function: String,
    pub route: String,
    pub answer: String,
}

impl EventRow {
    /// The status the answer starts with.
    pub fn status(&self) -> Option<u16> {
        self.answer.split(',').next()?.trim().parse().ok()
    }
}

/// The rows of the `events/README.md` table, in file order.
pub fn events_readme() -> Vec<EventRow> {
    read("events/README.md")
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            let [file, route, answer] = cells.as_slice() else {
                return None;
            };
            let function = file.strip_prefix('`')?.strip_suffix(".json`")?;
            Some(EventRow {
                function: function.to_owned(),
                route: route.trim_matches('`').to_owned(),
                answer: (*answer).to_owned(),
            })
        })
        .collect()
}

pub fn read(relative: &str) -> String {
    let path = workspace_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

impl Table {
    /// Reads and checks `routes.toml`; panics naming what is wrong.
    pub fn load() -> Self {
        Self::parse(&read("routes.toml")).unwrap_or_else(|e| panic!("routes.toml: {e}"))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let table = Table {
            functions: file.function,
        };
        let mut problems = Vec::new();
        let throttles = table
            .functions
            .iter()
            .map(|(name, f)| (name.as_str(), &f.throttle));
        for (name, throttle) in throttles {
            if let Some(t) = throttle
                && !(t.starts_with(|c: char| c.is_ascii_uppercase())
                    && t.chars().all(|c| c.is_ascii_alphanumeric()))
            {
                problems.push(format!(
                    "{name}: throttle {t:?} must name template parameters (e.g. \"Costly\")"
                ));
            }
        }
        let mut seen = BTreeMap::new();
        for (name, f) in &table.functions {
            if name == DEFAULT_ROUTE_FUNCTION {
                problems.push(format!("{name} is generated, not listed"));
            }
            if f.routes.is_empty() == f.schedule.is_none() {
                problems.push(format!(
                    "{name}: either routes or a schedule (a scheduled function has no routes)"
                ));
            }
            if f.schedule.is_some() && f.throttle.is_some() {
                problems.push(format!(
                    "{name}: a scheduled function has no route to throttle"
                ));
            }
            if (f.table == TableAccess::Public) == f.leading_keys.is_empty() {
                problems.push(format!(
                    "{name}: leading_keys go with table = \"public\", and only with it"
                ));
            }
            if f.memory_note.is_some() && f.memory.is_none() {
                problems.push(format!("{name}: memory_note without memory"));
            }
            for secret in f.secrets.iter().chain(&f.writes_secrets) {
                if secret_logical_id(secret).is_none() {
                    problems.push(format!("{name}: unknown secret {secret:?}"));
                }
            }
            if let Some(both) = f.secrets.iter().find(|s| f.writes_secrets.contains(s)) {
                problems.push(format!(
                    "{name}: {both:?} is in secrets and writes_secrets (writing includes reading)"
                ));
            }
            for route in &f.routes {
                match parse_route(route) {
                    Err(e) => problems.push(format!("{name}: {e}")),
                    Ok((method, path)) => {
                        if let Some(other) = seen.insert(format!("{method} {path}"), name) {
                            problems.push(format!("{route} is routed twice ({other}, {name})"));
                        }
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(table)
        } else {
            Err(problems.join("; "))
        }
    }

    /// Every canonical route, sorted by path then method.
    pub fn routes(&self) -> Vec<Route> {
        let mut out: Vec<Route> = self
            .functions
            .iter()
            .flat_map(|(name, f)| {
                f.routes.iter().map(move |r| {
                    let (method, path) = parse_route(r).expect("checked at load");
                    Route {
                        method,
                        path,
                        function: name.clone(),
                    }
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
        out
    }

    /// The names of the functions that HTTP routes reach (the default route excluded).
    pub fn routed_functions(&self) -> Vec<String> {
        self.functions
            .iter()
            .filter(|(_, f)| f.schedule.is_none())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Function names, the default route's included.
    pub fn function_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.functions.keys().cloned().collect();
        names.push(DEFAULT_ROUTE_FUNCTION.to_owned());
        names.sort();
        names
    }
}

fn parse_route(route: &str) -> Result<(String, String), String> {
    let (method, path) = route
        .split_once(' ')
        .ok_or_else(|| format!("{route:?} is not \"METHOD /path\""))?;
    if !["GET", "POST", "PUT", "DELETE", "PATCH"].contains(&method) {
        return Err(format!(
            "{route:?}: method must be GET, POST, PUT, DELETE or PATCH"
        ));
    }
    let canonical = path.starts_with('/')
        && path.len() > 1
        && !path.ends_with('/')
        && !path.contains("//")
        && path.split('/').skip(1).all(|segment| {
            let param = segment.starts_with('{') && segment.ends_with('}');
            let name = if param {
                &segment[1..segment.len() - 1]
            } else {
                segment
            };
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        });
    if !canonical {
        return Err(format!(
            "{route:?}: the path must be canonical (a leading slash, no trailing slash, no //, \
             segments of [A-Za-z0-9._-] or {{param}})"
        ));
    }
    Ok((method.to_owned(), path.to_owned()))
}

/// The template's logical id of a secret named in `routes.toml`.
pub fn secret_logical_id(secret: &str) -> Option<&'static str> {
    match secret {
        "signing-keys" => Some("SigningKeySecret"),
        "signing-keys-public" => Some("SigningPublicKeysSecret"),
        "first-admin" => Some("FirstAdminSecret"),
        "encryption-keys" => Some("EncryptionKeySecret"),
        _ => None,
    }
}

/// `admin-accounts-create` -> `AdminAccountsCreateFunction`.
pub fn logical_id(function: &str) -> String {
    let mut out: String = function.split('-').map(capitalise).collect();
    out.push_str("Function");
    out
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// `GET /api/admin/accounts/{accountId}` -> `GetApiAdminAccountsAccountId`.
fn event_id(route: &Route) -> String {
    let mut out = capitalise(&route.method.to_ascii_lowercase());
    for part in route.path.split(|c: char| !c.is_ascii_alphanumeric()) {
        out.push_str(&capitalise(part));
    }
    out
}

// ---- generators ---------------------------------------------------------------------------

/// The `cargo lambda watch` router: every canonical route; every other method on a canonical
/// path, `/` and every other path (`{*path}`) go to the default route, which serves the
/// aliases and answers DEX's 404, as `$default` does on API Gateway.
pub fn cargo_router(table: &Table) -> String {
    let mut by_path: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for route in table.routes() {
        by_path
            .entry(route.path)
            .or_default()
            .insert(route.method, route.function);
    }
    let mut out = String::new();
    out.push_str("[workspace.metadata.lambda.watch.router]\n");
    let _ = writeln!(out, "\"/\" = \"{DEFAULT_ROUTE_FUNCTION}\"");
    let _ = writeln!(out, "\"/{{*path}}\" = \"{DEFAULT_ROUTE_FUNCTION}\"");
    for (path, methods) in &by_path {
        let _ = writeln!(out, "\"{path}\" = [");
        for method in METHODS {
            let function = methods
                .get(method)
                .map_or(DEFAULT_ROUTE_FUNCTION, String::as_str);
            let _ = writeln!(
                out,
                "    {{ method = \"{method}\", function = \"{function}\" }},"
            );
        }
        out.push_str("]\n");
    }
    out
}

/// The function resources of template.yaml.
pub fn template_functions(table: &Table) -> String {
    let mut out = String::new();
    for (name, f) in &table.functions {
        let _ = writeln!(out, "  {}:", logical_id(name));
        function_header(&mut out, name);
        let invoked_by = match &f.schedule {
            Some(parameter) => format!("schedule {parameter}"),
            None => f.routes.join(", "),
        };
        let _ = writeln!(out, "      Description: {invoked_by} - {}", f.description);
        if let Some(memory) = f.memory {
            if let Some(note) = &f.memory_note {
                for line in wrap(note, 86) {
                    let _ = writeln!(out, "      # {line}");
                }
            }
            let _ = writeln!(out, "      MemorySize: {memory}");
        }
        if !f.env_parameters.is_empty() {
            out.push_str("      Environment:\n        Variables:\n");
            for (var, parameter) in &f.env_parameters {
                let _ = writeln!(out, "          {var}: !Ref {parameter}");
            }
        }
        let policies = policies(f);
        if !policies.is_empty() {
            out.push_str("      Policies:\n");
            out.push_str(&policies);
        }
        out.push_str("      Events:\n");
        if let Some(parameter) = &f.schedule {
            out.push_str("        Schedule:\n          Type: Schedule\n          Properties:\n");
            let _ = writeln!(out, "            Schedule: !Ref {parameter}");
            out.push_str("            Enabled: true\n");
            // A failed run is not retried: the next scheduled run does the same work.
            out.push_str("            RetryPolicy:\n              MaximumRetryAttempts: 0\n");
        }
        for route in table.routes().iter().filter(|r| &r.function == name) {
            http_api_event(
                &mut out,
                &event_id(route),
                &route.path,
                &route.method,
                f.throttle.as_deref(),
            );
        }
        out.push('\n');
    }

    // The default route: aliases and unknown paths.
    let _ = writeln!(out, "  {}:", logical_id(DEFAULT_ROUTE_FUNCTION));
    function_header(&mut out, DEFAULT_ROUTE_FUNCTION);
    out.push_str(
        "      Description: $default route - hands /x/, //x and //x/ to the function of /x, answers DEX's 404 otherwise\n",
    );
    out.push_str("      Environment:\n        Variables:\n");
    out.push_str("          DEX_FUNCTION_PREFIX: !Sub \"${AWS::StackName}-\"\n");
    out.push_str("      Policies:\n        - Statement:\n");
    out.push_str("            - Sid: InvokeDexFunctions\n              Effect: Allow\n");
    out.push_str("              Action: lambda:InvokeFunction\n              Resource:\n");
    for name in table.routed_functions() {
        let _ = writeln!(out, "                - !GetAtt {}.Arn", logical_id(&name));
    }
    out.push_str("      Events:\n");
    // Its throttle is DexApi's `RouteSettings."$default"` (SAM would key an event-level one
    // "ANY $default", which is not the route's key).
    http_api_event(&mut out, "Default", "$default", "ANY", None);
    out
}

fn function_header(out: &mut String, name: &str) {
    out.push_str("    Type: AWS::Serverless::Function\n");
    out.push_str("    Metadata:\n      BuildMethod: rust-cargolambda\n");
    let _ = writeln!(out, "      BuildProperties:\n        Binary: {name}");
    out.push_str("    Properties:\n");
    let _ = writeln!(
        out,
        "      FunctionName: !Sub \"${{AWS::StackName}}-{name}\""
    );
}

fn http_api_event(out: &mut String, id: &str, path: &str, method: &str, throttle: Option<&str>) {
    let _ = writeln!(out, "        {id}:");
    out.push_str("          Type: HttpApi\n          Properties:\n");
    out.push_str("            ApiId: !Ref DexApi\n");
    let _ = writeln!(out, "            Path: {path}");
    let _ = writeln!(out, "            Method: {method}");
    out.push_str("            PayloadFormatVersion: \"2.0\"\n");
    if let Some(name) = throttle {
        out.push_str("            RouteSettings:\n");
        let _ = writeln!(
            out,
            "              ThrottlingBurstLimit: !Ref {name}ThrottleBurst"
        );
        let _ = writeln!(
            out,
            "              ThrottlingRateLimit: !Ref {name}ThrottleRate"
        );
    }
}

fn policies(f: &Function) -> String {
    let mut out = String::new();
    match f.table {
        TableAccess::None => {}
        TableAccess::Read => out.push_str("        - !Ref DexTableReaderPolicy\n"),
        TableAccess::Write => out.push_str("        - !Ref DexTableWriterPolicy\n"),
        TableAccess::Public => {
            out.push_str("        - Statement:\n");
            out.push_str("            - Sid: DexTablePublicRead\n              Effect: Allow\n");
            out.push_str("              Action:\n");
            for verb in READ_VERBS {
                let _ = writeln!(out, "                - dynamodb:{verb}");
            }
            out.push_str("              Resource: !GetAtt DexTable.Arn\n");
            out.push_str("              Condition:\n                ForAllValues:StringLike:\n");
            out.push_str("                  dynamodb:LeadingKeys:\n");
            for key in &f.leading_keys {
                let _ = writeln!(out, "                    - \"{key}\"");
            }
            if !f.writes_keys.is_empty() {
                out.push_str("            # Only the read model's own items are written.\n");
                out.push_str(
                    "            - Sid: DexTableReadModelWrite\n              Effect: Allow\n",
                );
                out.push_str("              Action:\n");
                for verb in READ_MODEL_WRITE_VERBS {
                    let _ = writeln!(out, "                - dynamodb:{verb}");
                }
                out.push_str("              Resource: !GetAtt DexTable.Arn\n");
                out.push_str(
                    "              Condition:\n                ForAllValues:StringLike:\n",
                );
                out.push_str("                  dynamodb:LeadingKeys:\n");
                for key in &f.writes_keys {
                    let _ = writeln!(out, "                    - \"{key}\"");
                }
            }
        }
    }
    if f.writes_cluster_credentials {
        out.push_str("        - Statement:\n");
        out.push_str("            # The cluster's platform credentials live in \"<stack>/clusters/<domain>\",\n");
        out.push_str("            # never in the table. Only this function writes them.\n");
        out.push_str("            - Sid: ClusterCredentialsWrite\n              Effect: Allow\n");
        out.push_str("              Action:\n");
        for verb in ["CreateSecret", "PutSecretValue", "TagResource"] {
            let _ = writeln!(out, "                - secretsmanager:{verb}");
        }
        out.push_str("              Resource: !Sub \"arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${AWS::StackName}/clusters/*\"\n");
    }
    if !f.writes_secrets.is_empty() {
        out.push_str("        - Statement:\n");
        out.push_str("            # Read, and written on first use (PutSecretValue with a fixed version id:\n");
        out.push_str("            # racing containers end with one value).\n");
        out.push_str("            - Sid: SecretsReadWrite\n              Effect: Allow\n");
        out.push_str("              Action:\n");
        for verb in SECRET_WRITE_VERBS {
            let _ = writeln!(out, "                - secretsmanager:{verb}");
        }
        out.push_str("              Resource:\n");
        for secret in &f.writes_secrets {
            let id = secret_logical_id(secret).expect("checked at load");
            let _ = writeln!(out, "                - !Ref {id}");
        }
    }
    if f.reads_cluster_credentials {
        out.push_str("        - Statement:\n");
        out.push_str("            # DEX calls HATs as their cluster's platform user (docs/decisions.md §6).\n");
        out.push_str("            - Sid: ClusterCredentialsRead\n              Effect: Allow\n");
        out.push_str("              Action: secretsmanager:GetSecretValue\n");
        out.push_str("              Resource: !Sub \"arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${AWS::StackName}/clusters/*\"\n");
    }
    for secret in &f.secrets {
        let id = secret_logical_id(secret).expect("checked at load");
        out.push_str("        - AWSSecretsManagerGetSecretValuePolicy:\n");
        let _ = writeln!(out, "            SecretArn: !Ref {id}");
    }
    out
}

/// What a function may do on a secret of its `writes_secrets`.
pub const SECRET_WRITE_VERBS: [&str; 2] = ["GetSecretValue", "PutSecretValue"];

/// The DynamoDB verbs a table reader issues (public readers get the same verbs, limited to
/// their leading keys). `tests/tests/routes.rs` checks them against the adapter code.
pub const READ_VERBS: [&str; 3] = ["GetItem", "Query", "BatchGetItem"];

/// The verbs a public reader may use on its `writes_keys` (the snapshot of stats::snapshot:
/// the lease is an update, the chunks are put and deleted).
pub const READ_MODEL_WRITE_VERBS: [&str; 3] = ["PutItem", "UpdateItem", "DeleteItem"];

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("one line");
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(word.to_owned());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

/// `functions/default-route/src/routes.rs`.
pub fn default_route_table(table: &Table) -> String {
    let mut out = String::new();
    out.push_str("// Generated from routes.toml by `make routes`: do not edit by hand.\n\n");
    out.push_str("/// Every canonical route: (method, path template, function).\n");
    // One line per route, as generated: rustfmt would re-wrap them and make the file stale.
    out.push_str("#[rustfmt::skip]\n");
    out.push_str("pub const ROUTES: &[(&str, &str, &str)] = &[\n");
    for route in table.routes() {
        let _ = writeln!(
            out,
            "    ({:?}, {:?}, {:?}),",
            route.method, route.path, route.function
        );
    }
    out.push_str("];\n");
    out
}

// ---- generated files ------------------------------------------------------------------------

/// A file that holds generated text, and how to produce that text.
pub struct Generated {
    pub file: &'static str,
    /// true: the whole file; false: the part between the marker lines.
    pub whole: bool,
    pub text: String,
}

pub fn generated(table: &Table) -> Vec<Generated> {
    vec![
        Generated {
            file: "Cargo.toml",
            whole: false,
            text: cargo_router(table),
        },
        Generated {
            file: "template.yaml",
            whole: false,
            text: template_functions(table),
        },
        Generated {
            file: "functions/default-route/src/routes.rs",
            whole: true,
            text: default_route_table(table),
        },
    ]
}

/// The file's content with `text` in place of its generated part; Err names the problem.
pub fn splice(current: &str, generated: &Generated) -> Result<String, String> {
    if generated.whole {
        return Ok(generated.text.clone());
    }
    let begin = current
        .find(BEGIN)
        .ok_or_else(|| format!("{}: no line {BEGIN:?}", generated.file))?;
    let after_begin = begin + BEGIN.len() + 1;
    let end = current[after_begin..]
        .find(END)
        .map(|i| i + after_begin)
        .ok_or_else(|| format!("{}: no line {END:?} after the BEGIN line", generated.file))?;
    Ok(format!(
        "{}{}{}",
        &current[..after_begin],
        generated.text,
        &current[end..]
    ))
}
