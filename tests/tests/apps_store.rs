//! The applications registry's store contract, without HTTP: each body runs on the in-memory
//! `MemoryStore` (`memory::*`) and on `DynamoStore` against DynamoDB Local (`dynamo::*`, the
//! judge), through the registry's service. Every test uses ids of its own (a unique prefix,
//! so its applications are contiguous in every listing), HATs of its own and developer ids
//! of its own, so it never depends on what else is in the table.

use dex::accounts::Actor;
use dex::apps::service::{ApplicationService, ListQuery};
use dex::apps::{AppFilter, AppKind, ApplicationStore, StoredApp};
use dex::page::PageRequest;
use dex::ports::{SystemClock, SystemRandom};
use dex::testing::apps::{sample_application, with_kind};
use dex::txlog::LogStore;
use serde_json::json;

pub trait Store: ApplicationStore + LogStore + Clone + Send + Sync + 'static {}
impl<T> Store for T where T: ApplicationStore + LogStore + Clone + Send + Sync + 'static {}

dex_tests::store_contract!(
    an_application_is_inserted_once_and_updated_at_its_revision,
    listings_follow_publication_suspension_and_kind,
    v3_pages_start_at_their_id_and_end_with_the_next,
    history_groups_every_version_of_the_listed_applications,
    the_developer_profile_reaches_its_applications,
    consents_are_all_kept_and_listed_newest_first,
);

static CLOCK: SystemClock = SystemClock;
static RANDOM: SystemRandom = SystemRandom;

fn service<S: Store>(store: &S) -> ApplicationService<'_, S> {
    ApplicationService {
        store,
        clock: &CLOCK,
        random: &RANDOM,
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// The ids of `apps` that start with `prefix` (other tests share the listings).
fn ours(apps: &[StoredApp], prefix: &str) -> Vec<String> {
    apps.iter()
        .filter(|a| a.id.starts_with(prefix))
        .map(|a| a.id.clone())
        .collect()
}

async fn listed<S: Store>(
    store: &S,
    unpublished: bool,
    kind: Option<AppKind>,
    prefix: &str,
) -> Vec<String> {
    let query = ListQuery {
        filter: AppFilter {
            include_unpublished: unpublished,
            kind,
        },
        start_id: Some(prefix.to_owned()),
        limit: None,
    };
    ours(&service(store).list(&query).await.unwrap().apps, prefix)
}

async fn an_application_is_inserted_once_and_updated_at_its_revision<S: Store>(store: S) {
    let id = unique("app");
    let app = service(&store)
        .create(&Actor::Operator, sample_application(&id, "dev-a", "1.0.0"))
        .await
        .unwrap();
    let again = service(&store)
        .create(&Actor::Operator, sample_application(&id, "dev-a", "1.0.0"))
        .await;
    assert_eq!(again.unwrap_err().status(), 409);
    let stored = store.get_app(&id).await.unwrap().unwrap();
    assert_eq!(stored, app, "what was written is what is read");
    let mut expected = sample_application(&id, "dev-a", "1.0.0");
    expected["info"]["published"] = json!(false);
    assert_eq!(stored.doc, expected, "unknown fields at every level kept");

    let mut next = stored.clone();
    next.revision += 1;
    next.published = true;
    let event = |k: &str| dex::txlog::LogEvent {
        subject: format!("app:{id}"),
        kind: k.to_owned(),
        actor: "dexctl".into(),
        details: json!({}),
    };
    store
        .update_app(&next, &stored, event("app.published"))
        .await
        .unwrap();
    // Stale: written over the revision it no longer has.
    let mut stale = stored.clone();
    stale.revision += 1;
    stale.suspended = true;
    let refused = store
        .update_app(&stale, &stored, event("app.suspended"))
        .await;
    assert_eq!(refused.unwrap_err().status(), 409);
    let now = store.get_app(&id).await.unwrap().unwrap();
    assert!(now.published && !now.suspended && now.revision == next.revision);
    let kinds: Vec<String> = store
        .subject_history(&format!("app:{id}"), PageRequest::first(10))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec!["app.created", "app.published"],
        "nothing logged for the refused one"
    );
    assert!(store.get_app(&unique("none")).await.unwrap().is_none());
}

