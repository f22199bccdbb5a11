//! Latency and statuses per endpoint, and the table `make load` prints.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Status 0 stands for "no answer" (connection error or client timeout).
pub const NO_ANSWER: u16 = 0;

#[derive(Debug, Default, Clone)]
pub struct Endpoint {
    /// Microseconds, one per request.
    pub latencies: Vec<u32>,
    pub statuses: BTreeMap<u16, u64>,
}

#[derive(Debug, Default)]
pub struct Metrics {
    endpoints: Mutex<BTreeMap<&'static str, Endpoint>>,
}

impl Metrics {
    pub fn record(&self, endpoint: &'static str, status: u16, took: Duration) {
        let micros = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
        let mut map = self
            .endpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = map.entry(endpoint).or_default();
        e.latencies.push(micros);
        *e.statuses.entry(status).or_default() += 1;
    }

    /// Forgets everything (after the warm-up).
    pub fn reset(&self) {
        self.endpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    #[must_use]
    pub fn snapshot(&self) -> BTreeMap<&'static str, Endpoint> {
        self.endpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The `q`-quantile (0..=1) of sorted microseconds, in milliseconds (nearest rank).
#[must_use]
pub fn quantile_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

/// The table: one row per endpoint, then the total.
#[must_use]
pub fn table(endpoints: &BTreeMap<&'static str, Endpoint>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    let mut out = String::new();
    out.push_str(&format!(
        "{:<46} {:>8} {:>7} {:>9} {:>9} {:>9}  statuses\n",
        "endpoint", "requests", "req/s", "p50 ms", "p99 ms", "max ms"
    ));
    let mut all: Vec<u32> = Vec::new();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for (name, e) in endpoints {
        let mut sorted = e.latencies.clone();
        sorted.sort_unstable();
        all.extend_from_slice(&sorted);
        for (s, n) in &e.statuses {
            *statuses.entry(*s).or_default() += n;
        }
        out.push_str(&row(name, &sorted, &e.statuses, secs));
    }
    all.sort_unstable();
    out.push_str(&row("all", &all, &statuses, secs));
    out
}

fn row(name: &str, sorted: &[u32], statuses: &BTreeMap<u16, u64>, secs: f64) -> String {
    let statuses: Vec<String> = statuses
        .iter()
        .map(|(s, n)| {
            if *s == NO_ANSWER {
                format!("no answer: {n}")
            } else {
                format!("{s}: {n}")
            }
        })
        .collect();
    format!(
        "{:<46} {:>8} {:>7.1} {:>9.1} {:>9.1} {:>9.1}  {}\n",
        name,
        sorted.len(),
        sorted.len() as f64 / secs,
        quantile_ms(sorted, 0.5),
        quantile_ms(sorted, 0.99),
        sorted.last().map_or(0.0, |m| f64::from(*m) / 1000.0),
        statuses.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let sorted: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert!((quantile_ms(&sorted, 0.5) - 50.0).abs() < f64::EPSILON);
        assert!((quantile_ms(&sorted, 0.99) - 99.0).abs() < f64::EPSILON);
        assert!((quantile_ms(&[7000], 0.99) - 7.0).abs() < f64::EPSILON);
        assert!(quantile_ms(&[], 0.5).abs() < f64::EPSILON);
    }

    #[test]
    fn the_table_counts_every_request_and_status() {
        let m = Metrics::default();
        m.record("GET /stats", 200, Duration::from_millis(3));
        m.record("GET /stats", 503, Duration::from_millis(9));
        m.record("POST /stats/report", NO_ANSWER, Duration::from_millis(1));
        let t = table(&m.snapshot(), Duration::from_secs(1));
        assert!(t.contains("200: 1, 503: 1"), "{t}");
        assert!(t.contains("no answer: 1"), "{t}");
        let total = t.lines().last().unwrap();
        assert!(total.starts_with("all") && total.contains(" 3 "), "{t}");
    }
}
