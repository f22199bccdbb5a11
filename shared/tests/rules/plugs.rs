//! Data plugs (docs/decisions.md §8, §13 "Data plugs"): registration, approval and the Data
//! Plugs figure, the listing without hashes, and connect on the fake HATs.

use std::time::Duration;

use dex::accounts::{Account, Actor};
use dex::hats::HatStore;
use dex::hats::calls::{HatCalls, HatSessions};
use dex::hats::register::RegisterHat;
use dex::plugs::service::{NewPlug, PlugChange, PlugService};
use dex::plugs::{DataPlug, PlugListing, PlugStore};
use dex::stats::{DATA_PLUGS, StatsStore};
use dex::testing::{Fail, MemorySecrets};

use crate::support::{World, hat_key, status};

const HAT: &str = "alice.hubat.net";
const PLUG_PASSWORD: &str = "the plug's HAT password";

fn plugs(w: &World) -> PlugService<'_, dex::testing::MemoryStore> {
    PlugService {
        store: &w.store,
        clock: &*w.clock,
        random: &*w.random,
        allow_ports: false,
    }
}

fn calls<'a>(
    w: &'a World,
    sessions: &'a HatSessions,
) -> HatCalls<'a, dex::testing::FakeHats, MemorySecrets> {
    HatCalls {
        http: &w.hats,
        secrets: &w.secrets,
        sessions,
        clock: &*w.clock,
        timeout: Duration::from_secs(5),
        budget: Duration::from_secs(20),
    }
}

fn new_plug(name: &str, owner: &Account) -> NewPlug {
    NewPlug {
        name: Some(name.into()),
        description: Some("syncs your calendar".into()),
        url: Some("https://plug.example.com".into()),
        illustration_url: Some("https://plug.example.com/logo.png".into()),
        provider_id: Some(owner.account_id.clone()),
        password: Some(PLUG_PASSWORD.into()),
    }
}

async fn plugs_counted(w: &World) -> i64 {
    w.store.figures(&[DATA_PLUGS]).await.unwrap()[DATA_PLUGS].0
}

/// A world with an owner, an approved plug and a registered HAT of a certified cluster.
async fn connected_world() -> (World, Account, DataPlug) {
    let w = World::new().await;
    let owner = w.account("owner@plugs.example", &[]).await;
    let plug = plugs(&w)
        .register(&Actor::Operator, new_plug("calendar", &owner))
        .await
        .unwrap();
    let plug = plugs(&w)
        .update(
            &Actor::Operator,
            &plug.id,
            PlugChange {
                approved: Some(true),
                ..PlugChange::default()
            },
        )
        .await
        .unwrap();
    w.cluster("hubat.net", &[]).await;
    w.hats.serve_key(HAT, &hat_key(0).public_pem);
    w.registration()
        .register(
            RegisterHat {
                hat_address: HAT.into(),
                application_id: None,
            },
            None,
        )
        .await
        .unwrap();
    // `World::cluster` certifies with these platform credentials.
    w.hats.add_hat(HAT, "platform", "platform password");
    (w, owner, plug)
}

#[tokio::test]
async fn a_plug_registers_unapproved_with_only_a_2a_bcrypt_hash() {
    let w = World::new().await;
    let owner = w.account("owner@plugs.example", &[]).await;
    let plug = plugs(&w)
        .register(&Actor::Operator, new_plug("calendar", &owner))
        .await
        .unwrap();
    assert!(!plug.approved);
    assert_eq!(plug.provider_id, owner.account_id);
    assert!(
        plug.password_hash.starts_with("$2a$10$"),
        "{}",
        plug.password_hash
    );
    assert!(bcrypt::verify(PLUG_PASSWORD, &plug.password_hash).unwrap());
    assert_eq!(
        w.store.get_plug(&plug.id).await.unwrap(),
        Some(plug.clone())
    );
    assert_eq!(w.kinds(plug.subject()).await, ["plug.registered"]);
    let logged = w.history(plug.subject()).await[0].details.to_string();
    assert!(
        !logged.contains("$2a$") && !logged.contains(PLUG_PASSWORD),
        "{logged}"
    );
    assert_eq!(plugs_counted(&w).await, 0);
    assert!(plugs(&w).approved().await.unwrap().is_empty());

    // Names are unique without regard to case.
    let err = status(
        plugs(&w)
            .register(&Actor::Operator, new_plug("Calendar", &owner))
            .await,
        409,
    );
    assert!(err.to_string().contains("Calendar"));
}

