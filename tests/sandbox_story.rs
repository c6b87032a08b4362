//! The storefront demo's story, step by step, on the real in-process cluster: after each
//! scenario step the model (fed by the sandbox's own tap) shows the expected edges, denials
//! with the right authorizations, drift on the right subject, and a certificate rotation
//! that fails no request. Then the binary: the ready file, tap with its credentials, and
//! `sandbox validate` pointing at lines.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use meshlens::mesh::Mesh;
use meshlens::mesh::drift::Status;
use meshlens::mesh::graph::Edge;
use meshlens::sandbox::{Cluster, Manifest, Options, demo};
use meshlens::tap::Subscriber;

fn id(sa: &str, ns: &str) -> String {
    format!("{sa}.{ns}.serviceaccount.identity.linkerd.cluster.local")
}

/// Folds the sandbox's events into a fresh model for `d`.
async fn observe(sub: &mut Subscriber, d: Duration) -> Mesh {
    let mut mesh = Mesh::default();
    let end = tokio::time::Instant::now() + d;
    loop {
        tokio::select! {
            e = sub.recv() => match e {
                Some(e) => mesh.apply(&e),
                None => return mesh,
            },
            _ = tokio::time::sleep_until(end) => return mesh,
        }
    }
}

/// Drops what was published while the cluster was changing.
fn drain(sub: &mut Subscriber) {
    while sub.try_recv().is_some() {}
}

fn edge<'a>(mesh: &'a Mesh, client: &str, server: &str) -> Option<&'a Edge> {
    let g = mesh.graph();
    let c = g.find(client)?;
    let s = g.find(server)?;
    g.edge(c.id, s.id)
}

fn allowed_by(mesh: &Mesh, authz: &str) -> u64 {
    mesh.policy_hits()
        .hits()
        .filter(|h| h.key.authz.as_deref() == Some(authz))
        .map(|h| h.allowed)
        .sum()
}

/// Denials of `client` (an identity, or an address prefix) on `route_or_server`.
fn denied(mesh: &Mesh, client: &str, route_or_server: &str) -> usize {
    mesh.policy_hits()
        .denials()
        .filter(|d| d.client.starts_with(client))
        .filter(|d| {
            d.key.route.as_deref() == Some(route_or_server) || d.key.server == route_or_server
        })
        .count()
}

fn drift(mesh: &Mesh, subject: &str) -> (Status, Option<String>) {
    mesh.drift()
        .subject(subject)
        .map(|s| s.status())
        .unwrap_or((Status::Green, Some("not seen".into())))
}

async fn serial(admin: &str) -> String {
    let stream = tokio::net::TcpStream::connect(admin).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("/identity")
        .header("host", admin)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let body = send
        .send_request(req)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    json["serial"].as_str().unwrap().to_string()
}

async fn start_demo(dir: &Path) -> Cluster {
    let path = demo::write(dir).unwrap();
    let manifest = Manifest::load(&path).unwrap();
    let options = Options {
        seed: 7,
        scenario: false,
        time_scale: 1.0,
    };
    Cluster::start(manifest, options).await.unwrap()
}

