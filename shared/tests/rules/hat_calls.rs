//! DEX calling HATs (docs/decisions.md §6): login reuse, one re-login on 401, retries on
//! transport errors only, and one deadline for a request's HAT calls; on the fake HATs, with
//! tokio's paused clock where time matters.

use std::sync::Arc;
use std::time::Duration;

use dex::hats::address::HatAddress;
use dex::hats::calls::{EnsuredUser, HatCalls, HatSessions, HatUser, MAX_ATTEMPTS, UserRole};
use dex::hats::clusters::PlatformCredentials;
use dex::ports::{Clock, SecretStore};
use dex::testing::{Fail, FakeHats, MemorySecrets, SettableClock};

const HAT: &str = "alice.hubat.net";
const SECRET: &str = "dex/clusters/hubat.net";

struct Rig {
    hats: FakeHats,
    secrets: MemorySecrets,
    sessions: HatSessions,
    clock: Arc<SettableClock>,
    address: HatAddress,
}

impl Rig {
    async fn new() -> Self {
        let hats = FakeHats::new();
        hats.add_hat(HAT, "hatdex.org", "platform + secret");
        let secrets = MemorySecrets::new();
        secrets
            .put_json(
                SECRET,
                &PlatformCredentials {
                    username: "hatdex.org".into(),
                    password: "platform + secret".into(),
                },
            )
            .await
            .unwrap();
        Self {
            hats,
            secrets,
            sessions: HatSessions::new(),
            clock: Arc::new(SettableClock::at_millis(1_700_000_000_000)),
            address: HatAddress::parse(HAT, false).unwrap(),
        }
    }

    fn calls(&self, budget_secs: u64) -> HatCalls<'_, FakeHats, MemorySecrets> {
        HatCalls {
            http: &self.hats,
            secrets: &self.secrets,
            sessions: &self.sessions,
            clock: &*self.clock,
            timeout: Duration::from_secs(5),
            budget: Duration::from_secs(budget_secs),
        }
    }

    fn routes(&self) -> Vec<String> {
        self.hats.api_calls_to(HAT)
    }
}

fn plug_user(name: &str) -> HatUser {
    HatUser {
        user_id: "5c1a3e7e-0d7c-4a43-9d4c-0d6f4b0f0a01".into(),
        email: name.into(),
        pass: Some("$2a$10$abcdefghijklmnopqrstuu".into()),
        name: name.into(),
        role: "datacredit".into(),
        roles: vec![UserRole {
            role: "datacredit".into(),
            detail: Some(name.into()),
        }],
    }
}

#[tokio::test]
async fn one_login_serves_many_requests_with_the_credentials_url_encoded() {
    let rig = Rig::new().await;
    let calls = rig.calls(20);
    for _ in 0..3 {
        // Each request has its own deadline and session; the token is the container's.
        let session = calls.session(&rig.address, SECRET, calls.deadline());
        assert_eq!(session.find_user("nobody").await.unwrap(), None);
    }
    assert_eq!(rig.hats.logins(HAT), 1);
    let login = &rig.hats.api_calls()[0];
    assert_eq!(login.route(), "GET /users/access_token");
    assert_eq!(login.header("password"), Some("platform%20%2B%20secret"));
    // Every API call carries the HAT token, never the password.
    for call in &rig.hats.api_calls()[1..] {
        assert!(call.header("x-auth-token").is_some() && call.header("password").is_none());
    }
}

#[tokio::test]
async fn an_expiring_token_is_replaced_by_a_new_login() {
    let rig = Rig::new().await;
    let now = rig.clock.now().timestamp();
    rig.hats.set_token_exp(now + 120);
    let calls = rig.calls(20);
    let session = calls.session(&rig.address, SECRET, calls.deadline());
    session.find_user("x").await.unwrap();
    rig.clock.advance(Duration::from_secs(50));
    session.find_user("x").await.unwrap();
    assert_eq!(rig.hats.logins(HAT), 1, "still a minute before exp");
    rig.clock.advance(Duration::from_secs(20));
    session.find_user("x").await.unwrap();
    assert_eq!(
        rig.hats.logins(HAT),
        2,
        "in its last minute the token is not used"
    );
}

