//! Notices (docs/decisions.md §13 "Notices"): ids from 1 without gaps or repeats under a race,
//! targets (empty = every HAT, addresses, selectors that match nothing yet), a HAT's list
//! newest first, and marking read (404 when not addressed; the first read time stays).

use std::time::Duration;

use dex::accounts::Actor;
use dex::hats::verify::VerifiedHat;
use dex::notices::{NewNotice, NoticeService, NoticeTarget};
use dex::testing::MemoryStore;

use crate::support::{World, status};

fn notices(w: &World) -> NoticeService<'_, MemoryStore> {
    NoticeService {
        store: &w.store,
        clock: &*w.clock,
    }
}

fn hat(address: &str) -> VerifiedHat {
    crate::support::verified_hat(address)
}

fn new(message: &str, target: serde_json::Value) -> NewNotice {
    serde_json::from_value(serde_json::json!({ "message": message, "target": target }))
        .expect("a notice body")
}

#[tokio::test]
async fn ids_start_at_one_and_each_posting_is_logged_on_its_own_chain() {
    let w = World::new().await;
    let first = notices(&w)
        .post(&Actor::Operator, new("hello", serde_json::json!({})))
        .await
        .unwrap();
    w.clock.advance(Duration::from_secs(1));
    let second = notices(&w)
        .post(
            &Actor::Operator,
            NewNotice {
                message: Some("again".into()),
                target: None,
            },
        )
        .await
        .unwrap();
    assert_eq!((first.id, second.id), (1, 2));
    assert_eq!(second.date_created - first.date_created, 1000);
    assert_eq!(w.kinds("notice:1").await, ["notice.posted"]);
    let entry = &w.history("notice:2").await[0];
    assert_eq!(entry.details["noticeId"], 2);
    assert_eq!(entry.details["message"], "again");
    assert_eq!(entry.actor, "dexctl");
}

#[tokio::test]
async fn racing_posts_take_every_id_from_one_exactly_once() {
    const POSTS: u64 = 50;
    let w = World::new().await;
    let service = notices(&w);
    let posts = (0..POSTS).map(|i| {
        service.post(
            &Actor::Operator,
            new(&format!("notice {i}"), serde_json::json!({})),
        )
    });
    let posted = futures_util::future::try_join_all(posts).await.unwrap();
    let mut ids: Vec<u64> = posted.iter().map(|n| n.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=POSTS).collect::<Vec<_>>());
    let all = service.all().await.unwrap();
    assert_eq!(
        all.iter().map(|n| n.id).collect::<Vec<_>>(),
        (1..=POSTS).rev().collect::<Vec<_>>(),
        "newest first"
    );
    for n in &posted {
        assert_eq!(w.kinds(n.subject()).await, ["notice.posted"], "{}", n.id);
    }
}