const PHASE: Duration = Duration::from_millis(2500);
/// Proxies look at policy and certificate files every second.
const RELOAD: Duration = Duration::from_millis(2200);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storefront_story_plays_out_step_by_step() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = tokio::time::timeout(Duration::from_secs(10), start_demo(dir.path()))
        .await
        .expect("the demo comes up in time");
    let mut sub = cluster.publisher().subscribe();
    let (web, orders, payments, shipping, inventory, analytics) = (
        id("web", "shop"),
        id("orders", "shop"),
        id("payments", "payments"),
        id("shipping", "shop"),
        id("inventory", "shop"),
        id("analytics", "analytics"),
    );

    // Steady state: every call is an edge over mTLS; the deny paths deny.
    let mesh = observe(&mut sub, PHASE).await;
    for (c, s) in [
        (&web, &orders),
        (&web, &inventory),
        (&orders, &payments),
        (&orders, &shipping),
        (&analytics, &orders),
        (&analytics, &inventory),
    ] {
        let e = edge(&mesh, c, s).unwrap_or_else(|| panic!("no edge {c} -> {s}"));
        assert!(
            e.requests > 0 && e.secured == e.requests,
            "{c} -> {s}: {e:?}"
        );
    }
    assert!(allowed_by(&mesh, "authorizationpolicy/web-writes-orders") > 0);
    assert!(allowed_by(&mesh, "authorizationpolicy/orders-charges") > 0);
    assert!(allowed_by(&mesh, "authorizationpolicy/analytics-reads-orders") > 0);
    assert!(
        allowed_by(&mesh, "default/audit") > 0,
        "inventory's audit server labels its allows: {:?}",
        mesh.policy_hits()
            .hits()
            .map(|h| &h.key)
            .collect::<Vec<_>>()
    );
    assert!(denied(&mesh, &analytics, "HTTPRoute/charges-read") > 0);
    assert!(
        denied(&mesh, "127.0.0.", "HTTPRoute/orders-read") > 0,
        "the unmeshed legacy client is denied"
    );
    assert_eq!(drift(&mesh, "shop.orders-value").0, Status::Green);

    // An unmeshed client joins: shipping admits only meshed clients.
    assert_eq!(cluster.running().await, (7, 8));
    cluster.run_step("batch-joins").await.unwrap();
    assert_eq!(cluster.running().await, (8, 8));
    let mesh = observe(&mut sub, PHASE).await;
    assert!(denied(&mesh, "127.0.0.", "server/shipping-http") > 0);
    assert!(cluster.call_stats(Some("batch")).await[2] > 0);

    // A compatible rollout: amber, and orders are still accepted.
    let before = cluster.call_stats(Some("web")).await;
    cluster.run_step("compatible-rollout").await.unwrap();
    drain(&mut sub);
    let mesh = observe(&mut sub, PHASE).await;
    let (status, why) = drift(&mesh, "shop.orders-value");
    assert_eq!(status, Status::Amber, "{why:?}");
    let subject = mesh.drift().subject("shop.orders-value").unwrap();
    assert!(subject.producers[&web].versions.contains_key(&2));
    let after = cluster.call_stats(Some("web")).await;
    assert_eq!(after[3], before[3], "nothing rejected by the contract");

    // A breaking rollout: red, and the enforced contract answers 422.
    cluster.run_step("breaking-rollout").await.unwrap();
    drain(&mut sub);
    let before = cluster.call_stats(Some("web")).await;
    let mesh = observe(&mut sub, PHASE).await;
    let (status, why) = drift(&mesh, "shop.orders-value");
    assert_eq!(status, Status::Red, "{why:?}");
    assert!(why.unwrap().contains("incompatible"));
    let after = cluster.call_stats(Some("web")).await;
    assert!(after[3] > before[3], "the contract rejected v3 orders");
    assert_eq!(edge(&mesh, &web, &orders).unwrap().successes, 0);
    assert!(
        edge(&mesh, &web, &inventory).unwrap().successes > 0,
        "stock checks are untouched"
    );

    // The rollback: amber again.
    cluster.run_step("rollback").await.unwrap();
    drain(&mut sub);
    let mesh = observe(&mut sub, PHASE).await;
    assert_eq!(drift(&mesh, "shop.orders-value").0, Status::Amber);

    // The policy tightened: analytics is denied on inventory, web allowed by name.
    cluster.run_step("tighten-inventory").await.unwrap();
    tokio::time::sleep(RELOAD).await;
    drain(&mut sub);
    let mesh = observe(&mut sub, PHASE).await;
    assert!(denied(&mesh, &analytics, "server/inventory-http") > 0);
    assert!(allowed_by(&mesh, "authorizationpolicy/web-reads-stock") > 0);
    assert_eq!(allowed_by(&mesh, "default/audit"), 0);

    // Certificate rotation: new serials, not one failed request.
    let admin = |name: &str| {
        cluster
            .ready()
            .workloads
            .iter()
            .find(|w| w.name == name)
            .unwrap()
            .admin
            .clone()
    };
    let (orders_admin, payments_admin) = (admin("orders"), admin("payments"));
    let old = (serial(&orders_admin).await, serial(&payments_admin).await);
    let mut failures = Vec::new();
    for w in ["web", "orders", "analytics"] {
        failures.push(cluster.call_stats(Some(w)).await[5]);
    }
    cluster.run_step("rotate-certs").await.unwrap();
    cluster.run_step("rotate-payments").await.unwrap();
    drain(&mut sub);
    let mesh = observe(&mut sub, RELOAD + PHASE).await;
    let new = (serial(&orders_admin).await, serial(&payments_admin).await);
    assert_ne!(old.0, new.0, "orders serves its new certificate");
    assert_ne!(old.1, new.1, "payments serves its new certificate");
    for (w, before) in ["web", "orders", "analytics"].iter().zip(failures) {
        let stats = cluster.call_stats(Some(w)).await;
        assert_eq!(
            stats[5], before,
            "{w}: a request failed during the rotation"
        );
    }
    let e = edge(&mesh, &orders, &payments).unwrap();
    assert_eq!(e.successes, e.requests, "{e:?}");

    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_restart_inject_and_expire_do_what_they_say() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo::write(dir.path()).unwrap();
    let extra = r#"