#[tokio::test]
async fn a_401_costs_exactly_one_new_login() {
    let rig = Rig::new().await;
    let calls = rig.calls(20);
    let session = calls.session(&rig.address, SECRET, calls.deadline());
    session.find_user("x").await.unwrap();
    rig.hats.revoke_tokens(HAT);
    session.find_user("x").await.unwrap();
    assert_eq!(rig.hats.logins(HAT), 2);
    assert_eq!(
        rig.routes(),
        [
            "GET /users/access_token",
            "GET /users/user",
            "GET /users/user",
            "GET /users/access_token",
            "GET /users/user"
        ]
    );
    // A HAT that keeps answering 401 gets one more login, then DEX gives up: 502.
    rig.hats
        .fail(HAT, "GET /users/user", Fail::Status(401), None);
    let err = session.find_user("x").await.unwrap_err();
    assert_eq!(err.status(), 502);
    assert!(
        err.to_string().contains(HAT) && err.to_string().contains("find user"),
        "{err}"
    );
    assert_eq!(rig.hats.logins(HAT), 3);
}

#[tokio::test]
async fn refused_platform_credentials_name_the_login_step() {
    let rig = Rig::new().await;
    rig.hats.add_hat(HAT, "hatdex.org", "another password");
    let calls = rig.calls(20);
    let session = calls.session(&rig.address, SECRET, calls.deadline());
    let err = session.find_user("x").await.unwrap_err();
    assert_eq!(err.status(), 502);
    let text = err.to_string();
    assert!(text.contains("login") && text.contains(HAT), "{text}");
    assert!(
        !text.contains("platform + secret"),
        "the password leaked: {text}"
    );
    assert_eq!(
        rig.routes(),
        ["GET /users/access_token"],
        "a refusal is not retried"
    );
}

#[tokio::test(start_paused = true)]
async fn transport_errors_are_retried_with_backoff_and_bounded() {
    let rig = Rig::new().await;
    let calls = rig.calls(20);
    let session = calls.session(&rig.address, SECRET, calls.deadline());
    rig.hats
        .fail(HAT, "POST /users/user", Fail::Unreachable, Some(1));
    rig.hats
        .fail(HAT, "POST /users/user", Fail::Dropped, Some(1));
    let started = tokio::time::Instant::now();
    assert_eq!(
        session.ensure_user(&plug_user("plug")).await.unwrap(),
        EnsuredUser::Created
    );
    // 100 ms, then 200 ms of backoff.
    assert!(started.elapsed() >= Duration::from_millis(300));
    let creates = rig
        .routes()
        .iter()
        .filter(|r| *r == "POST /users/user")
        .count();
    assert_eq!(creates, 3);

    rig.hats
        .fail(HAT, "PUT /users/user", Fail::Unreachable, None);
    let err = session.ensure_user(&plug_user("plug")).await.unwrap_err();
    assert_eq!(err.status(), 502);
    assert!(
        err.to_string().contains("enable user") && err.to_string().contains("could not be reached"),
        "{err}"
    );
    let enables = rig
        .routes()
        .iter()
        .filter(|r| r.starts_with("PUT "))
        .count();
    assert_eq!(enables, MAX_ATTEMPTS as usize);
}

#[tokio::test(start_paused = true)]
async fn answers_and_timeouts_are_not_retried() {
    let rig = Rig::new().await;
    let calls = rig.calls(20);
    let session = calls.session(&rig.address, SECRET, calls.deadline());
    rig.hats
        .fail(HAT, "POST /users/user", Fail::Status(500), Some(1));
    let err = session.create_user(&plug_user("plug")).await.unwrap_err();
    assert_eq!(err.status(), 502);
    assert!(
        err.to_string().contains("create user: answered 500"),
        "{err}"
    );

    rig.hats.fail(
        HAT,
        "POST /users/user",
        Fail::Slow(Duration::from_secs(30)),
        Some(1),
    );
    let started = tokio::time::Instant::now();
    let err = session.create_user(&plug_user("plug")).await.unwrap_err();
    assert_eq!(err.status(), 504);
    assert!(err.to_string().contains("create user"), "{err}");
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(5),
        "one attempt, its timeout"
    );
    let creates = rig
        .routes()
        .iter()
        .filter(|r| *r == "POST /users/user")
        .count();
    assert_eq!(creates, 2);
    assert!(rig.hats.users(HAT).is_empty());
}

#[tokio::test(start_paused = true)]
async fn one_deadline_covers_all_the_calls_of_a_request() {
    let rig = Rig::new().await;
    rig.hats
        .fail(HAT, "", Fail::Slow(Duration::from_secs(4)), None);
    let calls = rig.calls(10);
    let started = tokio::time::Instant::now();
    let session = calls.session(&rig.address, SECRET, calls.deadline());
    // Login 4 s and create 4 s fit the 10 s deadline.
    assert_eq!(
        session.ensure_user(&plug_user("plug")).await.unwrap(),
        EnsuredUser::Created
    );
    // The next call of the same request gets only the 2 s left (less than its 5 s timeout).
    let err = session.ensure_user(&plug_user("plug")).await.unwrap_err();
    assert_eq!(err.status(), 504, "{err}");
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    // Nothing more is attempted once the deadline is spent.
    let before = rig.routes().len();
    let err = session.find_user("plug").await.unwrap_err();
    assert!(err.to_string().contains("no time left"), "{err}");
    assert_eq!(rig.routes().len(), before);
    // A new request has a new deadline.
    let fresh = calls.session(&rig.address, SECRET, calls.deadline());
    rig.hats.clear_failures();
    assert!(matches!(
        fresh.ensure_user(&plug_user("plug")).await.unwrap(),
        EnsuredUser::Enabled(_)
    ));
}

