//! The DynamoDB store against DynamoDB Local, without HTTP: accounts (unique usernames,
//! optimistic concurrency) and the chained transaction log (docs/decisions.md §11). Every test uses
//! its own accounts, subjects, actors and kinds, so tests run concurrently and never depend
//! on what else is in the table.

use std::collections::BTreeSet;

use dex::DexError;
use dex::accounts::Account;
use dex::roles::Role;
use dex::store::{AccountStore, DynamoStore, LogStore, PageRequest};
use dex::txlog::{GENESIS_HASH, LogEntry, LogEvent, LogFilter, verify_chain};
use dex_tests::support;
use serde_json::json;

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn account(username: &str, roles: Vec<Role>) -> Account {
    let now = now_millis();
    Account {
        account_id: uuid::Uuid::new_v4().to_string(),
        username: username.to_owned(),
        // The store keeps whatever hash it is given; no need for argon2's work here.
        password_hash:
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"
                .into(),
        roles,
        disabled: false,
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

fn created(a: &Account) -> LogEvent {
    LogEvent::new(
        a.subject(),
        "account.created",
        "test:store",
        json!({ "username": a.username }),
    )
}

/// A subject's whole history, oldest first, over pages of `limit`.
async fn history(store: &DynamoStore, subject: &str, limit: i32) -> Vec<LogEntry> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(limit);
    for _ in 0..1_000 {
        let got = store
            .subject_history(subject, page.clone())
            .await
            .expect("subject history");
        assert!(got.items.len() <= limit as usize);
        out.extend(got.items);
        match got.cursor {
            None => return out,
            Some(c) => {
                page = PageRequest::parse(Some(&limit.to_string()), Some(&c))
                    .expect("our own cursor parses")
            }
        }
    }
    panic!("history of {subject} did not end");
}

/// Every entry `query_log` returns for `filter`, newest first, over pages of `limit`.
async fn query_all(store: &DynamoStore, filter: &LogFilter, limit: i32) -> Vec<LogEntry> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(limit);
    for _ in 0..10_000 {
        let got = store
            .query_log(filter, page.clone())
            .await
            .expect("query_log");
        assert!(
            got.items.len() <= limit as usize,
            "a page of {} over limit {limit}",
            got.items.len()
        );
        out.extend(got.items);
        match got.cursor {
            None => return out,
            Some(c) => {
                page = PageRequest::parse(Some(&limit.to_string()), Some(&c))
                    .expect("our own cursor parses")
            }
        }
    }
    panic!("query {filter:?} did not end");
}

fn seqs(entries: &[LogEntry]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

// ---- accounts ----------------------------------------------------------------------------

#[tokio::test]
async fn insert_get_and_find_accounts() {
    let store = support::store().await;
    let username = format!("{}@Dex.Test", unique("Mixed.Case"));
    let a = account(
        &username,
        vec![Role::Marketplace, Role::Provisioner("hubat.net".into())],
    );
    store.insert_account(&a, created(&a)).await.expect("insert");

    let got = store
        .get_account(&a.account_id)
        .await
        .unwrap()
        .expect("get by id");
    assert_eq!(got, a, "the account reads back exactly as written");
    for variant in [
        username.clone(),
        username.to_lowercase(),
        username.to_uppercase(),
        format!("  {username}\t"),
    ] {
        let found = store.find_account_by_username(&variant).await.unwrap();
        assert_eq!(
            found.as_ref().map(|f| f.account_id.as_str()),
            Some(a.account_id.as_str()),
            "find {variant:?}"
        );
    }
    assert!(
        store
            .get_account(&uuid::Uuid::new_v4().to_string())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_account_by_username(&unique("nobody"))
            .await
            .unwrap()
            .is_none()
    );

    // The creation was logged with it, as the first entry of the account's chain.
    let log = history(&store, &a.subject(), 10).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].kind, "account.created");
    assert_eq!(log[0].seq, 1);
    assert_eq!(log[0].prev_hash, GENESIS_HASH);
    assert_eq!(verify_chain(&log), Ok(()));
}