- name: kill-shipping
  kill: shipping
- name: restart-shipping
  restart: shipping
- name: break-payments
  inject: {workload: payments, route: charge, latency: 150ms, errors: 0.5}
- name: drop-contracts
  removePolicy: contracts.yaml
"#;
    let text = std::fs::read_to_string(&path).unwrap() + extra;
    std::fs::write(&path, text).unwrap();
    let manifest = Manifest::load(&path).unwrap();
    let cluster = Cluster::start(
        manifest,
        Options {
            scenario: false,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let mut sub = cluster.publisher().subscribe();
    let (orders, shipping, payments) = (
        id("orders", "shop"),
        id("shipping", "shop"),
        id("payments", "payments"),
    );

    cluster.run_step("kill-shipping").await.unwrap();
    assert_eq!(cluster.running().await, (6, 8));
    let before = cluster.call_stats(Some("orders")).await[5];
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        cluster.call_stats(Some("orders")).await[5] > before,
        "calls to a killed workload fail"
    );
    cluster.run_step("restart-shipping").await.unwrap();
    assert_eq!(cluster.running().await, (7, 8));
    drain(&mut sub);
    let mesh = observe(&mut sub, PHASE).await;
    let e = edge(&mesh, &orders, &shipping).unwrap();
    assert!(
        e.successes > 0,
        "it serves again at the same address: {e:?}"
    );

    cluster.run_step("break-payments").await.unwrap();
    drain(&mut sub);
    let before = cluster.call_stats(Some("orders")).await;
    let mesh = observe(&mut sub, Duration::from_secs(4)).await;
    let after = cluster.call_stats(Some("orders")).await;
    assert!(after[4] > before[4], "injected 503s: {before:?} {after:?}");
    let e = edge(&mesh, &orders, &payments).unwrap();
    let p50 = e.latency().unwrap().quantile(0.5).unwrap();
    assert!(p50 >= 150_000, "injected latency: p50 {p50} µs");

    // Without the contracts, nothing stops a breaking producer.
    cluster.run_step("drop-contracts").await.unwrap();
    tokio::time::sleep(RELOAD).await;
    cluster.run_step("breaking-rollout").await.unwrap();
    drain(&mut sub);
    let before = cluster.call_stats(Some("web")).await;
    let mesh = observe(&mut sub, PHASE).await;
    let after = cluster.call_stats(Some("web")).await;
    assert_eq!(after[3], before[3], "no 422 without the contract");
    let web = id("web", "shop");
    assert!(edge(&mesh, &web, &orders).unwrap().successes > 0);

    cluster.run_step("expire-shipping").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = cluster.call_stats(Some("orders")).await[5];
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        cluster.call_stats(Some("orders")).await[5] > before,
        "handshakes with an expired certificate fail"
    );
    cluster.shutdown().await;
}

fn meshlens() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_meshlens"))
}

#[test]
fn sandbox_up_writes_the_ready_file_and_tap_works_with_its_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    let started = std::time::Instant::now();
    let up = meshlens()
        .args([
            "sandbox",
            "up",
            "--duration",
            "8s",
            "--seed",
            "3",
            "--ready-file",
        ])
        .arg(&ready)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while !ready.exists() {
        assert!(started.elapsed() < Duration::from_secs(10), "no ready file");
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("ready after {:?}", started.elapsed());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&ready).unwrap()).unwrap();
    assert!(
        json["registry"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    let workloads = json["workloads"].as_array().unwrap();
    assert_eq!(workloads.len(), 6, "six meshed workloads: {json}");
    let orders = workloads.iter().find(|w| w["name"] == "orders").unwrap();
    assert_eq!(orders["identity"], id("orders", "shop"));
    let tap = meshlens()
        .arg("tap")
        .arg(orders["admin"].as_str().unwrap())
        .args(["--output", "json", "--max", "3", "--ca"])
        .arg(json["tap"]["ca"].as_str().unwrap())
        .arg("--cert")
        .arg(json["tap"]["cert"].as_str().unwrap())
        .arg("--key")
        .arg(json["tap"]["key"].as_str().unwrap())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&tap.stdout);
    assert_eq!(
        text.lines().count(),
        3,
        "{text}\n{}",
        String::from_utf8_lossy(&tap.stderr)
    );
    assert!(text.contains("shop/orders"), "{text}");
    let out = up.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("workloads 7/8"), "{stdout}");
    assert!(stdout.contains("denied"), "{stdout}");
}

