//! The route table `routes.toml` is the one source of the routes (see `dex_tests::routes`).
//! These fast tests (no stack needed) fail when what is generated from it is stale, and check
//! what stays hand-written against it: `openapi.yaml` (canonical paths only), the function
//! directories, the sample events in `events/` and their README table, and the IAM policies
//! against the DynamoDB verbs the code issues.
//!
//! `make routes` rewrites the generated files (`DEX_WRITE_ROUTES=1` on this test binary).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use dex_tests::routes::{
    self, DEFAULT_ROUTE_FUNCTION, READ_VERBS, Table, logical_id, read, workspace_root,
};
use serde_json::Value;
use serde_yaml::Value as Yaml;

/// `(METHOD, path)`, e.g. `("GET", "/api/admin/accounts/{accountId}")`.
type Route = (String, String);

fn show(route: &Route) -> String {
    format!("{} {}", route.0, route.1)
}

/// Lines naming what is in one set and not in the other.
fn set_differences<T: Ord + Debug>(
    a_name: &str,
    a: &BTreeSet<T>,
    b_name: &str,
    b: &BTreeSet<T>,
    fmt: impl Fn(&T) -> String,
) -> Vec<String> {
    let mut out = Vec::new();
    for x in a.difference(b) {
        out.push(format!("in {a_name} but not in {b_name}: {}", fmt(x)));
    }
    for x in b.difference(a) {
        out.push(format!("in {b_name} but not in {a_name}: {}", fmt(x)));
    }
    out
}

fn fail_if_any(what: &str, problems: Vec<String>) {
    if !problems.is_empty() {
        panic!("{what}:\n  - {}\n", problems.join("\n  - "));
    }
}

/// route -> function, from the table.
fn table_routes(table: &Table) -> BTreeMap<Route, String> {
    table
        .routes()
        .into_iter()
        .map(|r| ((r.method, r.path), r.function))
        .collect()
}

// ---- template.yaml --------------------------------------------------------------------

/// A CloudFormation short-form tag (`!Ref X`) as (tag without `!`, value).
fn tagged(value: &Yaml) -> Option<(String, &Yaml)> {
    match value {
        Yaml::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_owned(),
            &t.value,
        )),
        _ => None,
    }
}

/// `X` for `!Ref X` and for the long form `{Ref: X}`.
fn ref_target(value: &Yaml) -> Option<&str> {
    if let Some((tag, inner)) = tagged(value) {
        return (tag == "Ref").then(|| inner.as_str()).flatten();
    }
    value.get("Ref").and_then(Yaml::as_str)
}

struct TemplateFunction {
    logical_id: String,
    /// `Metadata.BuildProperties.Binary`: the function (= package = binary) name.
    name: Option<String>,
    routes: Vec<Route>,
    /// The template parameter of its `Schedule` event (`Schedule: !Ref X`), if it has one.
    schedule: Option<String>,
}

struct Template {
    functions: Vec<TemplateFunction>,
    problems: Vec<String>,
}