#[tokio::test]
async fn invalid_notices_are_refused_and_take_no_id() {
    let w = World::new().await;
    let service = notices(&w);
    status(
        service.post(&Actor::Operator, NewNotice::default()).await,
        400,
    );
    status(
        service
            .post(
                &Actor::Operator,
                new(&"m".repeat(4001), serde_json::json!({})),
            )
            .await,
        400,
    );
    let many: Vec<String> = (0..501).map(|i| format!("h{i}.hubat.net")).collect();
    status(
        service
            .post(
                &Actor::Operator,
                new("x", serde_json::json!({ "withHatAddress": many })),
            )
            .await,
        400,
    );
    // `null` is not a target, nor a selector (the schema says so too).
    assert!(serde_json::from_str::<NewNotice>(r#"{"message": "x", "target": null}"#).is_err());
    assert!(
        serde_json::from_str::<NewNotice>(r#"{"message": "x", "target": {"withEmail": null}}"#)
            .is_err()
    );
    let ok = service
        .post(
            &Actor::Operator,
            new(&"m".repeat(4000), serde_json::json!({})),
        )
        .await
        .unwrap();
    assert_eq!(ok.id, 1, "refused notices took no id");
}

#[tokio::test]
async fn a_hat_lists_what_is_addressed_to_it_newest_first() {
    let w = World::new().await;
    let service = notices(&w);
    let post = |message: &'static str, target: serde_json::Value| {
        let service = &service;
        let clock = w.clock.clone();
        async move {
            clock.advance(Duration::from_secs(1));
            service
                .post(&Actor::Operator, new(message, target))
                .await
                .unwrap()
        }
    };
    let all = post("everyone", serde_json::json!({})).await;
    let empty_lists = post(
        "everyone too",
        serde_json::json!({"withHatAddress": [], "withAnyRole": []}),
    )
    .await;
    let alice = post(
        "alice",
        serde_json::json!({"withHatAddress": [" Alice.hubat.net", "carol.hubat.net"]}),
    )
    .await;
    post(
        "bob",
        serde_json::json!({"withHatAddress": ["bob.hubat.net"]}),
    )
    .await;
    post("owners", serde_json::json!({"withAnyRole": ["owner"]})).await;
    post(
        "by e-mail",
        serde_json::json!({"withEmail": ["alice@example.com"]}),
    )
    .await;

    let listed = service.for_hat(&hat("alice.hubat.net")).await.unwrap();
    let ids: Vec<u64> = listed.iter().map(|i| i.notice.id).collect();
    assert_eq!(ids, [alice.id, empty_lists.id, all.id]);
    assert!(listed.iter().all(|i| i.read.is_none()));
    assert_eq!(listed[2].received, all.date_created);
    // Addresses are kept as DEX keeps HAT addresses.
    assert_eq!(
        listed[0].notice.target,
        NoticeTarget {
            with_hat_address: vec!["alice.hubat.net".into(), "carol.hubat.net".into()],
            ..NoticeTarget::default()
        }
    );
    let json = serde_json::to_value(&listed[0]).unwrap();
    assert!(json.get("read").is_none(), "{json}");
    assert_eq!(json["notice"]["dateCreated"], alice.date_created);

    let dave = service.for_hat(&hat("dave.hubat.net")).await.unwrap();
    assert_eq!(
        dave.iter().map(|i| i.notice.id).collect::<Vec<_>>(),
        [empty_lists.id, all.id]
    );
}

#[tokio::test]
async fn reading_keeps_the_first_time_and_is_logged_once_on_the_hats_chain() {
    let w = World::new().await;
    let service = notices(&w);
    let for_alice = service
        .post(
            &Actor::Operator,
            new(
                "alice",
                serde_json::json!({"withHatAddress": ["alice.hubat.net"]}),
            ),
        )
        .await
        .unwrap();
    let roles = service
        .post(
            &Actor::Operator,
            new("owners", serde_json::json!({"withAnyRole": ["owner"]})),
        )
        .await
        .unwrap();
    let alice = hat("alice.hubat.net");

    for not_hers in [
        roles.id.to_string(),
        "99".into(),
        "0".into(),
        "x".into(),
        "-1".into(),
    ] {
        status(service.mark_read(&alice, &not_hers).await, 404);
    }
    status(
        service
            .mark_read(&hat("bob.hubat.net"), &for_alice.id.to_string())
            .await,
        404,
    );

    w.clock.advance(Duration::from_secs(5));
    let first = service
        .mark_read(&alice, &for_alice.id.to_string())
        .await
        .unwrap();
    let read_at = first.read.expect("read");
    assert_eq!(read_at, for_alice.date_created + 5000);
    w.clock.advance(Duration::from_secs(5));
    let again = service
        .mark_read(&alice, &for_alice.id.to_string())
        .await
        .unwrap();
    assert_eq!(again.read, Some(read_at), "the first read time stays");
    let listed = service.for_hat(&alice).await.unwrap();
    assert_eq!(listed[0].read, Some(read_at));

    let history = w.history("hat:alice.hubat.net").await;
    let kinds: Vec<&str> = history.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["notice.read"]);
    assert_eq!(history[0].details["noticeId"], for_alice.id);
    assert_eq!(history[0].actor, "hat:alice.hubat.net");
    assert_eq!(w.kinds("notice:1").await, ["notice.posted"]);
}
