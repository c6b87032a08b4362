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
    /// A Prometheus server's base URL, asked each period for the rate over at least a
    /// minute (see `ask`).
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

/// The shortest window Prometheus is asked `increase()` over, as `meshlens edges
/// --prometheus` by default: a window holding fewer than two scrapes has no increase to
/// answer, and scrape intervals are commonly 10 s to 30 s.
const PROMETHEUS_MIN_WINDOW: Duration = Duration::from_secs(60);

/// The window asked for a poll every `every`, in whole seconds as the query states it.
fn prometheus_window(every: Duration) -> Duration {
    Duration::from_secs(every.max(PROMETHEUS_MIN_WINDOW).as_secs().max(1))
}

/// Asks for the increases over `prometheus_window(every)` and restates them as one
/// period's share at the window's rate, so the model's per-second rates match the CLI's.
async fn ask(base: &str, every: Duration) -> Update {
    let interval_us = i64::try_from(every.as_micros()).unwrap_or(i64::MAX);
    let window = prometheus_window(every);
    match prometheus::query_window(base, window).await {
        Ok(scrape) => {
            let share = every.as_secs_f64() / window.as_secs_f64();
            delta(&[scrape.scaled(share)], Some(interval_us))
        }
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

    /// A Prometheus query API on 127.0.0.1 that answers `request_total` and
    /// `response_total` with one inbound mTLS series of `increase` 360 and every other query
    /// with nothing; it sends each query it is asked on `asked`.
    async fn fake_prometheus(asked: mpsc::UnboundedSender<String>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let target = head.split(' ').nth(1).unwrap_or("").to_string();
                let query = percent_decode(target.split_once("query=").map_or("", |q| q.1));
                let family = ["request_total", "response_total"]
                    .into_iter()
                    .find(|f| query.contains(&format!("increase({f}[")));
                let result = match family {
                    Some(_) => {
                        r#"[{"metric":{"direction":"inbound","tls":"true","client_id":"web.shop.serviceaccount.identity.linkerd.cluster.local","classification":"success"},"value":[1700000000,"360"]}]"#
                    }
                    None => "[]",
                };
                let body = format!(
                    r#"{{"status":"success","data":{{"resultType":"vector","result":{result}}}}}"#
                );
                let _ = asked.send(query);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            }
        });
        url
    }

    fn percent_decode(s: &str) -> String {
        let b = s.as_bytes();
        let (mut out, mut i) = (Vec::new(), 0);
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn prometheus_is_asked_over_a_minute_and_rates_match_the_cli() {
        let (asked_tx, mut asked) = mpsc::unbounded_channel();
        let url = fake_prometheus(asked_tx).await;
        let (tx, mut rx) = mpsc::channel(4);
        let task = tokio::spawn(follow(Feed::Prometheus(url), Duration::from_secs(5), tx));
        let m = next_metrics(&mut rx).await;
        drop(rx);
        let first = asked.recv().await.unwrap();
        assert!(
            first.contains("[60s]"),
            "a 5 s poll asks over 60 s: {first}"
        );
        // 360 over 60 s is 6 per second: 30 in each 5 s period.
        assert_eq!(m.interval_us, Some(5_000_000));
        assert_eq!(m.edges.len(), 1, "{m:?}");
        let e = &m.edges[0];
        assert!(e.secured);
        assert_eq!(e.requests, 30);
        assert_eq!(e.client.workload.as_deref(), Some("web"));
        task.abort();
    }

    #[test]
    fn the_prometheus_window_is_the_period_when_longer_than_a_minute() {
        assert_eq!(
            prometheus_window(Duration::from_secs(5)),
            Duration::from_secs(60)
        );
        assert_eq!(
            prometheus_window(Duration::from_secs(300)),
            Duration::from_secs(300)
        );
        assert_eq!(
            prometheus_window(Duration::from_millis(90_500)),
            Duration::from_secs(90)
        );
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
