//! update-application (docs/decisions.md §10, §13 "update-application") on the fake HATs and
//! tokio's paused clock: the selection (cluster, `hatFilter` addresses and `*` patterns), the
//! refusals before any HAT is called, per-HAT results where a failing or slow HAT costs only
//! its own, and the cursor: following `next` covers every HAT exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use dex::accounts::Actor;
use dex::hats::calls::{HatCalls, HatSessions};
use dex::hats::push::{PushAnswer, PushRequest, PushService, PushStatus};
use dex::hats::{HatStore, RegisteredHat};
use dex::ports::Clock;
use dex::testing::{Fail, FakeHats, MemorySecrets, MemoryStore};
use dex::txlog::{Kind, LogEvent, Subject};

use crate::support::{World, status};

const HAT_TIMEOUT: Duration = Duration::from_secs(1);

fn service_body() -> serde_json::Value {
    serde_json::json!({
        "title": "notables", "namespace": "rumpel", "description": "Notes",
        "logoUrl": "https://notables.example/logo.png", "url": "https://notables.example",
        "authUrl": "/authenticate", "browser": false, "category": "app", "setup": true,
        "loginAvailable": true, "unknownField": [1, 2]
    })
}

fn pushes(w: &World, budget_secs: u64) -> PushService<'_, MemoryStore> {
    PushService {
        store: &w.store,
        allow_ports: false,
        budget: Duration::from_secs(budget_secs),
    }
}

fn calls<'a>(w: &'a World, sessions: &'a HatSessions) -> HatCalls<'a, FakeHats, MemorySecrets> {
    HatCalls {
        http: &w.hats,
        secrets: &w.secrets,
        sessions,
        clock: &*w.clock,
        timeout: HAT_TIMEOUT,
        budget: Duration::from_secs(20),
    }
}

/// Registers `address` in `cluster` straight in the store and makes it a fake HAT whose
/// platform user is the one `World::cluster` certifies with.
async fn hat(w: &World, address: &str, cluster: &str) {
    let now = w.clock.now_millis();
    let hat = RegisteredHat {
        address: address.to_owned(),
        cluster: cluster.to_owned(),
        public_key_pem: "pem".into(),
        key_fingerprint: "fp".into(),
        registered_at: now,
        key_updated_at: now,
        application_id: None,
        version: 1,
    };
    let event = LogEvent::new(
        Subject::hat(address),
        Kind::HatRegistered,
        &Actor::Operator,
        serde_json::json!({}),
    );
    assert!(w.store.insert_hat(&hat, event).await.unwrap());
    w.hats.add_hat(address, "platform", "platform password");
}

async fn push(
    w: &World,
    sessions: &HatSessions,
    budget_secs: u64,
    cluster: Option<&str>,
    filter: Option<&str>,
    cursor: Option<&str>,
    body: &serde_json::Value,
) -> dex::DexResult<PushAnswer> {
    let body = body.to_string();
    pushes(w, budget_secs)
        .push(
            &calls(w, sessions),
            PushRequest {
                cluster,
                hat_filter: filter,
                cursor,
                body: body.as_bytes(),
            },
        )
        .await
}

fn hats_of(answer: &PushAnswer) -> Vec<&str> {
    answer.results.iter().map(|r| r.hat.as_str()).collect()
}

fn pushes_to(w: &World, address: &str) -> usize {
    w.hats
        .api_calls_to(address)
        .iter()
        .filter(|r| *r == "POST /api/v2/application")
        .count()
}

