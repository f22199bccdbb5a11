//! The routes are defined three times: the `cargo lambda watch` router in the root
//! `Cargo.toml` (`[workspace.metadata.lambda.watch.router]`, the source of truth), the
//! HttpApi events of `template.yaml` (what API Gateway serves) and `openapi.yaml` (what
//! clients read). These tests keep them identical, and keep the functions in `functions/`
//! in step with the routes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::{Path, PathBuf};

use serde_yaml::Value as Yaml;

/// `(METHOD, path)`, e.g. `("GET", "/api/admin/accounts/{accountId}")`.
type Route = (String, String);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

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

// ---- the router (root Cargo.toml) -------------------------------------------------------

struct Router {
    /// route -> function
    routes: BTreeMap<Route, String>,
    problems: Vec<String>,
}

fn router() -> Router {
    let parsed = dex_tests::routes::parse_router(&read("Cargo.toml"))
        .unwrap_or_else(|e| panic!("root Cargo.toml: {e}"));
    let mut routes = BTreeMap::new();
    let mut problems = parsed.problems;
    for entry in parsed.entries {
        let route = (entry.method, entry.path);
        if let Some(previous) = routes.insert(route.clone(), entry.function.clone()) {
            problems.push(format!(
                "router maps {} twice ({previous}, {})",
                show(&route),
                entry.function
            ));
        }
    }
    Router { routes, problems }
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
        let events = properties
            .and_then(|p| p.get("Events"))
            .and_then(Yaml::as_mapping);
        for (event_id, event) in events.into_iter().flatten() {
            let event_id = event_id.as_str().unwrap_or("?");
            let kind = event.get("Type").and_then(Yaml::as_str);
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
        if routes.is_empty() {
            problems.push(format!("{logical_id}: no HttpApi events"));
        }
        functions.push(TemplateFunction {
            logical_id,
            name,
            routes,
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

#[test]
fn router_template_and_openapi_define_the_same_routes() {
    let router = router();
    let template = template();
    let openapi = openapi_routes();

    let mut problems = router.problems;
    problems.extend(template.problems);
    assert!(!router.routes.is_empty(), "the router table is empty");

    // route -> function, as the template defines it (a route defined twice is a problem).
    let mut template_routes: BTreeMap<Route, String> = BTreeMap::new();
    for function in &template.functions {
        let name = function
            .name
            .clone()
            .unwrap_or_else(|| format!("<{}>", function.logical_id));
        for route in &function.routes {
            if let Some(previous) = template_routes.insert(route.clone(), name.clone()) {
                problems.push(format!(
                    "template.yaml routes {} twice ({previous}, {name})",
                    show(route)
                ));
            }
        }
    }
    let mut names = BTreeMap::<&str, &str>::new();
    for function in &template.functions {
        if let Some(name) = &function.name
            && let Some(other) = names.insert(name, &function.logical_id)
        {
            problems.push(format!(
                "template.yaml builds binary {name} twice ({other}, {})",
                function.logical_id
            ));
        }
    }

    let router_set: BTreeSet<Route> = router.routes.keys().cloned().collect();
    let template_set: BTreeSet<Route> = template_routes.keys().cloned().collect();
    problems.extend(set_differences(
        "the Cargo.toml router",
        &router_set,
        "template.yaml",
        &template_set,
        show,
    ));
    problems.extend(set_differences(
        "the Cargo.toml router",
        &router_set,
        "openapi.yaml",
        &openapi,
        show,
    ));
    problems.extend(set_differences(
        "template.yaml",
        &template_set,
        "openapi.yaml",
        &openapi,
        show,
    ));

    for (route, function) in &router.routes {
        if let Some(in_template) = template_routes.get(route)
            && in_template != function
        {
            problems.push(format!(
                "{} goes to {function} in the Cargo.toml router but to {in_template} in template.yaml",
                show(route)
            ));
        }
    }

    fail_if_any(
        "the Cargo.toml router, template.yaml and openapi.yaml disagree",
        problems,
    );
}

/// Every directory under functions/ is a routed function, and every routed function (router
/// or template) has its directory, whose package and binary carry the function's name.
#[test]
fn every_function_directory_is_routed_and_every_route_has_its_function() {
    let router_functions: BTreeSet<String> = router().routes.into_values().collect();
    let template_functions: BTreeSet<String> = template()
        .functions
        .into_iter()
        .filter_map(|f| f.name)
        .collect();

    let functions_dir = root().join("functions");
    let mut dirs = BTreeSet::new();
    if let Ok(entries) = std::fs::read_dir(&functions_dir) {
        for entry in entries.flatten() {
            if entry.path().is_dir() {
                dirs.insert(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }

    let mut problems = Vec::new();
    let as_dir = |name: &String| format!("functions/{name}");
    problems.extend(set_differences(
        "functions/",
        &dirs,
        "the Cargo.toml router",
        &router_functions,
        as_dir,
    ));
    problems.extend(set_differences(
        "functions/",
        &dirs,
        "template.yaml",
        &template_functions,
        as_dir,
    ));

    for name in &dirs {
        let dir = functions_dir.join(name);
        let manifest_path = dir.join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest_path) else {
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

    fail_if_any("functions/ is out of step with the routes", problems);
}
