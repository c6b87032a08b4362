//! `meshlens top ADDR...`: a live table of requests by route, like `linkerd viz top`. On a
//! terminal it is redrawn in place every interval; piped, a snapshot table is printed every
//! interval (and a last one at the end). The counting is `mesh::routes`, shared with the app.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Args};

use crate::mesh::routes::{RouteStats, Routes};
use crate::tap::EventKind;

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("credentials").required(true).args(["ca", "token"])))]
pub struct TopArgs {
    /// Admin addresses of the proxies (host:port), e.g. 127.0.0.1:4191.
    #[arg(required = true, value_name = "ADDR")]
    pub addrs: Vec<String>,
    #[command(flatten)]
    pub auth: super::connect::TapAuthArgs,
    #[command(flatten)]
    pub filter: super::tap::FilterArgs,
    /// Show at most this many routes, the busiest first.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub max_rows: usize,
    /// How often the table is redrawn (printed, when not on a terminal).
    #[arg(long, value_name = "D", default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Stop after this long (`30s`, `5m`); else at Ctrl-C.
    #[arg(long, value_name = "D", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
}

const HEADERS: [&str; 9] = [
    "Source",
    "Destination",
    "Method",
    "Path",
    "Count",
    "Best",
    "Worst",
    "Last",
    "Success Rate",
];
/// Columns from here on are numbers, aligned right.
const FIRST_NUMERIC: usize = 4;

pub fn run(args: TopArgs) -> anyhow::Result<ExitCode> {
    let filter = args.filter.filter()?;
    let auth = args.auth.auth()?;
    let interval = args.interval.max(Duration::from_millis(100));
    let tty = std::io::stdout().is_terminal();
    let rt = super::connect::runtime()?;
    rt.block_on(async move {
        let (client, mut rx, status) = super::connect::start(&args.addrs, auth, filter);
        let deadline = async {
            match args.duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut routes = Routes::default();
        let mut lost = 0u64;
        let shown: anyhow::Result<()> = async {
            loop {
                tokio::select! {
                    e = rx.recv() => match e {
                        Some(e) if e.kind == EventKind::Lost => lost += e.lost,
                        Some(e) => {
                            routes.observe(&e);
                        }
                        None => break,
                    },
                    _ = tick.tick() => show(&routes, lost, args.max_rows, tty)?,
                    () = &mut deadline => break,
                    _ = tokio::signal::ctrl_c() => break,
                }
            }
            if !tty {
                show(&routes, lost, args.max_rows, tty)?;
            }
            Ok(())
        }
        .await;
        status.abort();
        client.stop().await;
        shown?;
        Ok(ExitCode::SUCCESS)
    })
}

fn show(routes: &Routes, lost: u64, max_rows: usize, tty: bool) -> anyhow::Result<()> {
    let mut text = String::new();
    if tty {
        // Home the cursor and clear the screen: the table is redrawn in place.
        text.push_str("\x1b[H\x1b[2J");
    }
    for line in table(routes, max_rows) {
        text.push_str(&line);
        text.push('\n');
    }
    let hidden = routes.len().saturating_sub(max_rows);
    if hidden > 0 {
        text.push_str(&format!("({hidden} more routes)\n"));
    }
    if lost > 0 {
        text.push_str(&format!("({lost} events lost: the counts are low)\n"));
    }
    if !tty {
        text.push('\n');
    }
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// The header and one line per route, columns padded to their widest cell.
pub fn table(routes: &Routes, max_rows: usize) -> Vec<String> {
    let rows: Vec<[String; 9]> = routes
        .top(max_rows)
        .into_iter()
        .map(|(k, s)| {
            [
                k.source.clone(),
                k.destination.clone(),
                k.method.clone(),
                k.path.clone(),
                s.count.to_string(),
                latency(s.best_us),
                latency(s.worst_us),
                latency(s.last_us),
                success_rate(s),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 9]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            if i >= FIRST_NUMERIC {
                out.push_str(&format!("{cell:>w$}"));
            } else {
                out.push_str(&format!("{cell:<w$}"));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = vec![line(HEADERS)];
    out.extend(rows.iter().map(|r| line(r.each_ref().map(String::as_str))));
    out
}

fn latency(us: u64) -> String {
    match us {
        0..1_000 => format!("{us}µs"),
        1_000..1_000_000 => format!("{:.1}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

fn success_rate(s: &RouteStats) -> String {
    format!("{:.2}%", s.success_rate() * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tap::{Direction, Endpoint, Event, Http, Tls};

    fn end(path: &str, status: u16, latency_us: u64) -> Event {
        let ep = |w: &str| Endpoint {
            addr: "10.0.0.1:8080".into(),
            namespace: Some("shop".into()),
            workload: Some(w.into()),
            identity: None,
        };
        Event {
            stream: 1,
            kind: EventKind::ResponseEnd,
            time_us: 1,
            proxy: "shop/orders".into(),
            direction: Direction::Inbound,
            source: ep("web"),
            destination: ep("orders"),
            tls: Tls::default(),
            http: Some(Http {
                method: "GET".into(),
                path: path.into(),
                status: Some(status),
                latency_us: Some(latency_us),
                ..Http::default()
            }),
            tcp: None,
            decision: None,
            avro: Vec::new(),
            lost: 0,
        }
    }

    #[test]
    fn the_table_reads_like_viz_top() {
        let mut routes = Routes::default();
        for e in [
            end("/v1/orders", 200, 412),
            end("/v1/orders", 500, 2_500_000),
            end("/v1/orders", 200, 1_200),
            end("/healthz", 200, 90),
        ] {
            routes.observe(&e);
        }
        assert_eq!(
            table(&routes, 10),
            vec![
                "Source    Destination  Method  Path        Count   Best  Worst   Last  Success Rate",
                "shop/web  shop/orders  GET     /v1/orders      3  412µs  2.50s  1.2ms        66.67%",
                "shop/web  shop/orders  GET     /healthz        1   90µs   90µs   90µs       100.00%",
            ]
        );
        assert_eq!(table(&routes, 1).len(), 2);
    }
}
