//! The applications registry and consent (docs/decisions.md §10, §13.3,
//! §13.4): who may write, versions and history, publication and suspension, unknown
//! fields kept, the developer profile, v3 paging and consents on the HATs' chains.

use dex::accounts::{Account, Actor};
use dex::apps::service::{ApplicationService, ListQuery};
use dex::apps::{AppFilter, AppKind, StoredApp};
use dex::page::PageRequest;
use dex::testing::MemoryStore;
use dex::testing::apps::{sample_application, with_kind};
use serde_json::{Value, json};

use crate::support::{World, status};

fn apps(w: &World) -> ApplicationService<'_, MemoryStore> {
    ApplicationService {
        store: &w.store,
        clock: &*w.clock,
        random: &*w.random,
    }
}

struct Cast {
    admin: Actor,
    dev: Actor,
    other_dev: Actor,
    buyer: Actor,
}

async fn cast(w: &World) -> Cast {
    let as_actor = |a: Account| Actor::Account(a);
    Cast {
        admin: as_actor(w.account("admin@x.com", &["admin"]).await),
        dev: as_actor(w.account("dev@x.com", &["developer:dev1"]).await),
        other_dev: as_actor(w.account("other@x.com", &["developer:dev2"]).await),
        buyer: as_actor(w.account("buyer@x.com", &["marketplace"]).await),
    }
}

async fn list(w: &World, unpublished: bool) -> Vec<String> {
    let query = ListQuery {
        filter: AppFilter {
            include_unpublished: unpublished,
            kind: None,
        },
        ..ListQuery::default()
    };
    apps(w)
        .list(&query)
        .await
        .unwrap()
        .apps
        .into_iter()
        .map(|a| a.id)
        .collect()
}

