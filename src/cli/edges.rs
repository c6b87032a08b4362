//! `meshlens edges`: who talks to whom, with which identities, over mTLS or not, and how
//! often — like `linkerd viz edges`, from one of three sources: the proxies' tap streams
//! (ADDR...), their `/metrics` (or saved copies), or a Prometheus server that scrapes them.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use serde_json::json;

use crate::mesh::Mesh;
use crate::mesh::graph::Node;
use crate::sources::fetch::MetricsTarget;
use crate::sources::metrics::{self, Facts, Scrape};
use crate::sources::prometheus;
use crate::tap::Filter;

const TAP_WINDOW: Duration = Duration::from_secs(5);
const SCRAPE_WINDOW: Duration = Duration::from_secs(5);
const PROMETHEUS_WINDOW: Duration = Duration::from_secs(60);

#[derive(Args, Debug)]
pub struct EdgesArgs {
    /// Admin addresses of proxies (host:port) whose tap streams are watched for --window;
    /// needs --ca/--cert/--key or --token.
    #[arg(value_name = "ADDR")]
    pub addrs: Vec<String>,
    /// A proxy's metrics: a URL (`http://ADMIN/metrics`, scraped twice --window apart for
    /// the rate) or a saved FILE (totals only: no RPS). Prefix `NS/NAME=` to name the
    /// scraped proxy's workload, which its own series do not. Repeat for more proxies.
    #[arg(long, value_name = "[NS/NAME=]URL|FILE")]
    pub metrics: Vec<String>,
    /// A Prometheus server that scrapes the proxies (e.g. http://127.0.0.1:9090); its
    /// `namespace` and `deployment` (or other owner kind) target labels name the workloads.
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    #[command(flatten)]
    pub auth: super::connect::TapAuthArgs,
    /// How long to watch tap (default 5s), the time between two scrapes (5s), or the
    /// range of the Prometheus query (1m).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub window: Option<Duration>,
    /// How to print: a table, or JSON.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Columns like `linkerd viz edges -o wide`, identities shortened to `<sa>.<ns>`.
    Table,
    /// One JSON array, full identities and the golden metrics.
    Json,
}

/// One printed edge.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    src: String,
    dst: String,
    client_id: Option<String>,
    server_id: Option<String>,
    secured: bool,
    /// Why not secured (the `no_tls_reason`, or a share of mTLS for tap).
    no_tls: String,
    rps: Option<f64>,
    success_rate: Option<f64>,
    latency_ms: [Option<f64>; 3],
}

pub fn run(args: EdgesArgs) -> anyhow::Result<ExitCode> {
    Ok(super::or_usage(|| {
        let rows = match (&args.addrs[..], &args.metrics[..], &args.prometheus) {
            ([_, ..], [], None) => from_tap(&args)?,
            ([], [_, ..], None) => from_metrics(&args)?,
            ([], [], Some(url)) => from_prometheus(url, &args)?,
            _ => bail!(
                "give proxies' admin addresses (ADDR...), --metrics or --prometheus: exactly one of them"
            ),
        };
        print(&rows, args.output)?;
        Ok(ExitCode::SUCCESS)
    }))
}

fn from_tap(args: &EdgesArgs) -> anyhow::Result<Vec<Row>> {
    let auth = args.auth.auth()?;
    let window = args.window.unwrap_or(TAP_WINDOW);
    let rt = super::connect::runtime()?;
    let mesh = rt.block_on(async {
        let (client, mut rx, status) = super::connect::start(&args.addrs, auth, Filter::default());
        let mut mesh = Mesh::default();
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            mesh.apply(&event);
        }
        status.abort();
        client.stop().await;
        mesh
    });
    let seconds = window.as_secs_f64();
    let g = mesh.graph();
    let mut rows = Vec::new();
    for e in g.edges() {
        let (Some(client), Some(server)) = (g.node(e.client), g.node(e.server)) else {
            continue;
        };
        let share = e.tls_share();
        let latency = e.latency();
        let ms = |q: f64| {
            latency
                .and_then(|h| h.quantile(q))
                .map(|us| us as f64 / 1000.0)
        };
        rows.push(Row {
            src: node_name(client),
            dst: node_name(server),
            client_id: client.identity.clone(),
            server_id: server.identity.clone(),
            secured: share == Some(1.0),
            no_tls: match share {
                Some(1.0) => String::new(),
                Some(s) if s > 0.0 => format!("{:.0}%", s * 100.0),
                _ => "no".into(),
            },
            rps: (e.requests > 0 || e.tcp_connections == 0).then(|| e.requests as f64 / seconds),
            success_rate: e.success_rate(),
            latency_ms: [ms(0.5), ms(0.95), ms(0.99)],
        });
    }
    Ok(rows)
}

fn node_name(n: &Node) -> String {
    match (&n.namespace, &n.workload) {
        (Some(ns), Some(w)) => format!("{ns}/{w}"),
        (None, Some(w)) => w.clone(),
        _ => n.key.to_string(),
    }
}