fn template() -> Template {
    let doc: Yaml = serde_yaml::from_str(&read("template.yaml")).expect("template.yaml is YAML");
    let resources = doc
        .get("Resources")
        .and_then(Yaml::as_mapping)
        .expect("template.yaml has Resources");
    let global_code_uri = doc
        .get("Globals")
        .and_then(|g| g.get("Function"))
        .and_then(|f| f.get("CodeUri"))
        .and_then(Yaml::as_str);

    let mut problems = Vec::new();
    let http_apis: Vec<&str> = resources
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Yaml::as_str) == Some("AWS::Serverless::HttpApi"))
        .filter_map(|(id, _)| id.as_str())
        .collect();
    if http_apis != ["DexApi"] {
        problems.push(format!(
            "expected exactly one AWS::Serverless::HttpApi named DexApi, found {http_apis:?}"
        ));
    }

    let mut functions = Vec::new();
    for (id, resource) in resources {
        if resource.get("Type").and_then(Yaml::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let logical_id = id.as_str().unwrap_or("?").to_owned();
        let metadata = resource.get("Metadata");
        if metadata
            .and_then(|m| m.get("BuildMethod"))
            .and_then(Yaml::as_str)
            != Some("rust-cargolambda")
        {
            problems.push(format!(
                "{logical_id}: Metadata.BuildMethod is not rust-cargolambda"
            ));
        }
        let name = metadata
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Yaml::as_str)
            .map(str::to_owned);
        if name.is_none() {
            problems.push(format!("{logical_id}: no Metadata.BuildProperties.Binary"));
        }
        let properties = resource.get("Properties");
        let code_uri = properties
            .and_then(|p| p.get("CodeUri"))
            .and_then(Yaml::as_str)
            .or(global_code_uri);
        if code_uri != Some(".") {
            problems.push(format!(
                "{logical_id}: CodeUri is {code_uri:?}, expected \".\" (the workspace root)"
            ));
        }

        let mut routes = Vec::new();
        let mut schedule = None;
        let events = properties
            .and_then(|p| p.get("Events"))
            .and_then(Yaml::as_mapping);
        for (event_id, event) in events.into_iter().flatten() {
            let event_id = event_id.as_str().unwrap_or("?");
            let kind = event.get("Type").and_then(Yaml::as_str);
            if kind == Some("Schedule") {
                let expression = event.get("Properties").and_then(|p| p.get("Schedule"));
                match expression.and_then(ref_target) {
                    Some(parameter) if schedule.is_none() => schedule = Some(parameter.to_owned()),
                    _ => problems.push(format!(
                        "{logical_id}.{event_id}: one Schedule event, its Schedule a !Ref of a parameter"
                    )),
                }
                continue;
            }
            if kind != Some("HttpApi") {
                problems.push(format!(
                    "{logical_id}.{event_id}: event type {kind:?}, expected HttpApi"
                ));
                continue;
            }
            let props = event.get("Properties");
            let api = props.and_then(|p| p.get("ApiId")).and_then(ref_target);
            if api != Some("DexApi") {
                problems.push(format!("{logical_id}.{event_id}: ApiId is not !Ref DexApi"));
            }
            let path = props.and_then(|p| p.get("Path")).and_then(Yaml::as_str);
            let method = props.and_then(|p| p.get("Method")).and_then(Yaml::as_str);
            match (method, path) {
                (Some(method), Some(path)) => {
                    routes.push((method.to_ascii_uppercase(), path.to_owned()))
                }
                _ => problems.push(format!(
                    "{logical_id}.{event_id}: Path and Method must be plain strings"
                )),
            }
        }
        if routes.is_empty() == schedule.is_none() {
            problems.push(format!(
                "{logical_id}: HttpApi events or one Schedule event (not both, not neither)"
            ));
        }
        if let Some(parameter) = &schedule
            && doc
                .get("Parameters")
                .and_then(|p| p.get(parameter.as_str()))
                .is_none()
        {
            problems.push(format!(
                "{logical_id}: its schedule {parameter} is no template parameter"
            ));
        }
        functions.push(TemplateFunction {
            logical_id,
            name,
            routes,
            schedule,
        });
    }
    Template {
        functions,
        problems,
    }
}

// ---- openapi.yaml ---------------------------------------------------------------------

const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn openapi_routes() -> BTreeSet<Route> {
    let doc: Yaml = serde_yaml::from_str(&read("openapi.yaml")).expect("openapi.yaml is YAML");
    let paths = doc
        .get("paths")
        .and_then(Yaml::as_mapping)
        .expect("openapi.yaml has paths");
    let mut routes = BTreeSet::new();
    for (path, item) in paths {
        let path = path.as_str().expect("openapi path keys are strings");
        for (key, _) in item.as_mapping().into_iter().flatten() {
            // Other keys of a path item (parameters, summary, ...) are not operations.
            if let Some(method) = key.as_str().filter(|k| HTTP_METHODS.contains(k)) {
                routes.insert((method.to_ascii_uppercase(), path.to_owned()));
            }
        }
    }
    routes
}

// ---- the tests ------------------------------------------------------------------------

/// Every function may answer 503 (a dependency it cannot reach, docs/decisions.md §2), so
/// every operation documents it: the fuzzing refuses undocumented statuses.
#[test]
fn every_operation_documents_the_unavailable_answer() {
    let doc: Yaml = serde_yaml::from_str(&read("openapi.yaml")).expect("openapi.yaml is YAML");
    let mut missing = Vec::new();
    for (path, item) in doc["paths"].as_mapping().expect("openapi.yaml has paths") {
        for (method, operation) in item.as_mapping().into_iter().flatten() {
            let Some(method) = method.as_str().filter(|m| HTTP_METHODS.contains(m)) else {
                continue;
            };
            if operation["responses"].get("503").is_none() {
                missing.push(format!("{method} {}", path.as_str().unwrap_or_default()));
            }
        }
    }
    fail_if_any("openapi.yaml operations without a 503 answer", missing);
}

