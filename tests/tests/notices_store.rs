//! The notice store contract (docs/decisions.md §13 "Notices"), without HTTP: each test is
//! one body run on `MemoryStore` (`memory::*`) and on `DynamoStore` against DynamoDB Local
//! (`dynamo::*`, the judge), each on a store of its own (a fresh table on DynamoDB Local), so
//! ids can be checked from 1. Racing posts take 1..N exactly once, each logged on its own
//! chain; a read is kept once, with one entry on the HAT's chain, however often it is marked.

use dex::notices::ports::PostedEvent;
use dex::notices::{Notice, NoticeStore, NoticeTarget};
use dex::page::PageRequest;
use dex::txlog::{LogEntry, LogEvent, LogStore, verify_chain};
use serde_json::json;

pub trait Store: NoticeStore + LogStore + Clone + Send + Sync + 'static {}
impl<T> Store for T where T: NoticeStore + LogStore + Clone + Send + Sync + 'static {}

dex_tests::store_contract!(
    table: "dex-notices";
    racing_posts_take_every_id_from_one_once_each_with_its_entry,
    notices_read_back_as_posted_newest_first,
    a_read_is_kept_once_with_one_entry_on_the_hats_chain,
);

fn posted(notice: &Notice) -> LogEvent {
    LogEvent {
        subject: notice.subject().into(),
        kind: "notice.posted".into(),
        actor: "test:notices".into(),
        details: json!({ "noticeId": notice.id }),
    }
}

async fn history<S: Store>(store: &S, subject: &str) -> Vec<LogEntry> {
    store
        .subject_history(subject, PageRequest::first(200))
        .await
        .expect("history")
        .items
}

async fn post<S: Store>(store: &S, message: &str, target: &NoticeTarget) -> Notice {
    let event: PostedEvent<'_> = &posted;
    store
        .insert_notice(
            message,
            target,
            chrono::Utc::now().timestamp_millis(),
            event,
        )
        .await
        .expect("post")
}

async fn racing_posts_take_every_id_from_one_once_each_with_its_entry<S: Store>(store: S) {
    // Each round of the race lets exactly one post through (the counter's condition), so
    // posting runs at one notice per round trip: plenty for admins, and 12 racing posts take
    // a few seconds on a loaded DynamoDB Local (30 took up to 20 s here).
    const POSTS: u64 = 12;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..POSTS {
        let store = store.clone();
        tasks.spawn(
            async move { post(&store, &format!("notice {i}"), &NoticeTarget::default()).await },
        );
    }
    let mut ids = Vec::new();
    while let Some(done) = tasks.join_next().await {
        ids.push(done.expect("post task").id);
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=POSTS).collect::<Vec<_>>(), "no gap, no repeat");
    let listed: Vec<u64> = store
        .list_notices()
        .await
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(listed, (1..=POSTS).rev().collect::<Vec<_>>());
    for id in 1..=POSTS {
        let entries = history(&store, &format!("notice:{id}")).await;
        assert_eq!(entries.len(), 1, "notice {id}: {entries:?}");
        assert_eq!(entries[0].details["noticeId"], id);
    }
}

async fn notices_read_back_as_posted_newest_first<S: Store>(store: S) {
    let target = NoticeTarget {
        with_hat_address: vec!["alice.hubat.net".into(), "bob.hubat.net:9000".into()],
        with_any_role: vec!["owner".into()],
        ..NoticeTarget::default()
    };
    let first = post(&store, "Grüße, \"quoted\" \n and long: ", &target).await;
    let second = post(&store, &"x".repeat(4000), &NoticeTarget::default()).await;
    assert_eq!((first.id, second.id), (1, 2));
    assert_eq!(store.get_notice(1).await.unwrap(), Some(first.clone()));
    assert_eq!(store.get_notice(2).await.unwrap(), Some(second.clone()));
    assert_eq!(store.get_notice(3).await.unwrap(), None);
    assert_eq!(store.list_notices().await.unwrap(), vec![second, first]);
    assert!(
        store
            .notice_reads("alice.hubat.net")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_read_is_kept_once_with_one_entry_on_the_hats_chain<S: Store>(store: S) {
    let notice = post(&store, "read me", &NoticeTarget::default()).await;
    let other = post(&store, "and me", &NoticeTarget::default()).await;
    let hat = format!(
        "h{}.hubat.net",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let read = |at: i64| LogEvent {
        subject: format!("hat:{hat}"),
        kind: "notice.read".into(),
        actor: format!("hat:{hat}"),
        details: json!({ "noticeId": notice.id, "at": at }),
    };
    // Ten marks at once, each at its own time: one is kept, every answer is that one.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let (store, hat, event) = (store.clone(), hat.clone(), read(1000 + i));
        tasks.spawn(async move {
            store
                .mark_notice_read(&hat, notice.id, 1000 + i, event)
                .await
                .expect("mark read")
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = tasks.join_next().await {
        answers.push(done.expect("read task"));
    }
    let kept = answers[0];
    assert!(answers.iter().all(|a| *a == kept), "{answers:?}");
    assert!((1000..1010).contains(&kept));
    let later = store
        .mark_notice_read(&hat, notice.id, 5000, read(5000))
        .await
        .unwrap();
    assert_eq!(later, kept, "the first read time stays");
    let entries = history(&store, &format!("hat:{hat}")).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].details["at"], kept);
    verify_chain(&entries).unwrap();

    store
        .mark_notice_read(&hat, other.id, 7000, read(7000))
        .await
        .unwrap();
    let mut reads = store.notice_reads(&hat).await.unwrap();
    reads.sort_unstable();
    assert_eq!(reads, vec![(notice.id, kept), (other.id, 7000)]);
    assert!(
        store
            .notice_reads("someone.else.net")
            .await
            .unwrap()
            .is_empty()
    );
}