async fn listings_follow_publication_suspension_and_kind<S: Store>(store: S) {
    let prefix = unique("list");
    let svc = service(&store);
    let ids: Vec<String> = ["a", "b", "c", "d"]
        .iter()
        .map(|s| format!("{prefix}-{s}"))
        .collect();
    let kinds = ["App", "Tool", "App", "Contract"];
    for (id, kind) in ids.iter().zip(kinds) {
        svc.create(
            &Actor::Operator,
            with_kind(sample_application(id, "dev-l", "1.0.0"), kind),
        )
        .await
        .unwrap();
    }
    assert_eq!(
        listed(&store, false, None, &prefix).await,
        Vec::<String>::new()
    );
    assert_eq!(listed(&store, true, None, &prefix).await, ids);
    for id in &ids[..3] {
        svc.publish(&Actor::Operator, id).await.unwrap();
    }
    assert_eq!(
        listed(&store, false, None, &prefix).await,
        ids[..3].to_vec()
    );
    assert_eq!(
        listed(&store, false, Some(AppKind::App), &prefix).await,
        vec![ids[0].clone(), ids[2].clone()]
    );
    assert_eq!(
        listed(&store, true, Some(AppKind::Contract), &prefix).await,
        vec![ids[3].clone()]
    );
    svc.suspend(&Actor::Operator, &ids[0]).await.unwrap();
    svc.suspend(&Actor::Operator, &ids[3]).await.unwrap();
    assert_eq!(
        listed(&store, true, None, &prefix).await,
        ids[1..3].to_vec()
    );
    assert_eq!(
        listed(&store, true, Some(AppKind::Contract), &prefix).await,
        Vec::<String>::new()
    );
    assert_eq!(
        listed(&store, false, Some(AppKind::App), &prefix).await,
        vec![ids[2].clone()]
    );
    // A new version of another kind moves it between the kind listings.
    svc.new_version(
        &Actor::Operator,
        &ids[2],
        with_kind(sample_application(&ids[2], "dev-l", "2.0.0"), "Tool"),
    )
    .await
    .unwrap();
    assert_eq!(
        listed(&store, false, Some(AppKind::App), &prefix).await,
        Vec::<String>::new()
    );
    assert_eq!(
        listed(&store, false, Some(AppKind::Tool), &prefix).await,
        ids[1..3].to_vec()
    );
    svc.publish(&Actor::Operator, &ids[0]).await.unwrap();
    assert_eq!(
        listed(&store, false, None, &prefix).await,
        ids[..3].to_vec()
    );
    let all = ours(&store.all_apps().await.unwrap(), &prefix);
    assert_eq!(all, ids, "operators see the suspended one too");
}

async fn v3_pages_start_at_their_id_and_end_with_the_next<S: Store>(store: S) {
    let prefix = unique("page");
    let svc = service(&store);
    let ids: Vec<String> = (0..5).map(|i| format!("{prefix}-{i}")).collect();
    for id in &ids {
        svc.create(&Actor::Operator, sample_application(id, "dev-p", "1.0.0"))
            .await
            .unwrap();
    }
    let filter = AppFilter {
        include_unpublished: true,
        kind: None,
    };
    let mut start = ids[0].clone();
    let mut seen = Vec::new();
    loop {
        let page = store
            .list_apps(&filter, Some(&start), Some(2))
            .await
            .unwrap();
        assert!(page.apps.len() <= 2);
        seen.extend(ours(&page.apps, &prefix));
        match page.next {
            Some(next) if next.starts_with(&prefix) => start = next,
            _ => break,
        }
    }
    assert_eq!(seen, ids, "each once, in id order");
}