#[tokio::test]
async fn the_filter_selects_addresses_and_patterns_of_the_cluster_only() {
    let w = World::new().await;
    w.cluster("hubat.net", &[]).await;
    w.cluster("other.net", &[]).await;
    for a in [
        "alice.hubat.net",
        "bob.hubat.net",
        "bobby.eu.hubat.net",
        "carol.hubat.net",
    ] {
        hat(&w, a, "hubat.net").await;
    }
    hat(&w, "bob.other.net", "other.net").await;
    let sessions = HatSessions::new();
    let body = service_body();

    let all = push(&w, &sessions, 10, Some("hubat.net"), None, None, &body)
        .await
        .unwrap();
    assert_eq!(
        hats_of(&all),
        [
            "alice.hubat.net",
            "bob.hubat.net",
            "bobby.eu.hubat.net",
            "carol.hubat.net"
        ]
    );
    assert!(all.results.iter().all(|r| r.status == PushStatus::Updated));
    assert_eq!(all.next, None);
    assert_eq!(pushes_to(&w, "bob.other.net"), 0);

    let cases: [(&str, &[&str]); 5] = [
        ("bob.hubat.net", &["bob.hubat.net"]),
        (
            " Alice.hubat.net ,carol.hubat.net",
            &["alice.hubat.net", "carol.hubat.net"],
        ),
        ("bob*", &["bob.hubat.net", "bobby.eu.hubat.net"]),
        ("*.eu.*", &["bobby.eu.hubat.net"]),
        ("nobody.hubat.net, bob.other.net", &[]),
    ];
    for (filter, want) in cases {
        let answer = push(
            &w,
            &sessions,
            10,
            Some("hubat.net"),
            Some(filter),
            None,
            &body,
        )
        .await
        .unwrap();
        assert_eq!(hats_of(&answer), want, "{filter}");
        assert_eq!(answer.next, None, "{filter}");
    }
    // The body went as it came, unknown fields too.
    let sent = w
        .hats
        .api_calls()
        .into_iter()
        .find(|c| c.route() == "POST /api/v2/application")
        .unwrap();
    assert_eq!(sent.body.unwrap(), body);
}

#[tokio::test]
async fn refusals_come_before_any_hat_is_called() {
    let w = World::new().await;
    w.cluster("hubat.net", &[]).await;
    w.cluster("gone.net", &[]).await;
    w.clusters()
        .decertify(&Actor::Operator, "gone.net")
        .await
        .unwrap();
    hat(&w, "alice.hubat.net", "hubat.net").await;
    hat(&w, "alice.gone.net", "gone.net").await;
    let sessions = HatSessions::new();
    let body = service_body();

    let mut incomplete = service_body();
    incomplete.as_object_mut().unwrap().remove("loginAvailable");
    let mut wrong_type = service_body();
    wrong_type["browser"] = "yes".into();
    for bad in [
        incomplete,
        wrong_type,
        serde_json::json!([]),
        serde_json::json!({}),
    ] {
        status(
            push(&w, &sessions, 10, Some("hubat.net"), None, None, &bad).await,
            400,
        );
    }
    let unparsable = pushes(&w, 10)
        .push(
            &calls(&w, &sessions),
            PushRequest {
                cluster: Some("hubat.net"),
                body: b"{not json",
                ..PushRequest::default()
            },
        )
        .await;
    status(unparsable, 400);
    for cluster in [None, Some(""), Some("unknown.net"), Some("gone.net")] {
        status(
            push(&w, &sessions, 10, cluster, None, None, &body).await,
            400,
        );
    }
    status(
        push(
            &w,
            &sessions,
            10,
            Some("hubat.net"),
            Some(" ,"),
            None,
            &body,
        )
        .await,
        400,
    );
    status(
        push(
            &w,
            &sessions,
            10,
            Some("hubat.net"),
            None,
            Some("garbage"),
            &body,
        )
        .await,
        400,
    );
    assert!(w.hats.api_calls().is_empty(), "{:?}", w.hats.api_calls());
}