async fn history_ids(w: &World, unpublished: bool) -> Vec<String> {
    apps(w)
        .history(unpublished)
        .await
        .unwrap()
        .iter()
        .map(|h| h["current"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn only_admins_and_the_named_developer_create() {
    let w = World::new().await;
    let c = cast(&w).await;
    let doc = sample_application("notables", "dev1", "1.0.0");
    status(apps(&w).create(&c.other_dev, doc.clone()).await, 403);
    status(apps(&w).create(&c.buyer, doc.clone()).await, 403);
    let app = apps(&w).create(&c.dev, doc.clone()).await.unwrap();
    assert!(!app.published, "a new application starts unpublished");
    assert_eq!(app.doc["info"]["published"], json!(false));
    status(apps(&w).create(&c.admin, doc).await, 409);
    let by_admin = sample_application("other-app", "dev2", "1.0.0");
    apps(&w).create(&c.admin, by_admin).await.unwrap();
    assert_eq!(w.kinds("app:notables").await, vec!["app.created"]);
}

#[tokio::test]
async fn bodies_are_validated_and_unknown_fields_kept_at_every_level() {
    let w = World::new().await;
    let c = cast(&w).await;
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let mut missing = sample_application("a", "dev1", "1.0.0");
    missing["info"].as_object_mut().unwrap().remove("termsUrl");
    cases.push((missing, "termsUrl"));
    cases.push((sample_application("a", "dev1", "1.0"), "info.version"));
    let mut kind = sample_application("a", "dev1", "1.0.0");
    kind["kind"]["kind"] = json!("Gadget");
    cases.push((kind, "kind"));
    let mut setup = sample_application("a", "dev1", "1.0.0");
    setup["setup"] = json!({"kind": "External"});
    cases.push((setup, "validRedirectUris"));
    let mut compat = sample_application("a", "dev1", "1.0.0");
    compat["status"]["compatibility"] = json!("one");
    cases.push((compat, "status.compatibility"));
    cases.push((sample_application("developer", "dev1", "1.0.0"), "id"));
    cases.push((json!([1]), "object"));
    for (body, field) in cases {
        let e = status(apps(&w).create(&c.admin, body).await, 400);
        let text = format!("{} {:?}", e.body().cause, e.body().details);
        assert!(text.contains(field), "{field}: {text}");
    }

    let sent = sample_application("notables", "dev1", "1.0.0");
    apps(&w).create(&c.dev, sent.clone()).await.unwrap();
    let mut expected = sent;
    expected["info"]["published"] = json!(false);
    assert_eq!(apps(&w).get("notables").await.unwrap().doc, expected);
}

#[tokio::test]
async fn versions_grow_and_history_keeps_each_once() {
    let w = World::new().await;
    let c = cast(&w).await;
    apps(&w)
        .create(&c.dev, sample_application("n", "dev1", "1.0.0"))
        .await
        .unwrap();
    apps(&w).publish(&c.dev, "n").await.unwrap();
    // PUT keeps the version and the publication whatever the body says.
    let mut edit = sample_application("n", "dev1", "1.0.0");
    edit["info"]["headline"] = json!("edited");
    edit["info"]["published"] = json!(false);
    let replaced = apps(&w).replace(&c.dev, "n", edit).await.unwrap();
    assert!(replaced.published);
    assert_eq!(replaced.doc["info"]["published"], json!(true));
    status(
        apps(&w)
            .replace(&c.dev, "n", sample_application("n", "dev1", "1.0.1"))
            .await,
        400,
    );
    status(
        apps(&w)
            .replace(&c.dev, "m", sample_application("m", "dev1", "1.0.0"))
            .await,
        404,
    );
    status(
        apps(&w)
            .replace(&c.dev, "n", sample_application("other", "dev1", "1.0.0"))
            .await,
        400,
    );
    for not_greater in ["1.0.0", "0.9.9"] {
        status(
            apps(&w)
                .new_version(&c.dev, "n", sample_application("n", "dev1", not_greater))
                .await,
            400,
        );
    }
    apps(&w)
        .new_version(&c.dev, "n", sample_application("n", "dev1", "1.2.0"))
        .await
        .unwrap();
    let v = apps(&w)
        .new_version(&c.dev, "n", sample_application("n", "dev1", "1.10.0"))
        .await
        .unwrap();
    assert!(v.published, "a new version keeps the publication");
    status(
        apps(&w)
            .new_version(&c.other_dev, "n", sample_application("n", "dev2", "2.0.0"))
            .await,
        403,
    );
    // The developer cannot hand its application to another developer id.
    status(
        apps(&w)
            .new_version(&c.dev, "n", sample_application("n", "dev2", "2.0.0"))
            .await,
        403,
    );
    let history = apps(&w).history(false).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["current"]["info"]["version"], json!("1.10.0"));
    let older: Vec<&str> = history[0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["info"]["version"].as_str().unwrap())
        .collect();
    assert_eq!(older, vec!["1.2.0", "1.0.0"]);
    assert_eq!(
        history[0]["history"][1]["info"]["headline"],
        json!("edited"),
        "the replaced content is version 1.0.0's"
    );
    let log = w.history("app:n").await;
    assert_eq!(
        log[2].details["changed"],
        json!(["info.headline"]),
        "PUT logs what changed"
    );
    assert_eq!(
        w.kinds("app:n").await,
        vec![
            "app.created",
            "app.published",
            "app.replaced",
            "app.versioned",
            "app.versioned"
        ]
    );
}

#[tokio::test]
async fn suspended_applications_are_nowhere_to_be_seen_but_stay_manageable() {
    let w = World::new().await;
    let c = cast(&w).await;
    for id in ["a", "b", "c"] {
        apps(&w)
            .create(&c.dev, sample_application(id, "dev1", "1.0.0"))
            .await
            .unwrap();
    }
    apps(&w).publish(&c.dev, "a").await.unwrap();
    apps(&w).publish(&c.admin, "b").await.unwrap();
    status(apps(&w).publish(&c.other_dev, "c").await, 403);
    assert_eq!(list(&w, false).await, vec!["a", "b"]);
    assert_eq!(list(&w, true).await, vec!["a", "b", "c"]);
    assert_eq!(history_ids(&w, false).await, vec!["a", "b"]);
    // An unpublished application is fetchable by id.
    assert!(!apps(&w).get("c").await.unwrap().published);

    let suspended = apps(&w).suspend(&c.dev, "b").await.unwrap();
    assert!(suspended.suspended && !suspended.published);
    apps(&w).suspend(&c.admin, "c").await.unwrap();
    assert_eq!(list(&w, true).await, vec!["a"]);
    assert_eq!(history_ids(&w, true).await, vec!["a"]);
    status(apps(&w).get("b").await, 404);
    status(apps(&w).consent("alice.hubat.net", "b").await, 404);
    // Its developer and admins can still replace, version and publish it.
    apps(&w)
        .replace(&c.dev, "b", sample_application("b", "dev1", "1.0.0"))
        .await
        .unwrap();
    apps(&w)
        .new_version(&c.admin, "b", sample_application("b", "dev1", "1.1.0"))
        .await
        .unwrap();
    status(apps(&w).get("b").await, 404);
    apps(&w).publish(&c.dev, "b").await.unwrap();
    assert_eq!(
        apps(&w).get("b").await.unwrap().version.to_string(),
        "1.1.0"
    );
    assert_eq!(list(&w, false).await, vec!["a", "b"]);
    let all: Vec<StoredApp> = apps(&w).all().await.unwrap();
    assert_eq!(all.len(), 3, "operators see suspended ones");
}

#[tokio::test]
async fn v3_pages_start_at_their_id_and_filter_by_kind() {
    let w = World::new().await;
    let c = cast(&w).await;
    let kinds = ["App", "DataPlug", "Tool", "Contract", "App"];
    for (i, kind) in kinds.iter().enumerate() {
        let id = format!("app{i}");
        let doc = with_kind(sample_application(&id, "dev1", "1.0.0"), kind);
        apps(&w).create(&c.admin, doc).await.unwrap();
        apps(&w).publish(&c.admin, &id).await.unwrap();
    }
    let page = |start: Option<&str>, limit: Option<&str>, kind: Option<&str>| {
        ListQuery::parse(None, kind, start, limit).unwrap()
    };
    let first = apps(&w).list(&page(None, Some("2"), None)).await.unwrap();
    let ids: Vec<&str> = first.apps.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        (ids, first.next.as_deref()),
        (vec!["app0", "app1"], Some("app2"))
    );
    let second = apps(&w)
        .list(&page(first.next.as_deref(), Some("2"), None))
        .await
        .unwrap();
    let ids: Vec<&str> = second.apps.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        (ids, second.next.as_deref()),
        (vec!["app2", "app3"], Some("app4"))
    );
    let last = apps(&w)
        .list(&page(Some("app4"), Some("2"), None))
        .await
        .unwrap();
    assert_eq!((last.apps.len(), last.next), (1, None));
    let only_apps = apps(&w).list(&page(None, None, Some("App"))).await.unwrap();
    assert!(only_apps.apps.iter().all(|a| a.kind == AppKind::App));
    assert_eq!(only_apps.apps.len(), 2);
    for bad in [
        ListQuery::parse(Some("yes"), None, None, None),
        ListQuery::parse(None, Some("Gadget"), None, None),
        ListQuery::parse(None, None, None, Some("0")),
        ListQuery::parse(None, None, None, Some("201")),
    ] {
        status(bad, 400);
    }
}

