//! `meshlens record`, `replay` and `top` against real proxies on loopback: a recording made
//! while requests flow replays the same requests; a recorder killed mid-stream leaves a file
//! that still reads; Ctrl-C finishes the file; `top` piped prints snapshot tables.

mod proxy_support;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use meshlens::identity::{ControlPlane, LeafPolicy};
use meshlens::tap::recording::Recording;
use proxy_support::*;

/// Kills the child when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Child {
    fn output(&mut self) -> (String, String) {
        let mut stdout = String::new();
        let mut stderr = String::new();
        self.0
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        self.0
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (stdout, stderr)
    }
}

/// The operator's certificate and key files, and the trust anchors.
fn operator_files(mesh: &Mesh) -> Vec<PathBuf> {
    let name = ControlPlane::default()
        .identity("meshlens-operator", "meshlens")
        .unwrap();
    let leaf = mesh
        .pki
        .ca
        .issue(&name, &LeafPolicy::default(), std::time::SystemTime::now())
        .unwrap();
    let (cert, key) = mesh.pki.write_leaf("operator", &leaf);
    vec![mesh.pki.anchors(), cert, key]
}

/// `meshlens <command> ADDR... --ca --cert --key <extra>`, piped.
fn meshlens(mesh: &Mesh, command: &str, addrs: &[String], extra: &[&str]) -> Child {
    let files = operator_files(mesh);
    Child(
        Command::new(env!("CARGO_BIN_EXE_meshlens"))
            .arg(command)
            .args(addrs)
            .arg("--ca")
            .arg(&files[0])
            .arg("--cert")
            .arg(&files[1])
            .arg("--key")
            .arg(&files[2])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn both(mesh: &Mesh) -> Vec<String> {
    vec![
        mesh.orders.addrs.admin.to_string(),
        mesh.web.addrs.admin.to_string(),
    ]
}

async fn call(mesh: &Mesh, n: u32) {
    let status = http1(
        mesh.web.addrs.outbound,
        get("orders.shop:80", &format!("/v1/orders/{n}")),
    )
    .await
    .status();
    assert_eq!(status, 200);
}

/// Sends requests until the child exits (or `until` says so); returns how many were sent.
async fn keep_calling(mesh: &Mesh, child: &mut Child, until: impl Fn() -> bool) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    while child.0.try_wait().unwrap().is_none() && !until() {
        assert!(Instant::now() < deadline, "the child did not stop in time");
        call(mesh, n).await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    n
}

fn replay_json(path: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_meshlens"))
        .arg("replay")
        .arg(path)
        .args(["--speed", "max", "--output", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_replays_the_requests_it_saw() {
    let mesh = Mesh::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shop.avro");
    let out = file.to_str().unwrap();
    let mut child = meshlens(
        &mesh,
        "record",
        &both(&mesh),
        &["-o", out, "--duration", "4s"],
    );
    keep_calling(&mesh, &mut child, || false).await;
    let status = child.0.wait().unwrap();
    let (stdout, stderr) = child.output();
    assert!(status.success(), "{stderr}");
    let recording = Recording::open(&file).unwrap();
    assert_eq!(recording.ignored_bytes(), 0);
    let summary = format!(
        "{out}: {} events in {} blocks, {} bytes; 0 lost",
        recording.events(),
        recording.blocks().len(),
        std::fs::metadata(&file).unwrap().len()
    );
    assert_eq!(stdout.trim(), summary);
    assert!(recording.events() >= 6, "{summary}");

    let events = replay_json(&file);
    assert_eq!(events.len() as u64, recording.events());
    // ISO 8601 UTC times with the same precision: text order is time order.
    let times: Vec<&str> = events
        .iter()
        .map(|e| e["time_us"].as_str().unwrap())
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["proxy"] == "shop/orders" && e["direction"] == "INBOUND"),
        "the orders proxy's inbound events"
    );
    assert!(
        events
            .iter()
            .any(|e| e["proxy"] == "shop/web" && e["direction"] == "OUTBOUND"),
        "the web proxy's outbound events"
    );
    let ends: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["kind"] == "RESPONSE_END" && e["proxy"] == "shop/orders")
        .collect();
    assert!(!ends.is_empty());
    for e in ends {
        assert_eq!(e["http"]["status"], 200, "{e}");
        assert!(
            e["http"]["path"]
                .as_str()
                .unwrap()
                .starts_with("/v1/orders/"),
            "{e}"
        );
    }
    // A stream's events come in order: request start, response start, response end.
    for e in events.iter().filter(|e| e["kind"] == "RESPONSE_END") {
        let start = events.iter().position(|s| {
            s["kind"] == "REQUEST_START" && s["proxy"] == e["proxy"] && s["stream"] == e["stream"]
        });
        let end = events.iter().position(|s| std::ptr::eq(s, e)).unwrap();
        if let Some(start) = start {
            assert!(start < end && times[start] <= times[end]);
        }
    }

    // The file is kept unless --force.
    let mut again = meshlens(&mesh, "record", &both(&mesh), &["-o", out]);
    let status = again.0.wait().unwrap();
    let (_, stderr) = again.output();
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("already exists") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(Recording::open(&file).unwrap().events(), recording.events());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorder_killed_mid_stream_leaves_a_readable_file() {
    let mesh = Mesh::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("killed.avro");
    let mut child = meshlens(
        &mesh,
        "record",
        &both(&mesh),
        &["-o", file.to_str().unwrap()],
    );
    // Until at least two blocks are on disk, with requests still flowing when it dies.
    let written = || Recording::open(&file).is_ok_and(|r| r.blocks().len() >= 2);
    keep_calling(&mesh, &mut child, written).await;
    for n in 0..5 {
        call(&mesh, 1000 + n).await;
    }
    child.0.kill().unwrap(); // SIGKILL: no chance to finish the file
    child.0.wait().unwrap();
    let recording = Recording::open(&file).unwrap();
    assert!(recording.blocks().len() >= 2);
    let events = replay_json(&file);
    assert_eq!(events.len() as u64, recording.events());
    assert!(events.iter().any(|e| e["kind"] == "RESPONSE_END"));

    // Cut inside its last block (as a kill during a write leaves it), replay says so.
    let bytes = std::fs::read(&file).unwrap();
    let last = *recording.blocks().last().unwrap();
    let cut_at = (last.offset + last.len - 3) as usize;
    let cut = dir.path().join("cut.avro");
    std::fs::write(&cut, &bytes[..cut_at]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_meshlens"))
        .arg("replay")
        .arg(&cut)
        .args(["--speed", "max", "--output", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let complete = recording.events() - last.events;
    assert_eq!(
        stderr.trim(),
        format!(
            "{}: ignoring the last {} bytes, a block cut off when the recorder stopped; replaying the {complete} events before them",
            cut.display(),
            last.len - 3
        )
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count() as u64,
        complete
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_finishes_the_recording() {
    let mesh = Mesh::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("interrupted.avro");
    let mut child = meshlens(
        &mesh,
        "record",
        &both(&mesh),
        &["-o", file.to_str().unwrap()],
    );
    let written = || Recording::open(&file).is_ok_and(|r| r.events() > 0);
    keep_calling(&mesh, &mut child, written).await;
    call(&mesh, 77).await;
    let sent = Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = child.0.wait().unwrap();
    let (stdout, stderr) = child.output();
    assert!(status.success(), "{stderr}");
    let recording = Recording::open(&file).unwrap();
    assert_eq!(recording.ignored_bytes(), 0);
    assert!(
        stdout.contains(&format!("{} events", recording.events())),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_piped_prints_a_table_by_route() {
    let mesh = Mesh::start().await;
    let mut child = meshlens(
        &mesh,
        "top",
        &both(&mesh),
        &["--duration", "4s", "--interval", "500ms"],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "top did not stop in time");
        call(&mesh, 5).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (stdout, stderr) = child.output();
    assert!(child.0.wait().unwrap().success(), "{stderr}");
    assert!(!stdout.contains('\x1b'), "no terminal codes when piped");
    let snapshots: Vec<&str> = stdout.trim_end().split("\n\n").collect();
    assert!(snapshots.len() >= 3, "{stdout}");
    let last: Vec<&str> = snapshots.last().unwrap().lines().collect();
    let header: Vec<&str> = last[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "Source",
            "Destination",
            "Method",
            "Path",
            "Count",
            "Best",
            "Worst",
            "Last",
            "Success",
            "Rate"
        ]
    );
    assert_eq!(last.len(), 2, "one route: {stdout}");
    let row: Vec<&str> = last[1].split_whitespace().collect();
    assert_eq!(
        &row[1..4],
        ["shop/orders", "GET", "/v1/orders/5"],
        "{stdout}"
    );
    let count: u64 = row[4].parse().unwrap();
    assert!(count > 0, "{stdout}");
    assert_eq!(row[8], "100.00%");
}