#[test]
fn the_generated_files_are_fresh() {
    let table = Table::load();
    let write = std::env::var_os("DEX_WRITE_ROUTES").is_some();
    let mut stale = Vec::new();
    for generated in routes::generated(&table) {
        let path = workspace_root().join(generated.file);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        let wanted = routes::splice(&current, &generated).unwrap_or_else(|e| panic!("{e}"));
        if wanted != current {
            if write {
                std::fs::write(&path, &wanted)
                    .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
                eprintln!("wrote {}", generated.file);
            } else {
                stale.push(format!("{} is stale", generated.file));
            }
        }
    }
    fail_if_any(
        "routes.toml changed but what is generated from it did not: run `make routes`",
        stale,
    );
}

/// The Cargo.toml router as `cargo lambda watch` reads it: (path, method or "*") -> function.
fn cargo_router() -> BTreeMap<(String, String), String> {
    let manifest: toml::Table =
        toml::from_str(&read("Cargo.toml")).expect("root Cargo.toml parses");
    let table = ["workspace", "metadata", "lambda", "watch", "router"]
        .iter()
        .try_fold(&manifest, |t, key| t.get(*key).and_then(|v| v.as_table()))
        .expect("root Cargo.toml has a [workspace.metadata.lambda.watch.router] table");
    let mut out = BTreeMap::new();
    for (path, entries) in table {
        if let Some(function) = entries.as_str() {
            out.insert((path.clone(), "*".to_owned()), function.to_owned());
            continue;
        }
        for entry in entries.as_array().expect("an array of {method, function}") {
            let method = entry["method"]
                .as_str()
                .expect("a method")
                .to_ascii_uppercase();
            let function = entry["function"].as_str().expect("a function").to_owned();
            assert!(
                out.insert((path.clone(), method.clone()), function)
                    .is_none(),
                "the router maps {method} {path} twice"
            );
        }
    }
    out
}

#[test]
fn the_router_template_and_openapi_serve_the_tables_routes() {
    let table = Table::load();
    let wanted = table_routes(&table);
    let wanted_set: BTreeSet<Route> = wanted.keys().cloned().collect();
    let mut problems = Vec::new();

    // The local router: canonical routes to their functions, all else to the default route.
    let router = cargo_router();
    let mut router_routes = BTreeMap::new();
    for ((path, method), function) in &router {
        if function != DEFAULT_ROUTE_FUNCTION {
            router_routes.insert((method.clone(), path.clone()), function.clone());
        }
    }
    for catch_all in ["/", "/{*path}"] {
        if router
            .get(&(catch_all.to_owned(), "*".to_owned()))
            .map(String::as_str)
            != Some(DEFAULT_ROUTE_FUNCTION)
        {
            problems.push(format!(
                "the router does not send {catch_all} to {DEFAULT_ROUTE_FUNCTION}"
            ));
        }
    }
    if router_routes != wanted {
        problems.push("the Cargo.toml router's canonical routes differ from routes.toml".into());
    }

    // The template: each canonical route on its function, and the $default route.
    let template = template();
    problems.extend(template.problems);
    let mut template_routes = BTreeMap::new();
    for function in &template.functions {
        let name = function.name.clone().unwrap_or_default();
        for route in &function.routes {
            if let Some(previous) = template_routes.insert(route.clone(), name.clone()) {
                problems.push(format!(
                    "template.yaml routes {} twice ({previous}, {name})",
                    show(route)
                ));
            }
        }
    }
    let default = ("ANY".to_owned(), "$default".to_owned());
    if template_routes.remove(&default).as_deref() != Some(DEFAULT_ROUTE_FUNCTION) {
        problems.push(format!(
            "template.yaml has no ANY $default route to {DEFAULT_ROUTE_FUNCTION}"
        ));
    }
    let template_set: BTreeSet<Route> = template_routes.keys().cloned().collect();
    problems.extend(set_differences(
        "routes.toml",
        &wanted_set,
        "template.yaml",
        &template_set,
        show,
    ));
    for (route, function) in &wanted {
        if let Some(other) = template_routes.get(route).filter(|f| *f != function) {
            problems.push(format!(
                "{} goes to {function} in routes.toml but to {other} in template.yaml",
                show(route)
            ));
        }
    }
    let names: BTreeSet<String> = template
        .functions
        .iter()
        .filter_map(|f| f.name.clone())
        .collect();
    let table_names: BTreeSet<String> = table.function_names().into_iter().collect();
    problems.extend(set_differences(
        "routes.toml",
        &table_names,
        "template.yaml",
        &names,
        |n| n.clone(),
    ));
    for function in &template.functions {
        let wanted_schedule = function
            .name
            .as_ref()
            .and_then(|n| table.functions.get(n))
            .and_then(|f| f.schedule.clone());
        if function.name.as_deref() != Some(DEFAULT_ROUTE_FUNCTION)
            && function.schedule != wanted_schedule
        {
            problems.push(format!(
                "{}: template schedule {:?}, routes.toml says {wanted_schedule:?}",
                function.logical_id, function.schedule
            ));
        }
        if let Some(name) = &function.name
            && function.logical_id != logical_id(name)
        {
            problems.push(format!(
                "{}: expected logical id {}",
                function.logical_id,
                logical_id(name)
            ));
        }
    }

    // openapi.yaml: the canonical routes, no alias.
    let openapi = openapi_routes();
    problems.extend(set_differences(
        "routes.toml",
        &wanted_set,
        "openapi.yaml",
        &openapi,
        show,
    ));

    fail_if_any("the routes disagree with routes.toml", problems);
}