fn from_metrics(args: &EdgesArgs) -> anyhow::Result<Vec<Row>> {
    let targets = args
        .metrics
        .iter()
        .map(|m| m.parse::<MetricsTarget>())
        .collect::<Result<Vec<_>, _>>()?;
    let urls = targets.iter().filter(|t| t.is_url()).count();
    if urls != 0 && urls != targets.len() {
        bail!("--metrics takes either URLs (scraped twice for rates) or files (totals), not both");
    }
    let window = args.window.unwrap_or(SCRAPE_WINDOW);
    let rt = super::connect::runtime()?;
    let (scrapes, seconds) = rt.block_on(async {
        let first = read_all(&targets).await?;
        if urls == 0 {
            return Ok::<_, anyhow::Error>((first, None));
        }
        tokio::time::sleep(window).await;
        let second = read_all(&targets).await?;
        let increases = second
            .iter()
            .zip(&first)
            .map(|(now, before)| now.increase_since(before))
            .collect();
        Ok((increases, Some(window.as_secs_f64())))
    })?;
    Ok(fact_rows(&metrics::derive(&scrapes)?, seconds))
}

/// Reads every target at once.
async fn read_all(targets: &[MetricsTarget]) -> anyhow::Result<Vec<Scrape>> {
    let tasks: Vec<_> = targets
        .iter()
        .cloned()
        .map(|t| tokio::spawn(async move { t.read().await }))
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.context("a scrape task failed")??);
    }
    Ok(out)
}

fn from_prometheus(url: &str, args: &EdgesArgs) -> anyhow::Result<Vec<Row>> {
    let window = args.window.unwrap_or(PROMETHEUS_WINDOW);
    let rt = super::connect::runtime()?;
    let scrape = rt.block_on(prometheus::query_window(url, window))?;
    // The window is rounded to whole seconds in the query.
    let seconds = window.as_secs().max(1) as f64;
    Ok(fact_rows(&metrics::derive(&[scrape])?, Some(seconds)))
}

fn fact_rows(facts: &Facts, seconds: Option<f64>) -> Vec<Row> {
    facts
        .edges
        .iter()
        .map(|(k, s)| Row {
            src: k.src.to_string(),
            dst: k.dst.to_string(),
            client_id: k.client_id.clone(),
            server_id: k.server_id.clone(),
            secured: k.secured(),
            no_tls: if k.secured() {
                String::new()
            } else {
                k.tls.clone()
            },
            rps: s.rps(seconds),
            success_rate: s.success_rate(),
            latency_ms: [0.5, 0.95, 0.99].map(|q| s.latency.quantile(q)),
        })
        .collect()
}

fn print(rows: &[Row], output: Output) -> anyhow::Result<()> {
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| (&a.src, &a.dst).cmp(&(&b.src, &b.dst)));
    match output {
        Output::Json => {
            let items: Vec<_> = rows
                .iter()
                .map(|r| {
                    json!({
                        "src": r.src,
                        "dst": r.dst,
                        "client_id": r.client_id,
                        "server_id": r.server_id,
                        "secured": r.secured,
                        "no_tls_reason": r.no_tls,
                        "rps": r.rps,
                        "success_rate": r.success_rate,
                        "latency_ms_p50": r.latency_ms[0],
                        "latency_ms_p95": r.latency_ms[1],
                        "latency_ms_p99": r.latency_ms[2],
                    })
                })
                .collect();
            out!("{}", serde_json::to_string_pretty(&items)?);
        }
        Output::Table => {
            let header = ["SRC", "DST", "CLIENT_ID", "SERVER_ID", "SECURED", "RPS"];
            let cells: Vec<[String; 6]> = rows
                .iter()
                .map(|r| {
                    [
                        r.src.clone(),
                        r.dst.clone(),
                        short_id(r.client_id.as_deref()),
                        short_id(r.server_id.as_deref()),
                        if r.secured {
                            "√".into()
                        } else {
                            r.no_tls.clone()
                        },
                        r.rps.map_or("-".into(), |v| format!("{v:.1}")),
                    ]
                })
                .collect();
            let mut widths = header.map(|h| h.chars().count());
            for row in &cells {
                for (w, c) in widths.iter_mut().zip(row) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let line = |cols: &[String]| {
                let mut s = String::new();
                for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
                    if i + 1 == cols.len() {
                        s.push_str(c);
                    } else {
                        s.push_str(c);
                        s.extend(std::iter::repeat_n(' ', w - c.chars().count() + 3));
                    }
                }
                s
            };
            out!("{}", line(&header.map(String::from)));
            for row in &cells {
                out!("{}", line(row));
            }
            if rows.is_empty() {
                eprintln!("edges: no traffic seen");
            }
        }
    }
    Ok(())
}

/// `linkerd viz edges`' short form of an identity: its first two labels, `<sa>.<ns>`.
fn short_id(id: Option<&str>) -> String {
    match id {
        None | Some("") => "-".into(),
        Some(id) => {
            let mut parts = id.splitn(3, '.');
            match (parts.next(), parts.next()) {
                (Some(sa), Some(ns)) => format!("{sa}.{ns}"),
                _ => id.to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_shortened_like_linkerd() {
        assert_eq!(
            short_id(Some(
                "web.shop.serviceaccount.identity.linkerd.cluster.local"
            )),
            "web.shop"
        );
        assert_eq!(short_id(None), "-");
        assert_eq!(short_id(Some("spiffe")), "spiffe");
    }
}
