//! API Gateway throttling (README "Throttling", issue 11 §1), checked on the files, no stack:
//! every throttle routes.toml names is a pair of template parameters with sane defaults, every
//! route event of template.yaml carries its function's throttle, the costly unauthenticated
//! routes are tighter than the API's default, the `$default` route (every alias) is as tight
//! as the tightest of them, and POST /stats/report sits above the design point.

use dex_tests::routes::{Table, logical_id, read};
use serde_yaml::Value as Yaml;

/// 100,000 HATs reporting once a minute (hat-side: batches of 100 items or 60 s).
const STATS_DESIGN_POINT_PER_SEC: f64 = 100_000.0 / 60.0;

fn doc() -> Yaml {
    serde_yaml::from_str(&read("template.yaml")).expect("template.yaml is YAML")
}

/// The default of a template parameter; panics naming it when missing or not a number.
fn default_of(doc: &Yaml, parameter: &str) -> f64 {
    let p = &doc["Parameters"][parameter];
    assert_eq!(
        p["Type"].as_str(),
        Some("Number"),
        "template.yaml: parameter {parameter} missing or not a Number"
    );
    assert!(
        p["MinValue"].as_f64().is_some_and(|m| m >= 1.0),
        "{parameter}: MinValue 1 at least (0 would shut the route)"
    );
    p["Default"]
        .as_f64()
        .unwrap_or_else(|| panic!("{parameter} has no numeric Default"))
}

/// (rate, burst) defaults of a throttle name.
fn limits(doc: &Yaml, name: &str) -> (f64, f64) {
    (
        default_of(doc, &format!("{name}ThrottleRate")),
        default_of(doc, &format!("{name}ThrottleBurst")),
    )
}

/// The `!Ref` target of a YAML value (short form only, as the generator writes it).
fn ref_of(value: &Yaml) -> Option<String> {
    match value {
        Yaml::Tagged(t) if t.tag == "Ref" => t.value.as_str().map(str::to_owned),
        _ => None,
    }
}

/// The RouteSettings throttle of every HttpApi event of a function: (event id, name).
fn event_throttles(doc: &Yaml, function: &str) -> Vec<(String, Option<String>)> {
    let events = doc["Resources"][logical_id(function).as_str()]["Properties"]["Events"]
        .as_mapping()
        .unwrap_or_else(|| panic!("{function} has no Events in template.yaml"));
    events
        .iter()
        .map(|(id, event)| {
            let settings = &event["Properties"]["RouteSettings"];
            let rate = ref_of(&settings["ThrottlingRateLimit"]);
            let burst = ref_of(&settings["ThrottlingBurstLimit"]);
            let name = rate.as_deref().and_then(|r| r.strip_suffix("ThrottleRate"));
            assert_eq!(
                burst.as_deref(),
                name.map(|n| format!("{n}ThrottleBurst")).as_deref(),
                "{function} {id:?}: rate and burst name different throttles"
            );
            (
                id.as_str().unwrap_or_default().to_owned(),
                name.map(str::to_owned),
            )
        })
        .collect()
}

#[test]
fn every_route_carries_its_throttle_and_the_api_has_a_default() {
    let table = Table::load();
    let doc = doc();
    let settings = &doc["Resources"]["DexApi"]["Properties"]["DefaultRouteSettings"];
    assert_eq!(
        ref_of(&settings["ThrottlingRateLimit"]).as_deref(),
        Some("ApiThrottleRate")
    );
    assert_eq!(
        ref_of(&settings["ThrottlingBurstLimit"]).as_deref(),
        Some("ApiThrottleBurst")
    );
    limits(&doc, "Api");
    for (name, f) in &table.functions {
        for (event, throttle) in event_throttles(&doc, name) {
            assert_eq!(
                throttle, f.throttle,
                "{name} {event}: not routes.toml's throttle"
            );
        }
        if let Some(t) = &f.throttle {
            limits(&doc, t);
        }
    }
    // The $default route's throttle is the API's, under the route's own key.
    let default_route = &doc["Resources"]["DexApi"]["Properties"]["RouteSettings"]["$default"];
    let rate = ref_of(&default_route["ThrottlingRateLimit"]).expect("$default throttled");
    let name = rate
        .strip_suffix("ThrottleRate")
        .expect("a <Name>ThrottleRate");
    assert_eq!(
        ref_of(&default_route["ThrottlingBurstLimit"]),
        Some(format!("{name}ThrottleBurst"))
    );
    limits(&doc, name);
}

#[test]
fn costly_routes_are_tight_aliases_no_looser_and_stats_reports_never_tight() {
    let table = Table::load();
    let doc = doc();
    let api = limits(&doc, "Api");
    let throttle_of = |function: &str| {
        table.functions[function]
            .throttle
            .clone()
            .unwrap_or_else(|| panic!("{function} has no throttle in routes.toml"))
    };
    // The unauthenticated routes that cost work: a hash per login, a HAT call per
    // registration.
    let costly: Vec<(f64, f64)> = ["access-token", "register-hat"]
        .iter()
        .map(|f| limits(&doc, &throttle_of(f)))
        .collect();
    for (rate, burst) in &costly {
        assert!(
            *rate < api.0 && *burst < api.1,
            "not tighter than the default"
        );
    }
    // An alias must not be a way around a route's throttle.
    let default_route = &doc["Resources"]["DexApi"]["Properties"]["RouteSettings"]["$default"];
    let rate = ref_of(&default_route["ThrottlingRateLimit"]).expect("$default throttled");
    let aliases = limits(&doc, rate.strip_suffix("ThrottleRate").expect("a throttle"));
    for (rate, burst) in &costly {
        assert!(aliases.0 <= *rate && aliases.1 <= *burst, "aliases looser");
    }
    let stats = limits(&doc, &throttle_of("stats-report"));
    assert!(
        stats.0 >= 2.0 * STATS_DESIGN_POINT_PER_SEC && stats.0 >= api.0 && stats.1 >= api.1,
        "POST /stats/report throttled near its design point: {stats:?}"
    );
}