/// Every directory under functions/ is a function of the table (or the default route), and
/// its package and binary carry the function's name.
#[test]
fn every_function_directory_is_in_the_table_and_builds_its_binary() {
    let table = Table::load();
    let wanted: BTreeSet<String> = table.function_names().into_iter().collect();
    let functions_dir = workspace_root().join("functions");
    let mut dirs = BTreeSet::new();
    for entry in std::fs::read_dir(&functions_dir)
        .expect("functions/")
        .flatten()
    {
        if entry.path().is_dir() {
            dirs.insert(entry.file_name().to_string_lossy().into_owned());
        }
    }
    let mut problems = set_differences("functions/", &dirs, "routes.toml", &wanted, |n| {
        format!("functions/{n}")
    });
    for name in &dirs {
        let dir = functions_dir.join(name);
        let Ok(text) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            problems.push(format!("functions/{name} has no Cargo.toml"));
            continue;
        };
        let manifest: toml::Table = match toml::from_str(&text) {
            Ok(m) => m,
            Err(e) => {
                problems.push(format!("functions/{name}/Cargo.toml does not parse: {e}"));
                continue;
            }
        };
        let package = manifest
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str());
        if package != Some(name.as_str()) {
            problems.push(format!(
                "functions/{name}: package name is {package:?}, expected {name:?}"
            ));
        }
        let bins: Vec<&str> = manifest
            .get("bin")
            .and_then(|b| b.as_array())
            .into_iter()
            .flatten()
            .filter_map(|b| b.get("name").and_then(|n| n.as_str()))
            .collect();
        let has_binary = if bins.is_empty() {
            dir.join("src/main.rs").is_file()
        } else {
            bins.contains(&name.as_str())
        };
        if !has_binary {
            problems.push(format!("functions/{name} builds no binary named {name}"));
        }
    }
    fail_if_any("functions/ is out of step with routes.toml", problems);
}

// ---- the sample events ------------------------------------------------------------------

fn sample_event(function: &str) -> Result<Value, String> {
    let file = format!("events/{function}.json");
    let text = std::fs::read_to_string(workspace_root().join(&file))
        .map_err(|e| format!("{file}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{file} is not JSON: {e}"))
}