/// In a terminal nobody closes stdin: `--duration` alone must end the process.
#[test]
fn sandbox_up_exits_after_its_duration_while_stdin_stays_open() {
    let mut up = meshlens()
        .args(["sandbox", "up", "--duration", "1s", "--no-scenario"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _stdin_held_open = up.stdin.take();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = up.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(60) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if status.is_none() {
        let _ = up.kill();
        let _ = up.wait();
    }
    assert!(
        status.is_some_and(|s| s.success()),
        "still running a minute after a 1s --duration, waiting for stdin: {status:?}"
    );
}

#[test]
fn validate_points_at_the_line_of_each_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sandbox.yaml");
    std::fs::write(
        &path,
        "namespaces: [shop]\nworkloads:\n- name: web\n  namespace: shop\n  calls:\n  - name: buy\n    target: orders.shop:8080\n    rate: 5\n- name: orders\n  namespace: shoop\n",
    )
    .unwrap();
    let out = meshlens()
        .args(["sandbox", "validate"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("sandbox.yaml:7: workload shop/web: call buy: target `orders.shop:8080`"),
        "{text}"
    );
    assert!(
        text.contains(
            "sandbox.yaml:9: workload shoop/orders: namespace `shoop` is not in `namespaces`"
        ),
        "{text}"
    );

    std::fs::write(
        &path,
        "namespaces: [shop]\nworkloads:\n- name: web\n  namespace: shop\n  replicas: many\n",
    )
    .unwrap();
    let out = meshlens()
        .args(["sandbox", "validate"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("sandbox.yaml:5: workloads[0].replicas"),
        "{text}"
    );

    let demo = meshlens()
        .args(["sandbox", "validate", "assets/sandboxes/shop/sandbox.yaml"])
        .output()
        .unwrap();
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_plays_every_timed_step_in_order_when_compressed() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo::write(dir.path()).unwrap();
    let manifest = Manifest::load(&path).unwrap();
    // The demo's 100 s in about a second and a half.
    let options = Options {
        time_scale: 64.0,
        ..Options::default()
    };
    let cluster = Cluster::start(manifest, options).await.unwrap();
    let mut reports = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), cluster.play(|r| reports.push(r)))
        .await
        .expect("the timeline ends");
    let labels: Vec<&str> = reports.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "compatible-rollout",
            "batch-joins",
            "breaking-rollout",
            "rollback",
            "tighten-inventory",
            "rotate-certs",
            "rotate-payments"
        ]
    );
    assert!(reports.iter().all(|r| r.error.is_none()), "{reports:?}");
    assert!(reports.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(cluster.running().await, (8, 8));
    let err = cluster
        .run_step("no-such-step")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the steps: compatible-rollout, batch-joins"),
        "{err}"
    );
    cluster.shutdown().await;
}

/// The order bodies web sends, as orders' proxy decoded them (redacted per contract).
async fn first_orders(seed: u64) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = demo::write(dir.path()).unwrap();
    let manifest = Manifest::load(&path).unwrap();
    let options = Options {
        seed,
        scenario: false,
        ..Options::default()
    };
    let cluster = Cluster::start(manifest, options).await.unwrap();
    let mut sub = cluster.publisher().subscribe();
    let mut bodies = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while bodies.len() < 3 {
            let e = sub.recv().await.unwrap();
            if e.proxy != "shop/orders" || e.kind != meshlens::tap::EventKind::ResponseEnd {
                continue;
            }
            let body = e.avro.iter().find(|i| {
                i.side == Some(meshlens::tap::MessageSide::Request)
                    && i.subject.as_deref() == Some("shop.orders-value")
            });
            if let Some(v) = body.and_then(|i| i.value_json.clone()) {
                bodies.push(v);
            }
        }
    })
    .await
    .expect("three orders in time");
    cluster.shutdown().await;
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_makes_the_messages_repeatable() {
    let a = first_orders(11).await;
    assert_eq!(a, first_orders(11).await);
    assert_ne!(a, first_orders(12).await);
}