#[tokio::test(start_paused = true)]
async fn following_next_covers_every_hat_once_whatever_fails_or_is_slow() {
    const HATS: usize = 120;
    let w = World::new().await;
    w.cluster("hubat.net", &[]).await;
    let mut addresses = Vec::new();
    for i in 0..HATS {
        let address = format!("h{i:03}.hubat.net");
        hat(&w, &address, "hubat.net").await;
        match i % 10 {
            // Slower than the HAT timeout: each holds a slot for the whole timeout.
            3 | 7 => w.hats.fail(
                &address,
                "POST /api/v2/application",
                Fail::Slow(Duration::from_secs(30)),
                None,
            ),
            5 => w.hats.fail(
                &address,
                "POST /api/v2/application",
                Fail::Status(500),
                None,
            ),
            9 => w
                .hats
                .fail(&address, "GET /users/access_token", Fail::Status(503), None),
            _ => {}
        }
        addresses.push(address);
    }
    let sessions = HatSessions::new();
    let body = service_body();

    let mut seen: BTreeMap<String, (PushStatus, Option<String>)> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    let mut calls_made = 0;
    loop {
        let started = tokio::time::Instant::now();
        let answer = push(
            &w,
            &sessions,
            1,
            Some("hubat.net"),
            None,
            cursor.as_deref(),
            &body,
        )
        .await
        .unwrap();
        calls_made += 1;
        // The budget (1 s) plus one HAT's allowance (two timeouts and the retry slack).
        assert!(
            started.elapsed() <= Duration::from_millis(3500),
            "{:?}",
            started.elapsed()
        );
        for r in &answer.results {
            let previous = seen.insert(r.hat.clone(), (r.status, r.reason.clone()));
            assert!(previous.is_none(), "{} covered twice", r.hat);
        }
        match answer.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(calls_made < 50, "the push never ends");
    }
    assert!(
        calls_made >= 2,
        "a 1 s budget needs the cursor: {calls_made} calls"
    );
    assert_eq!(seen.keys().cloned().collect::<Vec<_>>(), addresses);
    for (i, address) in addresses.iter().enumerate() {
        let (status, reason) = &seen[address];
        let reason = reason.as_deref().unwrap_or_default();
        match i % 10 {
            3 | 7 => {
                assert_eq!(*status, PushStatus::Failed, "{address}");
                assert!(reason.contains("no answer in time"), "{address}: {reason}");
            }
            5 => assert!(reason.contains("answered 500"), "{address}: {reason}"),
            9 => assert!(reason.contains("login"), "{address}: {reason}"),
            _ => assert_eq!(*status, PushStatus::Updated, "{address}: {reason}"),
        }
        let expected_pushes = usize::from(i % 10 != 9);
        assert_eq!(pushes_to(&w, address), expected_pushes, "{address}");
    }
}

#[tokio::test]
async fn a_cursor_continues_only_its_own_push_and_the_same_push_again_is_harmless() {
    let w = World::new().await;
    w.cluster("hubat.net", &[]).await;
    for i in 0..3 {
        hat(&w, &format!("h{i}.hubat.net"), "hubat.net").await;
    }
    let sessions = HatSessions::new();
    let body = service_body();
    // A budget of 0 s starts nothing: the cursor says where to begin.
    let stalled = PushService {
        store: &w.store,
        allow_ports: false,
        budget: Duration::ZERO,
    };
    let text = body.to_string();
    let request = |cursor| PushRequest {
        cluster: Some("hubat.net"),
        hat_filter: Some("h*"),
        cursor,
        body: text.as_bytes(),
    };
    let answer = stalled
        .push(&calls(&w, &sessions), request(None))
        .await
        .unwrap();
    assert!(answer.results.is_empty());
    let next = answer.next.expect("nothing was covered: a cursor");
    // Another filter, cluster or body does not continue it.
    status(
        push(
            &w,
            &sessions,
            10,
            Some("hubat.net"),
            None,
            Some(&next),
            &body,
        )
        .await,
        400,
    );
    let mut other = service_body();
    other["title"] = "other".into();
    status(
        push(
            &w,
            &sessions,
            10,
            Some("hubat.net"),
            Some("h*"),
            Some(&next),
            &other,
        )
        .await,
        400,
    );
    let done = push(
        &w,
        &sessions,
        10,
        Some("hubat.net"),
        Some("h*"),
        Some(&next),
        &body,
    )
    .await
    .unwrap();
    assert_eq!(
        hats_of(&done),
        ["h0.hubat.net", "h1.hubat.net", "h2.hubat.net"]
    );
    let again = push(
        &w,
        &sessions,
        10,
        Some("hubat.net"),
        Some("h*"),
        None,
        &body,
    )
    .await
    .unwrap();
    assert_eq!(again, done, "the same push again: the same results");
    // One login per HAT: the second push reused the tokens.
    assert_eq!(w.hats.logins("h0.hubat.net"), 1);
}