/// The problems of one function's sample event: it must be an API Gateway v2 request that
/// routes to the function (one of its canonical routes, or for the default route an alias).
fn event_problems(table: &Table, function: &str) -> Vec<String> {
    let file = format!("events/{function}.json");
    let event = match sample_event(function) {
        Ok(e) => e,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    if table
        .functions
        .get(function)
        .is_some_and(|f| f.schedule.is_some())
    {
        // What an EventBridge schedule sends.
        if event["detail-type"] != "Scheduled Event" || event["source"] != "aws.events" {
            problems.push(format!(
                "{file}: a scheduled function's event has detail-type \"Scheduled Event\" and source \"aws.events\""
            ));
        }
        return problems;
    }
    if let Err(e) = serde_json::from_value::<
        lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest,
    >(event.clone())
    {
        problems.push(format!(
            "{file} does not parse as an API Gateway v2 request: {e}"
        ));
    }
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let (route_key, raw_path, method) = (
        s(&event["routeKey"]),
        s(&event["rawPath"]),
        s(&event["requestContext"]["http"]["method"]),
    );
    if event["version"] != "2.0" || event["isBase64Encoded"] != false {
        problems.push(format!(
            "{file}: version must be \"2.0\" and isBase64Encoded false"
        ));
    }
    if event["requestContext"]["routeKey"] != event["routeKey"] {
        problems.push(format!(
            "{file}: requestContext.routeKey differs from routeKey"
        ));
    }
    if s(&event["requestContext"]["http"]["path"]) != raw_path {
        problems.push(format!(
            "{file}: requestContext.http.path differs from rawPath"
        ));
    }
    if let Some(body) = event["body"].as_str() {
        if event["headers"]["content-length"].as_str() != Some(body.len().to_string().as_str()) {
            problems.push(format!(
                "{file}: content-length is not the body's length ({})",
                body.len()
            ));
        }
        if serde_json::from_str::<Value>(body).is_err() {
            problems.push(format!("{file}: the body is not JSON"));
        }
    }
    if function == DEFAULT_ROUTE_FUNCTION {
        // An alias: API Gateway's $default route with a path that normalises to a route.
        let canonical = format!(
            "/{}",
            raw_path
                .split('/')
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join("/")
        );
        if route_key != "$default" || canonical == raw_path {
            problems.push(format!(
                "{file}: must be a $default event for an alias path (//x or /x/)"
            ));
        }
        if !table
            .routes()
            .iter()
            .any(|r| r.method == method && path_params(&r.path, &canonical).is_some())
        {
            problems.push(format!(
                "{file}: {method} {raw_path} is no alias of a route"
            ));
        }
        return problems;
    }
    let Some(route) = table.routes().into_iter().find(|r| r.key() == route_key) else {
        problems.push(format!(
            "{file}: routeKey {route_key:?} is not a route of routes.toml"
        ));
        return problems;
    };
    if route.function != function {
        problems.push(format!(
            "{file}: {route_key} is routed to {}, not {function}",
            route.function
        ));
    }
    if method != route.method {
        problems.push(format!(
            "{file}: requestContext.http.method is {method}, the route's {}",
            route.method
        ));
    }
    match path_params(&route.path, &raw_path) {
        None => problems.push(format!(
            "{file}: rawPath {raw_path} does not match {}",
            route.path
        )),
        Some(params) => {
            let given: BTreeMap<String, String> = event["pathParameters"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), s(v))).collect())
                .unwrap_or_default();
            if given != params {
                problems.push(format!(
                    "{file}: pathParameters {given:?}, the path says {params:?}"
                ));
            }
        }
    }
    problems
}

fn path_params(template: &str, path: &str) -> Option<BTreeMap<String, String>> {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    if t.len() != p.len() {
        return None;
    }
    let mut params = BTreeMap::new();
    for (t, p) in t.iter().zip(&p) {
        match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            Some(name) if !p.is_empty() => {
                params.insert(name.to_owned(), (*p).to_owned());
            }
            _ if t == p => {}
            _ => return None,
        }
    }
    Some(params)
}

#[test]
fn every_function_has_a_sample_event_that_routes_to_it() {
    let table = Table::load();
    let mut problems = Vec::new();
    for function in table.function_names() {
        problems.extend(event_problems(&table, &function));
    }
    let names: BTreeSet<String> = table.function_names().into_iter().collect();
    for entry in std::fs::read_dir(workspace_root().join("events"))
        .expect("events/")
        .flatten()
    {
        let file = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = file.strip_suffix(".json")
            && !names.contains(stem)
        {
            problems.push(format!("events/{file} belongs to no function"));
        }
    }
    fail_if_any("the sample events", problems);
}

