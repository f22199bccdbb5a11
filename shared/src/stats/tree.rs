//! The available-data tree (`NamespaceStructure`, docs/wire-contract.md §6.1): counts per field path,
//! nested on `.`, arrays marked with `[]`, with descriptions merged in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NamespaceStructure {
    pub namespace: String,
    #[serde(default)]
    pub endpoints: Vec<EndpointStructure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EndpointStructure {
    pub endpoint: String,
    #[serde(default)]
    pub fields: Vec<FieldStructure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FieldStructure {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<FieldStructure>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
}

/// Request limits of a descriptions request (openapi.yaml states them): a description, a
/// namespace, endpoint or field name, the items of one list, the descriptions of a request.
pub const MAX_DESCRIPTION: usize = 2000;
pub const MAX_NAME: usize = 512;
pub const MAX_TREE_ITEMS: usize = 200;
pub const MAX_DESCRIPTIONS: usize = 1000;

/// The longest target JSON kept as the sort key itself (sort keys hold 1024 bytes).
const MAX_TARGET_KEY: usize = 1000;

/// The sort key of a description: its target's JSON, or `#` and the SHA-256 of that JSON
/// when it is too long for a key (JSON texts start with `{`, so the two never meet).
pub fn target_key(target_json: &str) -> String {
    if target_json.len() <= MAX_TARGET_KEY {
        return target_json.to_owned();
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, target_json.as_bytes());
    format!("#{}", hex::encode(digest))
}

/// Where a description belongs: a namespace, an endpoint, or a field path (dot-separated).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DescriptionTarget {
    pub namespace: String,
    pub endpoint: Option<String>,
    pub field: Option<String>,
}

pub type FieldCounts = BTreeMap<(String, String, String), i64>;

#[derive(Default)]
struct Node {
    count: Option<i64>,
    description: Option<String>,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn into_fields(self) -> Vec<FieldStructure> {
        self.children
            .into_iter()
            .map(|(name, node)| {
                let description = node.description.clone();
                let count = node.count;
                let has_children = !node.children.is_empty();
                let fields = has_children.then(|| node.into_fields());
                FieldStructure {
                    name,
                    fields,
                    description,
                    count,
                }
            })
            .collect()
    }
}

#[derive(Default)]
struct EndpointNode {
    description: Option<String>,
    root: Node,
}

#[derive(Default)]
struct NamespaceNode {
    description: Option<String>,
    endpoints: BTreeMap<String, EndpointNode>,
}

/// Builds the tree from flat counts and descriptions; described but uncounted parts appear too.
pub fn build(
    counts: &FieldCounts,
    descriptions: &BTreeMap<DescriptionTarget, String>,
) -> Vec<NamespaceStructure> {
    let mut namespaces: BTreeMap<String, NamespaceNode> = BTreeMap::new();
    for ((ns, ep, path), count) in counts {
        let node = node_at(&mut namespaces, ns, ep, path);
        *node.count.get_or_insert(0) += count;
    }
    for (target, description) in descriptions {
        let ns = namespaces.entry(target.namespace.clone()).or_default();
        match (&target.endpoint, &target.field) {
            (None, _) => ns.description = Some(description.clone()),
            (Some(ep), None) => {
                ns.endpoints.entry(ep.clone()).or_default().description = Some(description.clone())
            }
            (Some(ep), Some(path)) => {
                node_at(&mut namespaces, &target.namespace, ep, path).description =
                    Some(description.clone())
            }
        }
    }
    namespaces
        .into_iter()
        .map(|(namespace, ns)| NamespaceStructure {
            namespace,
            description: ns.description,
            endpoints: ns
                .endpoints
                .into_iter()
                .map(|(endpoint, ep)| EndpointStructure {
                    endpoint,
                    description: ep.description,
                    fields: ep.root.into_fields(),
                })
                .collect(),
        })
        .collect()
}

fn node_at<'a>(
    namespaces: &'a mut BTreeMap<String, NamespaceNode>,
    ns: &str,
    ep: &str,
    path: &str,
) -> &'a mut Node {
    let endpoint = namespaces
        .entry(ns.to_owned())
        .or_default()
        .endpoints
        .entry(ep.to_owned())
        .or_default();
    let mut node = &mut endpoint.root;
    for segment in path.split('.') {
        node = node.children.entry(segment.to_owned()).or_default();
    }
    node
}

