//! Following proxies' metrics over time, for the app: every period, read each target (or
//! ask Prometheus) and send what the counters gained as one `MetricsDelta`, which the UI
//! thread folds with `Mesh::apply_metrics` as it drains tap events.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use super::SourceError;
use super::fetch::MetricsTarget;
use super::metrics::{Scrape, derive};
use super::prometheus;
use crate::mesh::metrics::MetricsDelta;

/// What to follow.
#[derive(Debug, Clone)]
pub enum Feed {
    /// Proxies' `/metrics` URLs or files, read every period.
    Targets(Vec<MetricsTarget>),
    /// A Prometheus server's base URL, asked for each period's increase.
    Prometheus(String),
}

#[derive(Debug)]
pub enum Update {
    Metrics(MetricsDelta),
    /// One target or query failed this period; the others still count.
    Error(SourceError),
}

/// Runs until the receiver goes away. A target's first read is sent as totals (no
/// interval), so history shows at once; later reads as the increase since the previous
/// successful one. A target that fails starts over from totals when it answers again.
pub async fn follow(feed: Feed, every: Duration, tx: mpsc::Sender<Update>) {
    let every = every.max(Duration::from_millis(10));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous: Vec<Option<Scrape>> = match &feed {
        Feed::Targets(t) => vec![None; t.len()],
        Feed::Prometheus(_) => Vec::new(),
    };
    loop {
        ticks.tick().await;
        let updates = match &feed {
            Feed::Targets(targets) => read_targets(targets, &mut previous, every).await,
            Feed::Prometheus(base) => vec![ask(base, every).await],
        };
        for u in updates {
            if tx.send(u).await.is_err() {
                return;
            }
        }
    }
}

async fn read_targets(
    targets: &[MetricsTarget],
    previous: &mut [Option<Scrape>],
    every: Duration,
) -> Vec<Update> {
    let (mut totals, mut increases, mut updates) = (Vec::new(), Vec::new(), Vec::new());
    for (target, before) in targets.iter().zip(previous.iter_mut()) {
        match target.read().await {
            Ok(now) => {
                match before.as_ref() {
                    Some(b) => increases.push(now.increase_since(b)),
                    None => totals.push(now.clone()),
                }
                *before = Some(now);
            }
            Err(e) => {
                *before = None;
                updates.push(Update::Error(e));
            }
        }
    }
    let interval_us = i64::try_from(every.as_micros()).unwrap_or(i64::MAX);
    for (scrapes, interval) in [(totals, None), (increases, Some(interval_us))] {
        if !scrapes.is_empty() {
            updates.push(delta(&scrapes, interval));
        }
    }
    updates
}

async fn ask(base: &str, every: Duration) -> Update {
    let interval_us = i64::try_from(every.as_micros()).unwrap_or(i64::MAX);
    match prometheus::query_window(base, every).await {
        Ok(scrape) => delta(&[scrape], Some(interval_us)),
        Err(e) => Update::Error(e),
    }
}

fn delta(scrapes: &[Scrape], interval_us: Option<i64>) -> Update {
    match derive(scrapes) {
        Ok(facts) => Update::Metrics(facts.to_delta(now_us(), interval_us)),
        Err(e) => Update::Error(e),
    }
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(count: u32) -> String {
        format!(
            "response_total{{direction=\"inbound\",tls=\"true\",client_id=\"web.shop.serviceaccount.identity.linkerd.cluster.local\",classification=\"success\"}} {count}\n"
        )
    }

    async fn next_metrics(rx: &mut mpsc::Receiver<Update>) -> MetricsDelta {
        loop {
            let u = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("an update in time")
                .expect("the follower runs");
            if let Update::Metrics(m) = u {
                return m;
            }
        }
    }

    #[tokio::test]
    async fn totals_first_then_increases_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.txt");
        std::fs::write(&path, series(10)).unwrap();
        let target: MetricsTarget = format!("shop/orders={}", path.display()).parse().unwrap();
        let (tx, mut rx) = mpsc::channel(4);
        let task = tokio::spawn(follow(
            Feed::Targets(vec![target]),
            Duration::from_millis(20),
            tx,
        ));
        let first = next_metrics(&mut rx).await;
        assert_eq!(first.interval_us, None);
        assert_eq!(first.edges[0].requests, 10);
        assert_eq!(
            first.edges[0].server.workload.as_deref(),
            Some("orders"),
            "named by the target"
        );
        // Replaced whole, as a reader must never see half a file.
        let tmp = dir.path().join("orders.tmp");
        std::fs::write(&tmp, series(25)).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        let grown = loop {
            let m = next_metrics(&mut rx).await;
            assert_eq!(m.interval_us, Some(20_000));
            if m.edges.first().is_some_and(|e| e.requests > 0) {
                break m;
            }
        };
        assert_eq!(grown.edges[0].requests, 15);
        std::fs::remove_file(&path).unwrap();
        let error = loop {
            let u = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .unwrap()
                .unwrap();
            if let Update::Error(e) = u {
                break e.to_string();
            }
        };
        assert!(error.starts_with(&path.display().to_string()), "{error}");
        drop(rx);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the follower stops without a receiver")
            .unwrap();
    }
}