#[test]
fn the_events_readme_lists_every_event_with_its_route() {
    let table = Table::load();
    let mut rows: BTreeMap<String, String> = routes::events_readme()
        .into_iter()
        .map(|row| (row.function, row.route))
        .collect();
    let mut problems = Vec::new();
    for function in table.function_names() {
        let Some(route) = rows.remove(&function) else {
            problems.push(format!("events/README.md has no row for `{function}.json`"));
            continue;
        };
        let Ok(event) = sample_event(&function) else {
            continue;
        };
        if let Some(parameter) = table
            .functions
            .get(&function)
            .and_then(|f| f.schedule.as_ref())
        {
            if route != format!("schedule {parameter}") {
                problems.push(format!(
                    "events/README.md shows `{route}` for {function}.json, a function invoked by `schedule {parameter}`"
                ));
            }
            continue;
        }
        let method = event["requestContext"]["http"]["method"]
            .as_str()
            .unwrap_or_default();
        let path = event["rawPath"].as_str().unwrap_or_default();
        let shown = route.split('?').next().unwrap_or_default();
        if shown != format!("{method} {path}")
            && shown != event["routeKey"].as_str().unwrap_or_default()
        {
            problems.push(format!("events/README.md shows `{route}` for {function}.json, whose event is {method} {path}"));
        }
    }
    for file in rows.keys() {
        problems.push(format!(
            "events/README.md lists `{file}.json`, which is no function's event"
        ));
    }
    fail_if_any("events/README.md is out of step", problems);
}

// ---- IAM against the code -----------------------------------------------------------------

/// The adapter of the public read models' snapshots: its writes are granted to the public
/// readers on their own items (`writes_keys`), not through DexTableWriterPolicy.
const READ_MODEL_ADAPTER: &str = "snapshot.rs";

/// The DynamoDB verbs (IAM action names) the adapter code issues, found in the Rust files of
/// shared/dex-aws/src (the adapters) that use the SDK. `schema.rs` (table creation) is dexctl's,
/// never a function's. `read_model`: only the read models' adapter, else every other file.
fn verbs_in_code(read_model: bool) -> BTreeSet<String> {
    let calls = [
        (".put_item()", "PutItem"),
        ("Put::builder()", "PutItem"),
        (".update_item()", "UpdateItem"),
        ("Update::builder()", "UpdateItem"),
        (".delete_item()", "DeleteItem"),
        ("Delete::builder()", "DeleteItem"),
        ("ConditionCheck::builder()", "ConditionCheckItem"),
        (".get_item()", "GetItem"),
        ("Get::builder()", "GetItem"),
        (".query()", "Query"),
        (".scan()", "Scan"),
        (".batch_get_item()", "BatchGetItem"),
        (".batch_write_item()", "BatchWriteItem"),
    ];
    let mut verbs = BTreeSet::new();
    let mut stack = vec![workspace_root().join("shared/dex-aws/src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs")
                || path.file_name().is_some_and(|n| n == "schema.rs")
                || path.file_name().is_some_and(|n| n == READ_MODEL_ADAPTER) != read_model
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if !text.contains("aws_sdk_dynamodb") {
                continue;
            }
            for (call, verb) in calls {
                if text.contains(call) {
                    verbs.insert(verb.to_owned());
                }
            }
        }
    }
    verbs
}

