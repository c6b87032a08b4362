//! `meshlens proxy --config`, run as the README runs it: the example in `examples/sidecar/`
//! with identities from `meshlens identity`, two sidecar processes, and calls through them.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn meshlens(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_meshlens"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

/// Kills the sidecar when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn proxy(dir: &Path, config: &str) -> Running {
    Running(
        Command::new(env!("CARGO_BIN_EXE_meshlens"))
            .current_dir(dir)
            .args(["proxy", "--config", config])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// A one-request-per-connection HTTP app that answers 200 `hello`.
fn app() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = stream;
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
                );
            });
        }
    });
    port
}

/// A raw HTTP/1.1 request; returns the whole response text.
fn call(addr: &str, request: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn the_readme_sidecar_example_works_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sidecar");
    let port = app();
    std::fs::create_dir(d.join("policy")).unwrap();
    for f in ["web.yaml", "orders.yaml", "policy/orders.yaml"] {
        let text = std::fs::read_to_string(example.join(f)).unwrap();
        std::fs::write(d.join(f), text.replace("8080", &port.to_string())).unwrap();
    }
    assert!(
        meshlens(d, &["identity", "init", "--dir", "ca"])
            .status
            .success()
    );
    for sa in ["web", "orders"] {
        let out = meshlens(
            d,
            &[
                "identity", "issue", "--dir", "ca", "--sa", sa, "--ns", "shop", "--out", sa,
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _orders = proxy(d, "orders.yaml");
    let _web = proxy(d, "web.yaml");

    let get = format!("GET / HTTP/1.1\r\nhost: orders.shop:{port}\r\nconnection: close\r\n\r\n");
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = loop {
        match call("127.0.0.2:4140", &get) {
            Some(r) if r.starts_with("HTTP/1.1 200") => break r,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "no 200 through the sidecars: {other:?}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    assert!(first.ends_with("hello"), "{first}");

    let post = format!(
        "POST / HTTP/1.1\r\nhost: orders.shop:{port}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    let denied = call("127.0.0.2:4140", &post).unwrap();
    assert!(denied.starts_with("HTTP/1.1 403"), "{denied}");
    assert!(
        denied.contains("l5d-proxy-error: unauthorized request on route"),
        "{denied}"
    );

    let metrics = call(
        "127.0.0.3:4191",
        "GET /metrics HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n",
    )
    .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("request_total{direction=\"inbound\"")
                && l.contains("authz_name=\"web-reads-orders\"")),
        "{metrics}"
    );
}

#[test]
fn a_bad_config_is_one_line_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("p.yaml"),
        "workload: {namespace: shop, name: web}\nidentity: {trustAnchors: a, cert: b, key: c}\ninbound: {port: 80}\ntimeouts: {connect: soon}\n",
    )
    .unwrap();
    let out = meshlens(d, &["proxy", "--config", "p.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("p.yaml") && err.contains("timeouts.connect") && err.contains("soon"),
        "{err}"
    );

    std::fs::write(
        d.join("p.yaml"),
        "workload: {namespace: shop, name: web}\nidentity: {trustAnchors: a.pem, cert: b, key: c}\ninbound: {port: 80}\n",
    )
    .unwrap();
    let out = meshlens(d, &["proxy", "--config", "p.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("a.pem"), "names the missing file: {err}");
}