async fn history_groups_every_version_of_the_listed_applications<S: Store>(store: S) {
    let prefix = unique("hist");
    let svc = service(&store);
    let (a, b) = (format!("{prefix}-a"), format!("{prefix}-b"));
    for id in [&a, &b] {
        svc.create(&Actor::Operator, sample_application(id, "dev-h", "1.0.0"))
            .await
            .unwrap();
        svc.publish(&Actor::Operator, id).await.unwrap();
    }
    svc.new_version(
        &Actor::Operator,
        &a,
        sample_application(&a, "dev-h", "1.1.0"),
    )
    .await
    .unwrap();
    svc.new_version(
        &Actor::Operator,
        &a,
        sample_application(&a, "dev-h", "1.10.0"),
    )
    .await
    .unwrap();
    let versions: Vec<String> = store
        .app_versions(&a)
        .await
        .unwrap()
        .iter()
        .map(|v| v.version.to_string())
        .collect();
    assert_eq!(versions, vec!["1.0.0", "1.1.0", "1.10.0"], "numeric order");
    svc.suspend(&Actor::Operator, &b).await.unwrap();
    let history = svc.history(true).await.unwrap();
    let mine: Vec<&serde_json::Value> = history
        .iter()
        .filter(|h| h["current"]["id"].as_str().unwrap().starts_with(&prefix))
        .collect();
    assert_eq!(mine.len(), 1, "the suspended one is not in the history");
    assert_eq!(mine[0]["current"]["info"]["version"], json!("1.10.0"));
    let older: Vec<&str> = mine[0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["info"]["version"].as_str().unwrap())
        .collect();
    assert_eq!(older, vec!["1.1.0", "1.0.0"]);
}

async fn the_developer_profile_reaches_its_applications<S: Store>(store: S) {
    let dev = unique("dev");
    let svc = service(&store);
    let id = unique("prof");
    svc.create(&Actor::Operator, sample_application(&id, &dev, "1.0.0"))
        .await
        .unwrap();
    assert_eq!(store.get_developer(&dev).await.unwrap(), None);
    let profile =
        json!({"id": dev, "name": "Dev Co", "url": "https://dev.example", "more": {"x": 1}});
    svc.developer_profile(&Actor::Operator, profile.clone())
        .await
        .unwrap();
    assert_eq!(
        store.get_developer(&dev).await.unwrap(),
        Some(profile.clone())
    );
    let of_dev = ours(&store.apps_of_developer(&dev).await.unwrap(), &id);
    assert_eq!(of_dev, vec![id.clone()]);
    assert_eq!(
        store.get_app(&id).await.unwrap().unwrap().doc["developer"],
        profile
    );
}

async fn consents_are_all_kept_and_listed_newest_first<S: Store>(store: S) {
    let svc = service(&store);
    let id = unique("cons");
    svc.create(&Actor::Operator, sample_application(&id, "dev-c", "1.0.0"))
        .await
        .unwrap();
    let (alice, bob) = (
        format!("{}.hubat.net", unique("alice")),
        format!("{}.hubat.net", unique("bob")),
    );
    let first = svc.consent(&alice, &id).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = svc.consent(&alice, &id).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let third = svc.consent(&bob, &id).await.unwrap();
    let page = |limit| PageRequest::first(limit);
    let of_alice = svc.consents(Some(&alice), None, page(10)).await.unwrap();
    assert_eq!(of_alice.items, vec![second.clone(), first.clone()]);
    let both = svc
        .consents(Some(&alice), Some(&id), page(10))
        .await
        .unwrap();
    assert_eq!(both.items, vec![second.clone(), first.clone()]);
    let of_app = svc.consents(None, Some(&id), page(2)).await.unwrap();
    assert_eq!(of_app.items, vec![third.clone(), second.clone()]);
    let rest = svc
        .consents(
            None,
            Some(&id),
            PageRequest {
                limit: 2,
                cursor: of_app.cursor.map(dex::page::Cursor::new),
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.items, vec![first.clone()]);
    let newest = svc.consents(None, None, page(50)).await.unwrap();
    assert!(
        newest.items.contains(&third),
        "the unfiltered listing starts with the newest"
    );
    let chain = store
        .subject_history(&format!("hat:{alice}"), PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert_eq!(chain.len(), 2);
    assert!(
        chain
            .iter()
            .all(|e| e.kind == "consent.recorded" && e.details["applicationId"] == json!(id))
    );
    assert!(dex::txlog::verify_chain(&chain).is_ok());
}
