//! `meshlens edges` against real sidecars on loopback: from their `/metrics`, from their tap
//! streams, and from a real Prometheus server scraping them.

mod proxy_support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use meshlens::identity::{ControlPlane, LeafPolicy};
use proxy_support::*;

/// Runs the binary off the runtime's threads, so the in-process proxies keep serving.
async fn meshlens(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_meshlens"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// Calls web → orders through the proxies every 50 ms until dropped, so every scrape
/// interval and tap window sees traffic.
struct Traffic(Arc<AtomicBool>);

impl Traffic {
    fn start(mesh: &Mesh) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let out = mesh.web.addrs.outbound;
        let flag = stop.clone();
        tokio::spawn(async move {
            while !flag.load(Ordering::Relaxed) {
                let r = http1(out, get("orders.shop:80", "/v1/orders")).await;
                assert_eq!(r.status(), 200);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Traffic(stop)
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The table row from `src` to `dst`, split into its columns.
fn row(stdout: &str, src: &str, dst: &str) -> Option<Vec<String>> {
    stdout
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .find(|cols| cols.len() == 6 && cols[0] == src && cols[1] == dst)
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The web → orders row says both identities, mTLS and a positive rate.
fn assert_web_to_orders(stdout: &str) {
    let header: Vec<&str> = stdout.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["SRC", "DST", "CLIENT_ID", "SERVER_ID", "SECURED", "RPS"]
    );
    let cols = row(stdout, "shop/web", "shop/orders")
        .unwrap_or_else(|| panic!("no shop/web -> shop/orders row in\n{stdout}"));
    assert_eq!(cols[2], "web.shop", "{stdout}");
    assert_eq!(cols[3], "orders.shop", "{stdout}");
    assert_eq!(cols[4], "√", "{stdout}");
    let rps: f64 = cols[5].parse().unwrap();
    assert!(rps > 0.0, "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_from_both_proxies_metrics_join_into_one_secured_row_with_a_rate() {
    let mesh = Mesh::start().await;
    let denied = post(
        "orders.shop:80",
        "/v1/orders",
        "application/json",
        Vec::new(),
    );
    assert_eq!(http1(mesh.web.addrs.outbound, denied).await.status(), 403);
    let traffic = Traffic::start(&mesh);
    let out = meshlens(vec![
        "edges".into(),
        "--metrics".into(),
        format!("shop/web=http://{}/metrics", mesh.web.addrs.admin),
        "--metrics".into(),
        format!("shop/orders=http://{}/metrics", mesh.orders.addrs.admin),
        "--window".into(),
        "2s".into(),
    ])
    .await;
    drop(traffic);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_web_to_orders(&stdout);
    assert_eq!(
        stdout.lines().count(),
        2,
        "the two proxies' halves are one edge:\n{stdout}"
    );

    // The same from one saved scrape: totals, so no rate.
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("orders.txt");
    let r = http1(mesh.orders.addrs.admin, get("admin", "/metrics")).await;
    std::fs::write(&saved, r.body()).unwrap();
    let out = meshlens(vec![
        "edges".into(),
        "--metrics".into(),
        format!("shop/orders={}", saved.display()),
        "--output".into(),
        "json".into(),
    ])
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let rows: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let edge = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["src"] == "shop/web" && r["dst"] == "shop/orders")
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(
        edge["client_id"],
        "web.shop.serviceaccount.identity.linkerd.cluster.local"
    );
    assert_eq!(edge["secured"], true);
    assert!(edge["rps"].is_null(), "one snapshot has no rate: {edge}");
    assert!(edge["success_rate"].as_f64().unwrap() > 0.9, "{edge}");
    assert!(edge["latency_ms_p99"].as_f64().is_some(), "{edge}");
}

#[tokio::test]
async fn a_proxy_that_cannot_be_scraped_is_one_line_and_exit_2() {
    let closed = std::net::TcpListener::bind("127.0.0.5:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{closed}/metrics");
    let out = meshlens(vec!["edges".into(), "--metrics".into(), url.clone()]).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.starts_with(&format!("error: {url}: cannot connect")),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let out = meshlens(vec!["edges".into()]).await;
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_from_tap_streams() {
    let mesh = Mesh::start().await;
    let name = ControlPlane::default()
        .identity("meshlens-operator", "meshlens")
        .unwrap();
    let leaf = mesh
        .pki
        .ca
        .issue(&name, &LeafPolicy::default(), SystemTime::now())
        .unwrap();
    let (cert, key) = mesh.pki.write_leaf("operator", &leaf);
    let traffic = Traffic::start(&mesh);
    // The test mesh's sidecars share one tap publisher, so one admin port streams both
    // proxies' events (tapping both would see each event twice).
    let out = meshlens(vec![
        "edges".into(),
        mesh.orders.addrs.admin.to_string(),
        "--ca".into(),
        mesh.pki.anchors().display().to_string(),
        "--cert".into(),
        cert.display().to_string(),
        "--key".into(),
        key.display().to_string(),
        "--window".into(),
        "3s".into(),
    ])
    .await;
    drop(traffic);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_web_to_orders(&stdout);
}

/// Kills the Prometheus server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const PROMETHEUS: &str = "/usr/bin/prometheus";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP GET's status line, or `None` when nothing answers yet.
fn status_line(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.lines().next().map(str::to_string)
}

fn start_prometheus(dir: &Path, targets: &[(&str, String)]) -> (Server, String) {
    let statics: Vec<String> = targets
        .iter()
        .map(|(deployment, addr)| {
            format!(
                "  - targets: ['{addr}']\n    labels: {{namespace: shop, deployment: {deployment}}}\n"
            )
        })
        .collect();
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n- job_name: linkerd-proxy\n  scrape_interval: 1s\n  static_configs:\n{}",
        statics.concat()
    );
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new(PROMETHEUS)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={listen}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    (Server(child), listen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_from_a_real_prometheus_scraping_the_proxies() {
    if !Path::new(PROMETHEUS).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{PROMETHEUS} is missing: `apt-get install prometheus` (.ci/run does)"
        );
        eprintln!("skipped: {PROMETHEUS} is not installed (apt-get install prometheus)");
        return;
    }
    let mesh = Mesh::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (server, listen) = start_prometheus(
        dir.path(),
        &[
            ("web", mesh.web.addrs.admin.to_string()),
            ("orders", mesh.orders.addrs.admin.to_string()),
        ],
    );
    let traffic = Traffic::start(&mesh);
    let deadline = Instant::now() + Duration::from_secs(120);
    let ready = listen.clone();
    while tokio::task::spawn_blocking({
        let ready = ready.clone();
        move || status_line(&ready, "/-/ready")
    })
    .await
    .unwrap()
    .is_none_or(|l| !l.contains(" 200"))
    {
        let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "Prometheus did not get ready:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Until two scrapes of the new series exist, `increase` has nothing to say; ask again.
    let url = format!("http://{listen}");
    let stdout = loop {
        let out = meshlens(vec![
            "edges".into(),
            "--prometheus".into(),
            url.clone(),
            "--window".into(),
            "30s".into(),
        ])
        .await;
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        let ok = row(&stdout, "shop/web", "shop/orders")
            .is_some_and(|c| c[2] == "web.shop" && c[5].parse::<f64>().is_ok_and(|r| r > 0.0));
        if ok {
            break stdout;
        }
        let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "no web -> orders edge with a rate from Prometheus:\n{stdout}\n{log}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    drop(traffic);
    drop(server);
    assert_web_to_orders(&stdout);
}