#[tokio::test]
async fn the_developer_profile_is_the_callers_and_shows_in_its_applications() {
    let w = World::new().await;
    let c = cast(&w).await;
    apps(&w)
        .create(&c.dev, sample_application("n", "dev1", "1.0.0"))
        .await
        .unwrap();
    let profile = json!({"id": "dev1", "name": "Dev One Ltd", "url": "https://one.example",
                         "logo": {"normal": "https://one.example/l.png"}, "extra": [1]});
    let mut other = profile.clone();
    other["id"] = json!("dev2");
    status(apps(&w).developer_profile(&c.dev, other.clone()).await, 403);
    status(
        apps(&w)
            .developer_profile(&c.dev, json!({"id": "dev1"}))
            .await,
        400,
    );
    // Optional fields typed as the HAT reads them.
    for bad in [
        json!({"country": false}),
        json!({"logo": {"small": "x"}}),
        json!({"logo": 3}),
    ] {
        let mut body = profile.clone();
        for (k, v) in bad.as_object().unwrap() {
            body[k] = v.clone();
        }
        status(apps(&w).developer_profile(&c.dev, body).await, 400);
    }
    assert_eq!(
        apps(&w)
            .developer_profile(&c.dev, profile.clone())
            .await
            .unwrap(),
        profile
    );
    apps(&w).developer_profile(&c.admin, other).await.unwrap();
    assert_eq!(apps(&w).get("n").await.unwrap().doc["developer"], profile);
    // Later versions show it too.
    let v = apps(&w)
        .new_version(&c.dev, "n", sample_application("n", "dev1", "1.1.0"))
        .await
        .unwrap();
    assert_eq!(v.doc["developer"], profile);
    assert_eq!(
        w.kinds("developer:dev1").await,
        vec!["developer.profile-updated"]
    );
}

#[tokio::test]
async fn consents_are_kept_each_time_on_the_hats_chain() {
    let w = World::new().await;
    let c = cast(&w).await;
    apps(&w)
        .create(&c.dev, sample_application("n", "dev1", "1.0.0"))
        .await
        .unwrap();
    status(apps(&w).consent("alice.hubat.net", "unknown").await, 404);
    let first = apps(&w).consent("alice.hubat.net", "n").await.unwrap();
    assert_eq!(first.version, "1.0.0");
    apps(&w)
        .new_version(&c.dev, "n", sample_application("n", "dev1", "2.0.0"))
        .await
        .unwrap();
    w.clock.advance(std::time::Duration::from_secs(1));
    let second = apps(&w).consent("alice.hubat.net", "n").await.unwrap();
    assert_eq!(second.version, "2.0.0");
    apps(&w).consent("bob.hubat.net", "n").await.unwrap();
    let alice = apps(&w)
        .consents(Some("alice.hubat.net"), None, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(alice.items, vec![second.clone(), first.clone()]);
    let of_app = apps(&w)
        .consents(None, Some("n"), PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(of_app.items.len(), 3);
    let paged = apps(&w)
        .consents(None, None, PageRequest::first(2))
        .await
        .unwrap();
    assert_eq!(paged.items.len(), 2);
    assert!(paged.cursor.is_some());
    let entries = w.history("hat:alice.hubat.net").await;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].kind, "consent.recorded");
    assert_eq!(entries[1].details["applicationId"], json!("n"));
    assert_eq!(entries[1].details["version"], json!("2.0.0"));
}
