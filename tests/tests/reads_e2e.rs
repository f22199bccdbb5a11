//! Public reads from snapshots (issue 8 §2) over real HTTP: a value reported through
//! `POST /stats/report` shows in `GET /stats/available-data` and `GET /stats` once the lag
//! (twice `DEX_STATS_CACHE_SECS`, 1 s in the test stack) has passed, exactly, and not much
//! later. Run through `make test`.

use std::time::{Duration, Instant};

use dex_tests::stats_support::{
    EndpointStats, HatUser, StatsCluster, available_data_now, batch, figure_value, figures,
    figures_now, flatten_namespace, inbound, now_millis, report, stats_lag, unique_namespace,
};
use dex_tests::support::Dex;

/// The namespace's counts as `/stats/available-data` serves them now.
async fn served(dex: &Dex, namespace: &str) -> Option<dex_tests::stats_support::FieldTotals> {
    available_data_now(dex)
        .await
        .iter()
        .find(|n| n["namespace"] == namespace)
        .map(flatten_namespace)
}

#[tokio::test]
async fn a_reported_value_is_served_exactly_once_the_lag_has_passed() {
    let dex = Dex::new();
    let sc = StatsCluster::start(&["reader"]).await;
    let hat = &sc.hats[0];
    let ns = unique_namespace();
    let data_in_before = figure_value(&figures_now(&dex).await, "Data In");
    let plug = HatUser::plug("reads", &ns);
    let stats = [EndpointStats::new(format!("{ns}/feed"), &[("message", 7)])];
    let body = batch(&[inbound(now_millis() - 60_000, &plug, &stats, "one batch")]);
    let outcome = report(&dex, hat, &body).await;
    assert_eq!(outcome.accepted, 1, "{outcome:?}");
    let reported = Instant::now();

    // Polled until it shows: it must within the lag (plus a margin for this loaded machine).
    let deadline = stats_lag() + Duration::from_secs(3);
    let shown = loop {
        if let Some(totals) = served(&dex, &ns).await {
            break totals;
        }
        assert!(
            reported.elapsed() < deadline,
            "{ns} not served {deadline:?} after its report"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("[timing] shown {:?} after the report", reported.elapsed());
    let expected: dex_tests::stats_support::FieldTotals =
        [(("feed".to_owned(), "message".to_owned()), 7)].into();
    assert_eq!(shown, expected);

    // Once the lag has passed, every container serves the exact figure (several reads, so
    // several of the stack's instances answer).
    tokio::time::sleep(stats_lag()).await;
    for _ in 0..4 {
        assert_eq!(served(&dex, &ns).await, Some(expected.clone()));
    }
    // Data In: other tests report at the same time, so only `>=` holds globally.
    let data_in_after = figure_value(&figures(&dex).await, "Data In");
    assert!(
        data_in_after - data_in_before >= 7,
        "{data_in_before} -> {data_in_after}"
    );
}

#[tokio::test]
async fn concurrent_readers_all_get_a_complete_answer() {
    let dex = Dex::new();
    let reads = futures::future::join_all((0..24).map(|_| {
        let dex = dex.clone();
        async move { figures_now(&dex).await }
    }))
    .await;
    for figures in reads {
        assert_eq!(figures.len(), 6, "{figures:?}");
        assert!(figure_value(&figures, "Data In") >= 0);
    }
}