/// Every description in a posted tree, with where it belongs. Empty names are refused.
pub fn descriptions_of(
    tree: &[NamespaceStructure],
) -> Result<Vec<(DescriptionTarget, String)>, Vec<String>> {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    fn fields(
        ns: &str,
        ep: &str,
        prefix: &str,
        list: &[FieldStructure],
        out: &mut Vec<(DescriptionTarget, String)>,
        bad: &mut Vec<String>,
    ) {
        if list.len() > MAX_TREE_ITEMS {
            bad.push(format!(
                "{ns}/{ep}: at most {MAX_TREE_ITEMS} fields per level"
            ));
            return;
        }
        for f in list {
            if f.name.chars().count() > MAX_NAME {
                bad.push(format!(
                    "{ns}/{ep}: field names have at most {MAX_NAME} characters"
                ));
                continue;
            }
            if f.name.is_empty() || f.name.contains('.') {
                bad.push(format!(
                    "{ns}/{ep}: field name {:?} must be non-empty and without '.'",
                    f.name
                ));
                continue;
            }
            let path = if prefix.is_empty() {
                f.name.clone()
            } else {
                format!("{prefix}.{}", f.name)
            };
            if let Some(d) = &f.description {
                out.push((
                    DescriptionTarget {
                        namespace: ns.into(),
                        endpoint: Some(ep.into()),
                        field: Some(path.clone()),
                    },
                    d.clone(),
                ));
            }
            if let Some(children) = &f.fields {
                fields(ns, ep, &path, children, out, bad);
            }
        }
    }
    if tree.len() > MAX_TREE_ITEMS {
        return Err(vec![format!(
            "at most {MAX_TREE_ITEMS} namespaces per request"
        )]);
    }
    for ns in tree {
        if ns.namespace.chars().count() > MAX_NAME || ns.endpoints.len() > MAX_TREE_ITEMS {
            bad.push(format!(
                "namespaces have at most {MAX_NAME} characters and {MAX_TREE_ITEMS} endpoints"
            ));
            continue;
        }
        if ns.namespace.is_empty() || ns.namespace.contains('/') {
            bad.push(format!(
                "namespace {:?} must be non-empty and without '/'",
                ns.namespace
            ));
            continue;
        }
        if let Some(d) = &ns.description {
            out.push((
                DescriptionTarget {
                    namespace: ns.namespace.clone(),
                    endpoint: None,
                    field: None,
                },
                d.clone(),
            ));
        }
        for ep in &ns.endpoints {
            if ep.endpoint.chars().count() > MAX_NAME {
                bad.push(format!(
                    "{}: endpoint names have at most {MAX_NAME} characters",
                    ns.namespace
                ));
                continue;
            }
            if ep.endpoint.is_empty() {
                bad.push(format!(
                    "{}: endpoint names must be non-empty",
                    ns.namespace
                ));
                continue;
            }
            if let Some(d) = &ep.description {
                out.push((
                    DescriptionTarget {
                        namespace: ns.namespace.clone(),
                        endpoint: Some(ep.endpoint.clone()),
                        field: None,
                    },
                    d.clone(),
                ));
            }
            fields(
                &ns.namespace,
                &ep.endpoint,
                "",
                &ep.fields,
                &mut out,
                &mut bad,
            );
        }
    }
    if out.iter().any(|(_, d)| d.chars().count() > MAX_DESCRIPTION) {
        bad.push(format!(
            "descriptions are limited to {MAX_DESCRIPTION} characters"
        ));
    }
    if out.len() > MAX_DESCRIPTIONS {
        bad.push(format!(
            "at most {MAX_DESCRIPTIONS} descriptions per request"
        ));
    }
    if !bad.is_empty() {
        return Err(bad);
    }
    Ok(last_of_each_target(out))
}