#[tokio::test]
async fn duplicate_usernames_conflict_and_leave_one_account() {
    let store = support::store().await;
    let username = format!("{}@dex.test", unique("dup"));
    let first = account(&username, vec![]);
    store
        .insert_account(&first, created(&first))
        .await
        .expect("first insert");

    for variant in [username.clone(), username.to_uppercase()] {
        let second = account(&variant, vec![Role::Admin]);
        match store.insert_account(&second, created(&second)).await {
            Err(DexError::Conflict(_)) => {}
            other => panic!("a second {variant:?} gave {other:?}, not Conflict"),
        }
        assert!(
            store
                .get_account(&second.account_id)
                .await
                .unwrap()
                .is_none(),
            "the refused account exists"
        );
        assert!(
            history(&store, &second.subject(), 10).await.is_empty(),
            "the refused creation was logged"
        );
    }
    let found = store
        .find_account_by_username(&username)
        .await
        .unwrap()
        .expect("the first account");
    assert_eq!(found, first);

    // Concurrent inserts of one new username: exactly one wins.
    let username = format!("{}@dex.test", unique("race"));
    let contenders: Vec<Account> = (0..8).map(|_| account(&username, vec![])).collect();
    let results = futures::future::join_all(contenders.iter().map(|a| {
        let store = store.clone();
        let a = a.clone();
        async move { store.insert_account(&a, created(&a)).await }
    }))
    .await;
    let winners: Vec<&Account> = contenders
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_ok())
        .map(|(a, _)| a)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for r in &results {
        assert!(
            r.is_ok() || matches!(r, Err(DexError::Conflict(_))),
            "{r:?}"
        );
    }
    let found = store
        .find_account_by_username(&username)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.account_id, winners[0].account_id);
    for loser in contenders
        .iter()
        .filter(|a| a.account_id != winners[0].account_id)
    {
        assert!(
            store
                .get_account(&loser.account_id)
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn stale_updates_conflict_and_change_nothing() {
    let store = support::store().await;
    let a = account(
        &format!("{}@dex.test", unique("stale")),
        vec![Role::Marketplace],
    );
    store.insert_account(&a, created(&a)).await.unwrap();

    let mut v2 = a.clone();
    v2.roles = vec![Role::Admin];
    v2.version = 2;
    v2.updated_at += 1;
    let change = |kind: &str| vec![LogEvent::new(a.subject(), kind, "test:store", json!({}))];
    store
        .update_account(&v2, 1, change("account.roles-changed"))
        .await
        .expect("update at the right version");
    assert_eq!(store.get_account(&a.account_id).await.unwrap().unwrap(), v2);

    // A writer that read version 1 loses.
    let mut stale = a.clone();
    stale.disabled = true;
    stale.version = 2;
    match store
        .update_account(&stale, 1, change("account.disabled"))
        .await
    {
        Err(DexError::Conflict(_)) => {}
        other => panic!("a stale update gave {other:?}, not Conflict"),
    }
    assert_eq!(
        store.get_account(&a.account_id).await.unwrap().unwrap(),
        v2,
        "the stale update changed the account"
    );
    let log = history(&store, &a.subject(), 10).await;
    assert_eq!(
        log.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["account.created", "account.roles-changed"]
    );
    assert_eq!(verify_chain(&log), Ok(()));

    // Updating an account that does not exist is refused too, and creates nothing.
    let ghost = account(&format!("{}@dex.test", unique("ghost")), vec![]);
    assert!(store.update_account(&ghost, 1, vec![]).await.is_err());
    assert!(
        store
            .get_account(&ghost.account_id)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn list_accounts_pages_through_everything_once() {
    let store = support::store().await;
    let prefix = unique("list");
    let mine: Vec<Account> = (0..3)
        .map(|i| account(&format!("{prefix}-{i}@dex.test"), vec![]))
        .collect();
    for a in &mine {
        store.insert_account(a, created(a)).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut page = PageRequest::first(7);
    for _ in 0..100_000 {
        let got = store.list_accounts(page.clone()).await.unwrap();
        assert!(got.items.len() <= 7);
        seen.extend(got.items.into_iter().map(|a| a.account_id));
        match got.cursor {
            None => break,
            Some(c) => page = PageRequest::parse(Some("7"), Some(&c)).unwrap(),
        }
    }
    let unique_ids: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique_ids.len(), seen.len(), "an account was listed twice");
    for a in &mine {
        assert!(unique_ids.contains(&a.account_id), "{} missing", a.username);
    }
}

// ---- the log -----------------------------------------------------------------------------

#[tokio::test]
async fn concurrent_appends_to_one_subject_form_one_chain() {
    let store = support::store().await;
    let subject = unique("test:chain");
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let store = store.clone();
            let subject = subject.clone();
            tokio::spawn(async move {
                store
                    .append_log(vec![LogEvent::new(
                        subject,
                        "test.appended",
                        "test:store",
                        json!({ "i": i }),
                    )])
                    .await
            })
        })
        .collect();
    let mut returned = Vec::new();
    for task in futures::future::join_all(tasks).await {
        let entries = task
            .expect("task")
            .unwrap_or_else(|e| panic!("append failed: {e:?}"));
        assert_eq!(entries.len(), 1);
        returned.push(entries[0].clone());
    }
    let mut returned_seqs = seqs(&returned);
    returned_seqs.sort();
    assert_eq!(
        returned_seqs,
        (1..=30).collect::<Vec<_>>(),
        "appends returned duplicate or missing seqs"
    );

    let log = history(&store, &subject, 7).await;
    assert_eq!(
        seqs(&log),
        (1..=30).collect::<Vec<_>>(),
        "gaps or forks in the stored chain"
    );
    assert_eq!(verify_chain(&log), Ok(()));
    let mut is: Vec<i64> = log
        .iter()
        .map(|e| e.details["i"].as_i64().unwrap())
        .collect();
    is.sort();
    assert_eq!(
        is,
        (0..30).collect::<Vec<_>>(),
        "an append is missing or doubled"
    );
    // What each append returned is exactly what was stored.
    for entry in &returned {
        assert_eq!(&log[entry.seq as usize - 1], entry);
    }
}

#[tokio::test]
async fn one_commit_chains_several_events_of_several_subjects() {
    let store = support::store().await;
    let (a, b) = (unique("test:multi-a"), unique("test:multi-b"));
    store
        .append_log(vec![LogEvent::new(&a, "test.one", "test:store", json!({}))])
        .await
        .unwrap();
    let entries = store
        .append_log(vec![
            LogEvent::new(&a, "test.two", "test:store", json!({})),
            LogEvent::new(&b, "test.one", "test:store", json!({})),
            LogEvent::new(&a, "test.three", "test:store", json!({})),
        ])
        .await
        .unwrap();
    assert_eq!(seqs(&entries), [2, 1, 3]);
    let log_a = history(&store, &a, 2).await;
    assert_eq!(
        log_a.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["test.one", "test.two", "test.three"]
    );
    assert_eq!(verify_chain(&log_a), Ok(()));
    assert_eq!(verify_chain(&history(&store, &b, 2).await), Ok(()));
}

#[tokio::test]
async fn query_log_filters_and_paginates_exactly() {
    let store = support::store().await;
    let subject = unique("test:subject");
    let other_subject = unique("test:other");
    let actor = unique("test:actor");
    let other_actor = unique("test:actor-b");
    let kind = unique("test.kind");
    let other_kind = unique("test.kind-b");

    // 12 entries: subject/actor/kind combinations in a known order, a few ms apart.
    let plan: Vec<(&String, &String, &String)> = (0..12)
        .map(|i| {
            let s = if i % 3 == 2 { &other_subject } else { &subject };
            let a = if i % 2 == 1 { &other_actor } else { &actor };
            let k = if i % 4 == 3 { &other_kind } else { &kind };
            (s, a, k)
        })
        .collect();
    let mut written = Vec::new();
    for (i, (s, a, k)) in plan.iter().enumerate() {
        let mut e = store
            .append_log(vec![LogEvent::new(
                s.as_str(),
                k,
                a.as_str(),
                json!({ "i": i }),
            )])
            .await
            .unwrap();
        written.push(e.remove(0));
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    // Newest first, as query_log answers.
    let expect = |pred: &dyn Fn(&LogEntry) -> bool| -> Vec<i64> {
        let mut v: Vec<&LogEntry> = written.iter().filter(|e| pred(e)).collect();
        v.sort_by_key(|e| std::cmp::Reverse((e.at, e.details["i"].as_i64().unwrap())));
        v.iter().map(|e| e.details["i"].as_i64().unwrap()).collect()
    };
    let got = |entries: Vec<LogEntry>| -> Vec<i64> {
        entries
            .iter()
            .map(|e| e.details["i"].as_i64().unwrap())
            .collect()
    };
    // Entries within one millisecond come in no defined order: compare as sets, plus the
    // time ordering.
    let check = |name: &str, entries: Vec<LogEntry>, want: Vec<i64>| {
        assert!(
            entries.windows(2).all(|w| w[0].at >= w[1].at),
            "{name}: not newest first"
        );
        let got_set: Vec<i64> = {
            let mut g = got(entries.clone());
            g.sort();
            g
        };
        let want_set: Vec<i64> = {
            let mut w = want.clone();
            w.sort();
            w
        };
        assert_eq!(
            got_set,
            want_set,
            "{name}: got {:?}, want {want:?}",
            got(entries)
        );
        if entries.iter().map(|e| e.at).collect::<BTreeSet<_>>().len() == entries.len() {
            assert_eq!(got(entries), want, "{name}: order");
        }
    };

    for limit in [1, 2, 5, 50] {
        let f = LogFilter {
            subject: Some(subject.clone()),
            ..Default::default()
        };
        check(
            &format!("subject, limit {limit}"),
            query_all(&store, &f, limit).await,
            expect(&|e| e.subject == subject),
        );
        let f = LogFilter {
            actor: Some(actor.clone()),
            ..Default::default()
        };
        check(
            &format!("actor, limit {limit}"),
            query_all(&store, &f, limit).await,
            expect(&|e| e.actor == actor),
        );
        let f = LogFilter {
            kind: Some(kind.clone()),
            ..Default::default()
        };
        check(
            &format!("kind, limit {limit}"),
            query_all(&store, &f, limit).await,
            expect(&|e| e.kind == kind),
        );
    }
    // Combinations.
    let f = LogFilter {
        subject: Some(subject.clone()),
        actor: Some(actor.clone()),
        ..Default::default()
    };
    check(
        "subject+actor",
        query_all(&store, &f, 2).await,
        expect(&|e| e.subject == subject && e.actor == actor),
    );
    let f = LogFilter {
        actor: Some(other_actor.clone()),
        kind: Some(other_kind.clone()),
        ..Default::default()
    };
    check(
        "actor+kind",
        query_all(&store, &f, 1).await,
        expect(&|e| e.actor == other_actor && e.kind == other_kind),
    );
    let f = LogFilter {
        subject: Some(other_subject.clone()),
        kind: Some(kind.clone()),
        ..Default::default()
    };
    check(
        "subject+kind",
        query_all(&store, &f, 3).await,
        expect(&|e| e.subject == other_subject && e.kind == kind),
    );

    // Time ranges (inclusive bounds) on every access path.
    let (from, to) = (written[3].at, written[8].at);
    let in_range = |e: &LogEntry| e.at >= from && e.at <= to;
    for limit in [1, 4, 50] {
        let f = LogFilter {
            subject: Some(subject.clone()),
            from: Some(from),
            to: Some(to),
            ..Default::default()
        };
        check(
            "subject+range",
            query_all(&store, &f, limit).await,
            expect(&|e| e.subject == subject && in_range(e)),
        );
        let f = LogFilter {
            actor: Some(actor.clone()),
            from: Some(from),
            to: Some(to),
            ..Default::default()
        };
        check(
            "actor+range",
            query_all(&store, &f, limit).await,
            expect(&|e| e.actor == actor && in_range(e)),
        );
        let f = LogFilter {
            kind: Some(kind.clone()),
            from: Some(from),
            to: Some(to),
            ..Default::default()
        };
        check(
            "kind+range",
            query_all(&store, &f, limit).await,
            expect(&|e| e.kind == kind && in_range(e)),
        );
    }
    let f = LogFilter {
        actor: Some(actor.clone()),
        from: Some(to + 1_000_000),
        ..Default::default()
    };
    assert!(query_all(&store, &f, 5).await.is_empty());
    let f = LogFilter {
        from: Some(to),
        to: Some(from),
        ..Default::default()
    };
    assert!(matches!(
        store.query_log(&f, PageRequest::first(5)).await,
        Err(DexError::BadRequest { .. })
    ));

    // A time range alone (other tests write too): ours are all there, and nothing outside.
    let f = LogFilter {
        from: Some(from),
        to: Some(to),
        ..Default::default()
    };
    let range = query_all(&store, &f, 3).await;
    assert!(range.iter().all(in_range), "an entry outside the range");
    let ours: Vec<i64> = {
        let mut v: Vec<i64> = range
            .iter()
            .filter(|e| e.subject == subject || e.subject == other_subject)
            .map(|e| e.details["i"].as_i64().unwrap())
            .collect();
        v.sort();
        v
    };
    let mut want = expect(&|e| in_range(e));
    want.sort();
    assert_eq!(ours, want);

    // And each subject's chain is intact.
    assert_eq!(verify_chain(&history(&store, &subject, 3).await), Ok(()));
    assert_eq!(
        verify_chain(&history(&store, &other_subject, 3).await),
        Ok(())
    );
}