#[tokio::test]
async fn invalid_registrations_are_refused_with_every_reason() {
    let w = World::new().await;
    let owner = w.account("owner@plugs.example", &[]).await;
    let mut bad = new_plug("not a name!", &owner);
    bad.password = Some("short".into());
    bad.url = None;
    let err = status(plugs(&w).register(&Actor::Operator, bad).await, 400);
    let details = err.body().details.join(" | ");
    assert!(
        details.contains("name:")
            && details.contains("password:")
            && details.contains("url: required"),
        "{details}"
    );
    let mut long = new_plug("calendar", &owner);
    long.password = Some("x".repeat(72));
    status(plugs(&w).register(&Actor::Operator, long).await, 400);
    let mut nobody = new_plug("calendar", &owner);
    nobody.provider_id = Some("no-such-account".into());
    let err = status(plugs(&w).register(&Actor::Operator, nobody).await, 400);
    assert!(err.to_string().contains("providerId"));
    assert!(plugs(&w).all().await.unwrap().is_empty());
}

#[tokio::test]
async fn approval_moves_the_data_plugs_figure_exactly() {
    let (w, owner, plug) = connected_world().await;
    assert_eq!(plugs_counted(&w).await, 1);
    assert_eq!(
        w.kinds(plug.subject()).await,
        ["plug.registered", "plug.approved"]
    );
    // Approving again changes nothing and logs nothing.
    let same = plugs(&w)
        .update(
            &Actor::Operator,
            &plug.id,
            PlugChange {
                approved: Some(true),
                ..PlugChange::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(same.version, plug.version);
    assert_eq!(plugs_counted(&w).await, 1);
    let other = plugs(&w)
        .register(&Actor::Operator, new_plug("photos", &owner))
        .await
        .unwrap();
    assert_eq!(plugs_counted(&w).await, 1, "unapproved plugs do not count");
    plugs(&w)
        .update(
            &Actor::Operator,
            &plug.id,
            PlugChange {
                approved: Some(false),
                ..PlugChange::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(plugs_counted(&w).await, 0);
    assert!(plugs(&w).approved().await.unwrap().is_empty());
    assert_eq!(plugs(&w).all().await.unwrap().len(), 2);
    // A new password: a new hash, the log says only that it changed.
    let changed = plugs(&w)
        .update(
            &Actor::Operator,
            &other.id,
            PlugChange {
                password: Some("a brand new password".into()),
                ..PlugChange::default()
            },
        )
        .await
        .unwrap();
    assert!(bcrypt::verify("a brand new password", &changed.password_hash).unwrap());
    let entry = w.history(other.subject()).await.pop().unwrap();
    assert_eq!(entry.kind, "plug.updated");
    assert_eq!(entry.details["password"], "changed");
    status(
        plugs(&w)
            .update(&Actor::Operator, &other.id, PlugChange::default())
            .await,
        400,
    );
    status(
        plugs(&w)
            .update(
                &Actor::Operator,
                "unknown",
                PlugChange {
                    approved: Some(true),
                    ..PlugChange::default()
                },
            )
            .await,
        404,
    );
}

#[tokio::test]
async fn the_listing_shows_approved_plugs_and_no_hash() {
    let (w, owner, plug) = connected_world().await;
    let listing: Vec<PlugListing> = plugs(&w)
        .approved()
        .await
        .unwrap()
        .iter()
        .map(PlugListing::from)
        .collect();
    let json = serde_json::to_value(&listing).unwrap();
    assert_eq!(json[0]["plug"]["uuid"], plug.id.as_str());
    assert_eq!(json[0]["plug"]["passwordHash"], "");
    assert_eq!(json[0]["provider"]["email"], owner.username.as_str());
    assert_eq!(json[0]["provider"]["password"], "");
    assert_eq!(json[0]["provider"]["emailConfirmed"], true);
    assert!(!json.to_string().contains("$2"), "{json}");
}

#[tokio::test]
async fn connect_makes_the_user_on_the_hat_then_records_it_on_the_hats_chain() {
    let (w, owner, plug) = connected_world().await;
    let sessions = HatSessions::new();
    let (_, message) = plugs(&w)
        .connect(&calls(&w, &sessions), &owner, &plug.id, Some(HAT))
        .await
        .unwrap();
    assert_eq!(message, format!("calendar connected to {HAT}"));
    let users = w.hats.users(HAT);
    assert_eq!(users.len(), 1);
    let (user, enabled) = &users[0];
    assert!(enabled);
    assert_eq!(user["email"], "calendar");
    assert_eq!(user["pass"], plug.password_hash.as_str());
    assert_eq!(user["role"], "datacredit");
    assert_eq!(user["roles"][0]["detail"], "calendar");
    assert!(
        w.store
            .get_connection(&plug.id, HAT)
            .await
            .unwrap()
            .is_some()
    );
    let hat_kinds = w.kinds(format!("hat:{HAT}")).await;
    assert_eq!(hat_kinds, ["hat.registered", "plug.connected"]);
    assert!(
        !w.kinds(plug.subject())
            .await
            .contains(&"plug.connected".to_owned())
    );

    // Again (the owner disabled the user meanwhile): re-enabled, nothing new anywhere.
    let id = user["userId"].as_str().unwrap().to_owned();
    w.hats.set_user_enabled(HAT, &id, false);
    plugs(&w)
        .connect(&calls(&w, &sessions), &owner, &plug.id, Some(HAT))
        .await
        .unwrap();
    let users = w.hats.users(HAT);
    assert_eq!(users.len(), 1);
    assert!(users[0].1);
    assert_eq!(
        w.kinds(format!("hat:{HAT}")).await,
        ["hat.registered", "plug.connected"]
    );
}

#[tokio::test]
async fn connect_refusals_follow_the_contract() {
    let (w, owner, plug) = connected_world().await;
    let sessions = HatSessions::new();
    let c = calls(&w, &sessions);
    let stranger = w.account("someone@else.example", &[]).await;
    let admin = w.account("admin@dex.example", &["admin"]).await;
    status(
        plugs(&w).connect(&c, &stranger, &plug.id, Some(HAT)).await,
        403,
    );
    status(
        plugs(&w).connect(&c, &owner, "unknown", Some(HAT)).await,
        404,
    );
    status(plugs(&w).connect(&c, &owner, &plug.id, None).await, 400);
    status(
        plugs(&w)
            .connect(&c, &owner, &plug.id, Some("bob.hubat.net"))
            .await,
        400,
    );
    status(
        plugs(&w)
            .connect(&c, &owner, &plug.id, Some("Not A Hat"))
            .await,
        400,
    );
    let unapproved = plugs(&w)
        .register(&Actor::Operator, new_plug("photos", &owner))
        .await
        .unwrap();
    status(
        plugs(&w)
            .connect(&c, &owner, &unapproved.id, Some(HAT))
            .await,
        403,
    );
    assert!(w.hats.api_calls().is_empty(), "no refusal calls the HAT");
    // An admin may connect any plug.
    plugs(&w)
        .connect(&c, &admin, &plug.id, Some(HAT))
        .await
        .unwrap();
    assert!(w.store.get_hat(HAT).await.unwrap().is_some());
}

#[tokio::test(start_paused = true)]
async fn a_failing_hat_leaves_nothing_recorded() {
    let (w, owner, plug) = connected_world().await;
    for (route, fail, want) in [
        ("GET /users/access_token", Fail::Status(500), 502),
        ("POST /users/user", Fail::Status(500), 502),
        ("POST /users/user", Fail::Slow(Duration::from_secs(60)), 504),
    ] {
        w.hats.clear_failures();
        w.hats.fail(HAT, route, fail, None);
        let sessions = HatSessions::new();
        let err = status(
            plugs(&w)
                .connect(&calls(&w, &sessions), &owner, &plug.id, Some(HAT))
                .await,
            want,
        );
        assert!(err.to_string().contains(HAT), "{err}");
        assert!(
            w.store
                .get_connection(&plug.id, HAT)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(w.kinds(format!("hat:{HAT}")).await, ["hat.registered"]);
    }
    // The user exists (an earlier attempt), but finding or enabling it fails.
    w.hats.clear_failures();
    let sessions = HatSessions::new();
    plugs(&w)
        .connect(&calls(&w, &sessions), &owner, &plug.id, Some(HAT))
        .await
        .unwrap();
    let recorded = w.kinds(format!("hat:{HAT}")).await;
    for route in ["GET /users/user", "PUT /users/user"] {
        w.hats.clear_failures();
        w.hats.fail(HAT, route, Fail::Status(503), None);
        let err = status(
            plugs(&w)
                .connect(&calls(&w, &sessions), &owner, &plug.id, Some(HAT))
                .await,
            502,
        );
        let step = if route.starts_with("GET") {
            "find user"
        } else {
            "enable user"
        };
        assert!(err.to_string().contains(step), "{err}");
        assert_eq!(w.kinds(format!("hat:{HAT}")).await, recorded);
    }
}