/// A target named more than once in one request keeps its last description, in the place it
/// was first named: one transaction may not write an item twice, and a later entry of a
/// posted tree is taken as correcting an earlier one.
fn last_of_each_target(
    posted: Vec<(DescriptionTarget, String)>,
) -> Vec<(DescriptionTarget, String)> {
    let mut place = std::collections::HashMap::new();
    let mut out: Vec<(DescriptionTarget, String)> = Vec::with_capacity(posted.len());
    for (target, description) in posted {
        match place.get(&target) {
            Some(&i) => out[i] = (target, description),
            None => {
                place.insert(target.clone(), out.len());
                out.push((target, description));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nests_paths_and_marks_arrays() {
        let mut counts = FieldCounts::new();
        counts.insert(("facebook".into(), "feed".into(), "message".into()), 3);
        counts.insert(
            (
                "facebook".into(),
                "feed".into(),
                "place.location.latitude".into(),
            ),
            1,
        );
        counts.insert(("dex".into(), "databuyer".into(), "merchants[]".into()), 9);
        counts.insert(
            ("dex".into(), "databuyer".into(), "array[].interest".into()),
            2,
        );
        let mut descriptions = BTreeMap::new();
        descriptions.insert(
            DescriptionTarget {
                namespace: "dex".into(),
                endpoint: None,
                field: None,
            },
            "Data stored by DEX".to_owned(),
        );
        descriptions.insert(
            DescriptionTarget {
                namespace: "dex".into(),
                endpoint: Some("databuyer".into()),
                field: Some("array[].interest".into()),
            },
            "Interest".to_owned(),
        );
        descriptions.insert(
            DescriptionTarget {
                namespace: "new".into(),
                endpoint: Some("ep".into()),
                field: None,
            },
            "Later".to_owned(),
        );
        let tree = build(&counts, &descriptions);
        let json = serde_json::to_value(&tree).unwrap();
        assert_eq!(json[0]["namespace"], "dex");
        assert_eq!(json[0]["description"], "Data stored by DEX");
        let fields = &json[0]["endpoints"][0]["fields"];
        assert_eq!(fields[0]["name"], "array[]");
        assert_eq!(
            fields[0]["fields"][0],
            serde_json::json!({"name":"interest","description":"Interest","count":2})
        );
        assert_eq!(
            fields[1],
            serde_json::json!({"name":"merchants[]","count":9})
        );
        assert_eq!(
            json[1]["endpoints"][0]["fields"][1]["fields"][0]["fields"][0]["name"],
            "latitude"
        );
        assert_eq!(
            json[2],
            serde_json::json!({"namespace":"new","endpoints":[{"endpoint":"ep","fields":[],"description":"Later"}]})
        );
    }

    #[test]
    fn descriptions_are_flattened_with_their_paths() {
        let posted: Vec<NamespaceStructure> = serde_json::from_value(serde_json::json!([{"namespace":"dex","description":"D",
            "endpoints":[{"endpoint":"databuyer","fields":[{"name":"array[]","fields":[{"name":"interest","description":"I","count":5}]}]}]}])).unwrap();
        let flat = descriptions_of(&posted).unwrap();
        assert_eq!(flat.len(), 2);
        assert_eq!(flat[1].0.field.as_deref(), Some("array[].interest"));
        let bad: Vec<NamespaceStructure> =
            serde_json::from_value(serde_json::json!([{"namespace":""}])).unwrap();
        assert!(descriptions_of(&bad).is_err());
    }

    #[test]
    fn a_target_named_twice_keeps_its_last_description_once() {
        let posted: Vec<NamespaceStructure> = serde_json::from_value(serde_json::json!([
            {"namespace": "dex", "description": "first", "endpoints": [{"endpoint": "ep", "description": "E1",
                "fields": [{"name": "f", "description": "F1"}, {"name": "f", "description": "F2"}]}]},
            {"namespace": "other", "description": "O"},
            {"namespace": "dex", "description": "second", "endpoints": [{"endpoint": "ep", "description": "E2"}]}
        ]))
        .unwrap();
        let flat = descriptions_of(&posted).unwrap();
        let named: Vec<(Option<&str>, Option<&str>, &str)> = flat
            .iter()
            .map(|(t, d)| (t.endpoint.as_deref(), t.field.as_deref(), d.as_str()))
            .collect();
        assert_eq!(
            named,
            [
                (None, None, "second"),
                (Some("ep"), None, "E2"),
                (Some("ep"), Some("f"), "F2"),
                (None, None, "O"),
            ]
        );
        assert_eq!(flat[3].0.namespace, "other");
    }

    #[test]
    fn description_targets_of_any_allowed_names_fit_a_sort_key() {
        let posted = |namespace: &str, endpoint: &str| -> Vec<NamespaceStructure> {
            serde_json::from_value(
                serde_json::json!([{"namespace": namespace, "description": "D",
                "endpoints": [{"endpoint": endpoint, "description": "E",
                    "fields": [{"name": "f".repeat(MAX_NAME), "description": "F"}]}]}]),
            )
            .unwrap()
        };
        // The longest names, escaped (quotes) and wide (4-byte characters), are accepted.
        let flat = descriptions_of(&posted(&"\"".repeat(MAX_NAME), &"𝄞".repeat(MAX_NAME))).unwrap();
        assert_eq!(flat.len(), 3);
        let keys: Vec<String> = flat
            .iter()
            .map(|(target, _)| target_key(&serde_json::to_string(target).unwrap()))
            .collect();
        assert!(
            keys.iter().all(|k| k.len() <= 1024 && k.starts_with('#')),
            "{keys:?}"
        );
        assert_ne!(keys[1], keys[2]);
        // Short targets keep their JSON as the key.
        let short =
            serde_json::to_string(&descriptions_of(&posted("dex", "ep")).unwrap()[0].0).unwrap();
        assert_eq!(target_key(&short), short);
        // Past the limits: refused, naming the limit.
        let bad = descriptions_of(&posted(&"n".repeat(MAX_NAME + 1), "ep")).unwrap_err();
        assert!(bad[0].contains("512 characters"), "{bad:?}");
        let many: Vec<NamespaceStructure> = (0..=MAX_TREE_ITEMS)
            .map(|i| NamespaceStructure {
                namespace: format!("n{i}"),
                endpoints: vec![],
                description: Some("d".into()),
            })
            .collect();
        assert!(descriptions_of(&many).unwrap_err()[0].contains("at most 200 namespaces"));
        let long: Vec<NamespaceStructure> = serde_json::from_value(
            serde_json::json!([{"namespace": "n", "description": "é".repeat(MAX_DESCRIPTION + 1)}]),
        )
        .unwrap();
        assert!(descriptions_of(&long).is_err());
        let fits: Vec<NamespaceStructure> = serde_json::from_value(
            serde_json::json!([{"namespace": "n", "description": "é".repeat(MAX_DESCRIPTION)}]),
        )
        .unwrap();
        assert!(descriptions_of(&fits).is_ok());
    }
}
