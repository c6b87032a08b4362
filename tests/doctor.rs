//! `meshlens doctor`, run as a person runs it: over real certificate files from the
//! project's CA, real policy files, and a real `meshlens proxy` on 127.0.0.9.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use meshlens::identity::{Ca, ControlPlane, Leaf, LeafPolicy};

fn meshlens(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshlens"))
        .args(args)
        .output()
        .unwrap()
}

/// Standard output and the exit code of `meshlens doctor ARGS`.
fn doctor(args: &[&str]) -> (String, i32) {
    let mut all = vec!["doctor"];
    all.extend_from_slice(args);
    let out = meshlens(&all);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (text, out.status.code().unwrap_or(-1))
}

fn failures(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with('✗')).collect()
}

struct Pki {
    ca: Ca,
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        Pki {
            ca: Ca::generate(&ControlPlane::default(), SystemTime::now()).unwrap(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write_anchors(&self, name: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, self.ca.bundle().to_pem()).unwrap();
        p
    }

    fn issue(&self, sa: &str, ns: &str, lifetime: Duration, at: SystemTime) -> Leaf {
        let name = ControlPlane::default().identity(sa, ns).unwrap();
        let policy = LeafPolicy {
            lifetime,
            ..LeafPolicy::default()
        };
        self.ca.issue(&name, &policy, at).unwrap()
    }

    fn write_leaf(&self, prefix: &str, leaf: &Leaf) -> (PathBuf, PathBuf) {
        let cert = self.path(&format!("{prefix}.crt"));
        let key = self.path(&format!("{prefix}.key"));
        std::fs::write(&cert, leaf.chain_pem()).unwrap();
        std::fs::write(&key, leaf.key_pem()).unwrap();
        (cert, key)
    }
}

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const MONTH: Duration = Duration::from_secs(30 * 24 * 60 * 60);

const POLICY: &str = r#"apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: orders-http, namespace: shop}
spec:
  podSelector: {matchLabels: {app: orders}}
  port: http
  proxyProtocol: HTTP/1
"#;

/// A workspace with the orders sidecar's config, certificate files from the CA and a policy
/// directory; every listener on 127.0.0.9 with a port the system picks.
fn orders(pki: &Pki) -> PathBuf {
    pki.write_anchors("ca.pem");
    pki.write_leaf(
        "orders",
        &pki.issue("orders", "shop", MONTH, SystemTime::now()),
    );
    std::fs::create_dir_all(pki.path("policy")).unwrap();
    std::fs::write(pki.path("policy/orders.yaml"), POLICY).unwrap();
    let config = pki.path("orders.yaml");
    std::fs::write(
        &config,
        "workload: {namespace: shop, name: orders, serviceAccount: orders, labels: {app: orders}, ports: [{name: http, port: 8080}]}\n\
         identity: {trustAnchors: ca.pem, cert: orders.crt, key: orders.key}\n\
         inbound: {listen: 127.0.0.9:0, port: 8080}\n\
         outbound: {listen: 127.0.0.9:0}\n\
         admin: {listen: 127.0.0.9:0}\n\
         policy: {dir: policy}\n",
    )
    .unwrap();
    config
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Kills the proxy when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `meshlens proxy` and returns it with its admin address, read from what it prints.
fn start_proxy(config: &Path) -> (Running, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshlens"))
        .args(["proxy", "--config", s(config)])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    // Drains what the proxy prints for as long as it runs: a closed pipe would stop it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("admin    http://") {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the proxy printed no admin address");
    (running, addr)
}

#[test]
fn a_good_config_passes_every_check() {
    let pki = Pki::new();
    let config = orders(&pki);
    let (out, code) = doctor(&[s(&config)]);
    assert_eq!(code, 0, "{out}");
    assert!(failures(&out).is_empty(), "{out}");
    for line in [
        "✓ config:",
        "✓ identity.trustAnchors:",
        "✓ identity.key:",
        "✓ certificate expiry:",
        "✓ chain:",
        "✓ identity: orders.shop.serviceaccount.identity.linkerd.cluster.local",
        "✓ policy:",
        "✓ admin.listen:",
    ] {
        assert!(out.lines().any(|l| l.starts_with(line)), "{line}\n{out}");
    }
}

#[test]
fn an_expired_certificate_fails_with_when_and_how_to_renew() {
    let pki = Pki::new();
    let config = orders(&pki);
    let two_days_ago = SystemTime::now() - Duration::from_secs(2 * 24 * 60 * 60);
    let old = pki.issue("orders", "shop", Duration::from_secs(3600), two_days_ago);
    pki.write_leaf("orders", &old);
    let (out, code) = doctor(&[s(&config)]);
    assert_eq!(code, 1, "{out}");
    let expiry = out
        .lines()
        .find(|l| l.starts_with("✗ certificate expiry:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        expiry.contains("expired at") && expiry.contains("ago"),
        "{expiry}"
    );
    // The chain itself is fine: only the dates are wrong.
    assert!(out.lines().any(|l| l.starts_with("✓ chain:")), "{out}");

    // The suggested command runs as printed (with a CA directory for `CA`) and writes over
    // the config's own files, after which the expiry is fine.
    let command = expiry
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no command in {expiry}"));
    let ca = pki.path("ca");
    let init = meshlens(&["identity", "init", "--dir", s(&ca)]);
    assert!(init.status.success(), "{init:?}");
    let args: Vec<&str> = command
        .split_whitespace()
        .skip(1)
        .map(|a| if a == "CA" { s(&ca) } else { a })
        .collect();
    assert_eq!(
        args[..5],
        ["identity", "issue", "--dir", s(&ca), "--sa"],
        "{command}"
    );
    let issued = meshlens(&args);
    assert!(
        issued.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&issued.stderr)
    );
    let (out, _) = doctor(&[s(&config)]);
    assert!(
        out.lines().any(|l| l.starts_with("✓ certificate expiry:")),
        "{out}"
    );
}

#[test]
fn a_sidecar_started_with_an_expired_certificate_says_so() {
    let pki = Pki::new();
    let config = orders(&pki);
    let two_days_ago = SystemTime::now() - Duration::from_secs(2 * 24 * 60 * 60);
    pki.write_leaf(
        "orders",
        &pki.issue("orders", "shop", Duration::from_secs(3600), two_days_ago),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshlens"))
        .args(["proxy", "--config", s(&config)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _running = Running(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the proxy said nothing about its expired certificate");
    assert!(
        line.starts_with("warning: ")
            && line.contains("orders.crt: the certificate expired at")
            && line.contains("meshlens doctor"),
        "{line}"
    );
}

#[test]
fn a_certificate_past_its_renewal_point_is_a_warning_not_a_failure() {
    let pki = Pki::new();
    let config = orders(&pki);
    // 20 of its 24 hours have passed: Linkerd would have renewed it at 70 %.
    let twenty_hours_ago = SystemTime::now() - Duration::from_secs(20 * 60 * 60);
    let leaf = pki.issue("orders", "shop", DAY, twenty_hours_ago);
    pki.write_leaf("orders", &leaf);
    let (out, code) = doctor(&[s(&config)]);
    assert_eq!(code, 0, "{out}");
    let expiry = out
        .lines()
        .find(|l| l.starts_with("! certificate expiry:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        expiry.contains("expires at")
            && expiry.contains(" hours: less than 30% of its lifetime of 1 day"),
        "{expiry}"
    );
}

#[test]
fn a_fresh_day_long_certificate_passes_with_the_time_left_in_words() {
    let pki = Pki::new();
    let config = orders(&pki);
    pki.write_leaf(
        "orders",
        &pki.issue("orders", "shop", DAY, SystemTime::now()),
    );
    let (out, code) = doctor(&[s(&config)]);
    assert_eq!(code, 0, "{out}");
    let expiry = out
        .lines()
        .find(|l| l.contains("certificate expiry:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        expiry.starts_with("✓ certificate expiry:") && expiry.contains(" left of 1 day)"),
        "{expiry}"
    );
}

#[test]
fn trust_anchors_of_another_mesh_fail_the_chain() {
    let pki = Pki::new();
    let config = orders(&pki);
    let other = Pki::new();
    std::fs::write(pki.path("ca.pem"), other.ca.bundle().to_pem()).unwrap();
    let (out, code) = doctor(&[s(&config)]);
    assert_eq!(code, 1, "{out}");
    let chain = failures(&out);
    assert_eq!(chain.len(), 1, "{out}");
    assert!(
        chain[0].starts_with("✗ chain:") && chain[0].contains("trust anchors differ"),
        "{out}"
    );
}

#[test]
fn a_certificate_for_another_workload_names_both_identities() {
    let pki = Pki::new();
    let config = orders(&pki);
    pki.write_leaf(
        "orders",
        &pki.issue("orders", "billing", MONTH, SystemTime::now()),
    );
    let (out, code) = doctor(&[s(&config)]);
    assert_eq!(code, 1, "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("✗ identity:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("orders.billing.serviceaccount")
            && line.contains("orders.shop.serviceaccount"),
        "{line}"
    );
}

#[test]
fn a_key_from_another_certificate_is_named() {
    let pki = Pki::new();
    let config = orders(&pki);
    let other = pki.issue("orders", "shop", MONTH, SystemTime::now());
    std::fs::write(pki.path("orders.key"), other.key_pem()).unwrap();
    let (out, code) = doctor(&[s(&config)]);
    assert_eq!(code, 1, "{out}");
    let line = failures(&out);
    assert!(
        line.len() == 1 && line[0].contains("does not belong to the certificate"),
        "{out}"
    );
}

#[test]
fn a_missing_file_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let (out, code) = doctor(&[s(&dir.path().join("proxy.yaml"))]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.starts_with("✗ config: cannot read") && out.contains("proxy.yaml"),
        "{out}"
    );

    let pki = Pki::new();
    let config = orders(&pki);
    std::fs::remove_file(pki.path("orders.crt")).unwrap();
    let (out, code) = doctor(&[s(&config)]);
    assert_eq!(code, 1, "{out}");
    let missing = failures(&out);
    assert_eq!(missing.len(), 1, "{out}");
    assert!(
        missing[0].starts_with("✗ identity.cert: cannot read") && missing[0].contains("orders.crt"),
        "{out}"
    );
}

#[test]
fn a_broken_policy_directory_fails_and_points_at_lint() {
    let pki = Pki::new();
    let config = orders(&pki);
    std::fs::write(pki.path("policy/bad.yaml"), "kind: [unclosed\n").unwrap();
    let (out, code) = doctor(&[s(&config)]);
    assert_eq!(code, 1, "{out}");
    let line = failures(&out);
    assert!(
        line.len() == 1
            && line[0].starts_with("✗ policy:")
            && line[0].contains("meshlens policy lint"),
        "{out}"
    );
}

#[test]
fn a_tap_connection_is_checked_step_by_step() {
    let pki = Pki::new();
    let config = orders(&pki);
    let (_proxy, admin) = start_proxy(&config);
    let ca = pki.path("ca.pem");
    let (op_cert, op_key) = pki.write_leaf(
        "operator",
        &pki.issue("meshlens-operator", "meshlens", MONTH, SystemTime::now()),
    );
    let tap = |ca: &Path, cert: &Path, key: &Path| {
        doctor(&[
            "--tap",
            &admin,
            "--ca",
            s(ca),
            "--cert",
            s(cert),
            "--key",
            s(key),
        ])
    };

    let (out, code) = tap(&ca, &op_cert, &op_key);
    assert_eq!(code, 0, "{out}");
    for line in ["✓ connect:", "✓ tls:", "✓ tap:"] {
        assert!(out.lines().any(|l| l.starts_with(line)), "{line}\n{out}");
    }

    let other = Pki::new();
    let other_ca = other.write_anchors("other.pem");
    let (out, code) = tap(&other_ca, &op_cert, &op_key);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        failures(&out),
        [
            "✗ tls: the proxy's certificate is not signed by your --ca (trust anchors differ) → pass the trust anchors of the proxy's mesh as --ca (its identity.trustAnchors)"
        ],
        "{out}"
    );

    let (foreign_cert, foreign_key) = other.write_leaf(
        "operator",
        &other.issue("meshlens-operator", "meshlens", MONTH, SystemTime::now()),
    );
    let (out, code) = tap(&ca, &foreign_cert, &foreign_key);
    assert_eq!(code, 1, "{out}");
    let refused = failures(&out);
    assert!(
        refused.len() == 1 && refused[0].starts_with("✗ tls: the proxy refused your certificate"),
        "{out}"
    );

    let (web_cert, web_key) =
        pki.write_leaf("web", &pki.issue("web", "shop", MONTH, SystemTime::now()));
    let (out, code) = tap(&ca, &web_cert, &web_key);
    assert_eq!(code, 1, "{out}");
    let denied = failures(&out);
    assert!(
        denied.len() == 1
            && denied[0].starts_with(
                "✗ tap: 403: identity web.shop.serviceaccount.identity.linkerd.cluster.local is not allowed to tap"
            )
            && denied[0].contains("add it to admin.tapAllow in the proxy config"),
        "{out}"
    );

    drop(_proxy);
    let (out, code) = tap(&ca, &op_cert, &op_key);
    assert_eq!(code, 1, "{out}");
    assert!(
        failures(&out)
            .iter()
            .any(|l| l.starts_with("✗ connect: cannot connect to")),
        "{out}"
    );
}

#[test]
fn doctor_needs_something_to_check() {
    let out = meshlens(&["doctor"]);
    assert_eq!(out.status.code(), Some(2));
    let out = meshlens(&["doctor", "--tap", "127.0.0.9:1"]);
    assert_eq!(out.status.code(), Some(2), "--tap needs credentials");
}