#[tokio::test]
async fn ensuring_a_user_twice_creates_one_and_re_enables_it() {
    let rig = Rig::new().await;
    let calls = rig.calls(20);
    let session = calls.session(&rig.address, SECRET, calls.deadline());
    assert_eq!(
        session.ensure_user(&plug_user("plug")).await.unwrap(),
        EnsuredUser::Created
    );
    let id = rig.hats.users(HAT)[0].0["userId"]
        .as_str()
        .unwrap()
        .to_owned();
    rig.hats.set_user_enabled(HAT, &id, false);
    let mut again = plug_user("Plug");
    again.user_id = "another-id".into();
    assert_eq!(
        session.ensure_user(&again).await.unwrap(),
        EnsuredUser::Enabled(id.clone())
    );
    // A UUID goes into the path as it is (HATs match the segment).
    assert!(
        rig.routes()
            .contains(&format!("PUT /users/user/{id}/enable")),
        "{:?}",
        rig.routes()
    );
    let users = rig.hats.users(HAT);
    assert_eq!(users.len(), 1);
    assert!(users[0].1, "re-enabled");
}

#[tokio::test]
async fn the_credentials_are_read_once_per_container_and_cluster() {
    let rig = Rig::new().await;
    let calls = rig.calls(20);
    let session = calls.session(&rig.address, SECRET, calls.deadline());
    session.find_user("x").await.unwrap();
    // The secret changes (or becomes unreadable): this container keeps what it read.
    rig.secrets.put_raw(SECRET, "not json");
    rig.hats.revoke_tokens(HAT);
    session.find_user("x").await.unwrap();
    assert_eq!(rig.hats.logins(HAT), 2);
    // A container that has not read it yet fails on it: 500, the text logged only.
    let other = HatSessions::new();
    let calls2 = HatCalls {
        sessions: &other,
        ..rig.calls(20)
    };
    let err = calls2
        .session(&rig.address, SECRET, calls2.deadline())
        .find_user("x")
        .await
        .unwrap_err();
    assert_eq!(err.status(), 500);
}

#[tokio::test]
async fn a_cluster_without_its_credentials_secret_answers_503_naming_the_hat() {
    let rig = Rig::new().await;
    let calls = rig.calls(20);
    let session = calls.session(&rig.address, "dex/clusters/nowhere.net", calls.deadline());
    let err = session.find_user("x").await.unwrap_err();
    assert_eq!(err.status(), 503, "{err}");
    let cause = err.body().cause;
    assert!(cause.contains(HAT) && cause.contains("certify"), "{cause}");
    assert!(rig.routes().is_empty(), "no HAT call without credentials");
    assert_eq!(rig.hats.logins(HAT), 0);
    // Once an administrator certifies the cluster again, the same container logs in.
    rig.secrets
        .put_json(
            "dex/clusters/nowhere.net",
            &PlatformCredentials {
                username: "hatdex.org".into(),
                password: "platform + secret".into(),
            },
        )
        .await
        .unwrap();
    session.find_user("x").await.unwrap();
    assert_eq!(rig.hats.logins(HAT), 1);
}

#[tokio::test]
async fn data_debits_and_applications_go_through_the_same_session() {
    let rig = Rig::new().await;
    let calls = rig.calls(20);
    let session = calls.session(&rig.address, SECRET, calls.deadline());
    let debit = serde_json::json!({"dataDebitKey": "offer-1", "purpose": "x"});
    assert!(matches!(
        session.create_data_debit("offer-1", &debit).await.unwrap(),
        dex::hats::calls::DebitCreated::Created(_)
    ));
    assert!(matches!(
        session.create_data_debit("offer-1", &debit).await.unwrap(),
        dex::hats::calls::DebitCreated::Refused(_)
    ));
    assert_eq!(
        session.get_data_debit("offer-1").await.unwrap(),
        Some(debit)
    );
    assert_eq!(session.get_data_debit("other").await.unwrap(), None);
    session
        .update_application(&serde_json::json!({"name": "app"}))
        .await
        .unwrap();
    assert_eq!(rig.hats.logins(HAT), 1);
}