/// The `dynamodb:` actions of a managed policy resource of the template.
fn managed_policy_verbs(doc: &Yaml, id: &str) -> BTreeSet<String> {
    let statements = doc["Resources"][id]["Properties"]["PolicyDocument"]["Statement"]
        .as_sequence()
        .unwrap_or_else(|| panic!("template.yaml has no managed policy {id}"));
    statements
        .iter()
        .flat_map(|s| s["Action"].as_sequence().cloned().unwrap_or_default())
        .filter_map(|a| {
            a.as_str()
                .and_then(|a| a.strip_prefix("dynamodb:"))
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn the_table_policies_grant_exactly_the_verbs_the_code_issues() {
    let code = verbs_in_code(false);
    let read_model = verbs_in_code(true);
    assert!(
        code.contains("Query"),
        "found no DynamoDB calls in shared/dex-aws/src: {code:?}"
    );
    let reads: BTreeSet<String> = READ_VERBS.iter().map(|v| v.to_string()).collect();
    let code_reads: BTreeSet<String> = code
        .iter()
        .filter(|v| {
            ![
                "PutItem",
                "UpdateItem",
                "DeleteItem",
                "ConditionCheckItem",
                "BatchWriteItem",
                "Scan",
            ]
            .contains(&v.as_str())
        })
        .cloned()
        .collect();
    let doc: Yaml = serde_yaml::from_str(&read("template.yaml")).expect("template.yaml is YAML");
    let mut problems = set_differences(
        "the code",
        &code_reads,
        "the read verbs (READ_VERBS)",
        &reads,
        |v| v.clone(),
    );
    problems.extend(set_differences(
        "the code",
        &code_reads,
        "DexTableReaderPolicy",
        &managed_policy_verbs(&doc, "DexTableReaderPolicy"),
        |v| v.clone(),
    ));
    problems.extend(set_differences(
        "the code",
        &code,
        "DexTableWriterPolicy",
        &managed_policy_verbs(&doc, "DexTableWriterPolicy"),
        |v| v.clone(),
    ));
    let read_model_allowed: BTreeSet<String> = READ_VERBS
        .iter()
        .chain(routes::READ_MODEL_WRITE_VERBS.iter())
        .map(|v| v.to_string())
        .collect();
    for verb in read_model.difference(&read_model_allowed) {
        problems.push(format!(
            "the read models' adapter issues {verb}, which public readers are not granted"
        ));
    }
    for verb in routes::READ_MODEL_WRITE_VERBS {
        if !read_model.contains(verb) {
            problems.push(format!(
                "public readers are granted {verb} on their read model, which no code issues"
            ));
        }
    }
    if code.contains("Scan") {
        problems.push("the code scans the table: no function may (README, IAM)".into());
    }
    // No function grants itself table verbs except through these policies or, for public
    // readers, the read verbs limited by dynamodb:LeadingKeys.
    let text = read("template.yaml");
    for line in text.lines().map(str::trim) {
        if let Some(verb) = line.strip_prefix("- dynamodb:")
            && !code.contains(verb)
            && !read_model.contains(verb)
        {
            problems.push(format!(
                "template.yaml grants dynamodb:{verb}, which no code issues"
            ));
        }
    }
    fail_if_any("IAM and the DynamoDB calls of the code disagree", problems);
}

#[test]
fn public_readers_read_only_their_leading_keys() {
    let table = Table::load();
    let doc: Yaml = serde_yaml::from_str(&read("template.yaml")).expect("template.yaml is YAML");
    let mut problems = Vec::new();
    for (name, f) in table
        .functions
        .iter()
        .filter(|(_, f)| f.table == routes::TableAccess::Public)
    {
        let policies = doc["Resources"][logical_id(name).as_str()]["Properties"]["Policies"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        let statements: Vec<&Yaml> = policies
            .iter()
            .filter_map(|p| p["Statement"].as_sequence())
            .flatten()
            .collect();
        let limited_to = |statement: &Yaml, keys: &[String]| {
            statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
                .as_sequence()
                .is_some_and(|found| {
                    found
                        .iter()
                        .filter_map(Yaml::as_str)
                        .eq(keys.iter().map(String::as_str))
                })
        };
        let verbs = |statement: &Yaml| -> Vec<String> {
            statement["Action"]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter_map(Yaml::as_str)
                .map(str::to_owned)
                .collect()
        };
        let dynamodb = |names: &[&str]| -> Vec<String> {
            names.iter().map(|v| format!("dynamodb:{v}")).collect()
        };
        let expected_statements = if f.writes_keys.is_empty() { 1 } else { 2 };
        let ok = statements.len() == expected_statements
            && limited_to(statements[0], &f.leading_keys)
            && verbs(statements[0]) == dynamodb(&routes::READ_VERBS)
            && (f.writes_keys.is_empty()
                || (limited_to(statements[1], &f.writes_keys)
                    && verbs(statements[1]) == dynamodb(&routes::READ_MODEL_WRITE_VERBS)
                    && f.writes_keys.iter().all(|k| f.leading_keys.contains(k))))
            && policies.len() == 1 + f.secrets.len();
        if !ok {
            problems.push(format!(
                "{name}: expected the read verbs limited to {:?} and the read model's writes limited to {:?}",
                f.leading_keys, f.writes_keys
            ));
        }
    }
    fail_if_any("public readers", problems);
}

// ---- Secrets Manager grants ---------------------------------------------------------------

/// `(action, secret)` pairs a function's template policies grant on Secrets Manager; the
/// secret is a template logical id, or the cluster credentials' name pattern.
fn secret_grants(doc: &Yaml, function: &str) -> BTreeSet<(String, String)> {
    let policies = doc["Resources"][logical_id(function).as_str()]["Properties"]["Policies"]
        .as_sequence()
        .cloned()
        .unwrap_or_default();
    let mut grants = BTreeSet::new();
    for policy in &policies {
        if let Some(arn) = policy["AWSSecretsManagerGetSecretValuePolicy"]
            .get("SecretArn")
            .and_then(ref_target)
        {
            grants.insert(("GetSecretValue".to_owned(), arn.to_owned()));
        }
        for statement in policy["Statement"].as_sequence().into_iter().flatten() {
            let actions: Vec<&str> = match &statement["Action"] {
                Yaml::String(one) => vec![one.as_str()],
                many => many
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .filter_map(Yaml::as_str)
                    .collect(),
            };
            let resources: Vec<String> = match &statement["Resource"] {
                Yaml::Sequence(many) => many
                    .iter()
                    .map(|r| ref_target(r).map_or_else(|| format!("{r:?}"), str::to_owned))
                    .collect(),
                one => vec![ref_target(one).map_or_else(
                    || {
                        if format!("{one:?}").contains("/clusters/*") {
                            "clusters/*".to_owned()
                        } else {
                            format!("{one:?}")
                        }
                    },
                    str::to_owned,
                )],
            };
            for action in actions {
                if let Some(verb) = action.strip_prefix("secretsmanager:") {
                    for resource in &resources {
                        grants.insert((verb.to_owned(), resource.clone()));
                    }
                }
            }
        }
    }
    grants
}

/// Exactly what routes.toml declares, and the declaration follows the code: only the signer
/// (the function that logs in) reads the private keys and the first admin's password; every
/// function that verifies or publishes DEX tokens reads the public keys, and no other does.
#[test]
fn the_secret_policies_are_exactly_the_declared_ones_and_verifiers_read_only_public_keys() {
    let table = Table::load();
    let doc: Yaml = serde_yaml::from_str(&read("template.yaml")).expect("template.yaml is YAML");
    let mut problems = Vec::new();
    let id = |s: &str| {
        routes::secret_logical_id(s)
            .expect("known secret")
            .to_owned()
    };
    for (name, f) in &table.functions {
        let mut wanted = BTreeSet::new();
        for secret in &f.secrets {
            wanted.insert(("GetSecretValue".to_owned(), id(secret)));
        }
        for secret in &f.writes_secrets {
            for verb in routes::SECRET_WRITE_VERBS {
                wanted.insert((verb.to_owned(), id(secret)));
            }
        }
        if f.writes_cluster_credentials {
            for verb in ["CreateSecret", "PutSecretValue", "TagResource"] {
                wanted.insert((verb.to_owned(), "clusters/*".to_owned()));
            }
        }
        if f.reads_cluster_credentials {
            wanted.insert(("GetSecretValue".to_owned(), "clusters/*".to_owned()));
        }
        let granted = secret_grants(&doc, name);
        if granted != wanted {
            problems.push(format!(
                "{name}: the template grants {granted:?}, routes.toml declares {wanted:?}"
            ));
        }

        let source = read(&format!("functions/{name}/src/main.rs"));
        let signs = source.contains(".logins()");
        let verifies = signs
            || [
                ".authorize(",
                ".authenticate(",
                ".tokens()",
                ".registration()",
            ]
            .iter()
            .any(|call| source.contains(call));
        let all: Vec<&String> = f.secrets.iter().chain(&f.writes_secrets).collect();
        let has = |s: &str| all.iter().any(|x| x.as_str() == s);
        if has("signing-keys") != signs {
            problems.push(format!(
                "{name}: the private signing keys are for the signer only (signs: {signs})"
            ));
        }
        if signs && !f.writes_secrets.iter().any(|s| s == "signing-keys") {
            problems.push(format!(
                "{name}: the signer creates the first key: signing-keys goes in writes_secrets"
            ));
        }
        if has("first-admin") != signs {
            problems.push(format!(
                "{name}: the first admin's password is for the login function only"
            ));
        }
        if has("signing-keys-public") != verifies {
            problems.push(format!(
                "{name}: the public keys are for the functions that verify or publish DEX tokens (verifies: {verifies})"
            ));
        }
    }
    fail_if_any("Secrets Manager policies", problems);
}
