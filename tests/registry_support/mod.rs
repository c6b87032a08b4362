//! Shared by the `registry_*` integration tests: start `meshlens registry serve` on a free
//! loopback port, talk plain HTTP/1.1 to it, and always stop it.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const CT: &str = "application/vnd.schemaregistry.v1+json";

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_meshlens"))
}

/// A running `meshlens registry serve`, killed when dropped.
pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// `http://127.0.0.1:PORT`
    pub url: String,
}

impl Server {
    pub fn start(dir: &Path) -> Server {
        let mut child = bin()
            .args(["registry", "serve", "--listen", "127.0.0.1:0", "--dir"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start meshlens registry serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok).unwrap_or_default();
            let _ = tx.send(first);
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line.starts_with("listening on http://") => line,
            other => {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "the server did not start: {other:?}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        };
        let url = line.trim_start_matches("listening on ").trim().to_string();
        let addr = url.trim_start_matches("http://").to_string();
        Server { child, addr, url }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the server to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = std::time::Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn get(&self, path: &str) -> Reply {
        http(&self.addr, "GET", path, None, "")
    }

    pub fn post(&self, path: &str, body: &str) -> Reply {
        http(&self.addr, "POST", path, Some(CT), body)
    }

    pub fn put(&self, path: &str, body: &str) -> Reply {
        http(&self.addr, "PUT", path, Some(CT), body)
    }

    pub fn delete(&self, path: &str) -> Reply {
        http(&self.addr, "DELETE", path, None, "")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// `(status, error_code)` of an error reply.
    pub fn code(&self) -> (u16, i64) {
        (
            self.status,
            self.json()["error_code"].as_i64().unwrap_or(-1),
        )
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
pub fn http(addr: &str, method: &str, path: &str, content_type: Option<&str>, body: &str) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect to the registry");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        req.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head[9..12].parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    Reply {
        status,
        content_type,
        body: body.to_string(),
    }
}

/// `{"schema": "<schema>"}`
pub fn schema_body(schema: &str) -> String {
    serde_json::json!({ "schema": schema }).to_string()
}
