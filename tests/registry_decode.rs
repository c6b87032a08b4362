//! `meshlens avro decode --registry URL|DIR`: registry ids and fingerprints decode without
//! `--schema`, and `--describe` names the subject and version.

mod registry_support;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;

use registry_support::{Server, bin, schema_body};
use serde_json::json;

const GREETING: &str = r#"{"type":"record","name":"Greeting","fields":[{"name":"text","type":"string"},{"name":"n","type":"int"}]}"#;
/// text "hi", n 21
const DATUM: &[u8] = &[0x04, b'h', b'i', 0x2a];

fn confluent(id: u32) -> Vec<u8> {
    let mut p = vec![0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(DATUM);
    p
}

fn decode(registry: &str, payload: &[u8], dir: &Path, extra: &[&str]) -> Output {
    let file = dir.join("payload.bin");
    std::fs::write(&file, payload).unwrap();
    bin()
        .args(["avro", "decode", "--describe", "--registry", registry])
        .args(extra)
        .arg(&file)
        .output()
        .unwrap()
}

fn ok(o: &Output) -> (String, String) {
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{stderr}");
    (
        String::from_utf8_lossy(&o.stdout).trim().to_string(),
        stderr,
    )
}

/// The fingerprint `meshlens schema fingerprint` prints for a schema.
fn fingerprint(dir: &Path, schema: &str) -> i64 {
    let file = dir.join("s.avsc");
    std::fs::write(&file, schema).unwrap();
    let out = bin()
        .args(["schema", "fingerprint"])
        .arg(&file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn ids_decode_through_a_url_and_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("reg");
    let s = Server::start(&reg);
    s.post("/subjects/other-value/versions", &schema_body("\"long\""));
    assert_eq!(
        s.post("/subjects/greetings-value/versions", &schema_body(GREETING))
            .json(),
        json!({"id": 2})
    );

    let expected = r#"{"text":"hi","n":21}"#;
    // Through the server, and straight from the directory it serves (read while it runs).
    for registry in [s.url.as_str(), reg.to_str().unwrap()] {
        let (out, err) = ok(&decode(registry, &confluent(2), tmp.path(), &[]));
        assert_eq!(out, expected, "{registry}");
        assert!(err.contains("reference: schema id 2"), "{err}");
        assert!(err.contains("writer: Greeting"), "{err}");
        assert!(err.contains("subject greetings-value version 1"), "{err}");
    }

    // Single-object encoding carries a fingerprint; the registry finds the schema by it.
    let fp = fingerprint(tmp.path(), GREETING);
    let mut soe = vec![0xc3, 0x01];
    soe.extend_from_slice(&fp.to_le_bytes());
    soe.extend_from_slice(DATUM);
    for registry in [s.url.as_str(), reg.to_str().unwrap()] {
        let (out, err) = ok(&decode(registry, &soe, tmp.path(), &[]));
        assert_eq!(out, expected, "{registry}");
        assert!(err.contains("subject greetings-value version 1"), "{err}");
    }

    // A subject and version in headers (the payload is the bare datum).
    let v2 = GREETING.replace(
        r#"{"name":"n","type":"int"}"#,
        r#"{"name":"n","type":"int"},{"name":"tag","type":"string","default":"none"}"#,
    );
    s.post("/subjects/greetings-value/versions", &schema_body(&v2));
    for registry in [s.url.as_str(), reg.to_str().unwrap()] {
        let subject = ["--header", "x-avro-subject=greetings-value"];
        let (out, err) = ok(&decode(
            registry,
            DATUM,
            tmp.path(),
            &[subject[0], subject[1], "--header", "x-avro-version=1"],
        ));
        assert_eq!(out, expected, "{registry}");
        assert!(err.contains("subject greetings-value version 1"), "{err}");
        // Without a version: the latest, which has the extra field.
        let mut latest_datum = DATUM.to_vec();
        latest_datum.extend_from_slice(&[0x02, b'x']);
        let (out, err) = ok(&decode(registry, &latest_datum, tmp.path(), &subject));
        assert_eq!(out, r#"{"text":"hi","n":21,"tag":"x"}"#, "{registry}");
        assert!(err.contains("subject greetings-value version 2"), "{err}");
    }

    // An id the registry does not have is one clear line.
    for registry in [s.url.as_str(), reg.to_str().unwrap()] {
        let o = decode(registry, &confluent(77), tmp.path(), &[]);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("schema id 77"), "{err}");
    }
}

#[test]
fn bad_registry_arguments_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let payload = confluent(1);
    let o = decode("/no/such/registry", &payload, tmp.path(), &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("--registry /no/such/registry: no such directory"),
        "{err}"
    );

    // Nothing listens on port 9 (discard): the error says the registry could not be reached.
    let o = decode("http://127.0.0.1:9", &payload, tmp.path(), &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("http://127.0.0.1:9/schemas/ids/1") && err.contains("could not connect"),
        "{err}"
    );

    let o = decode(
        "http://127.0.0.1:9",
        &payload,
        tmp.path(),
        &["--registry-user", "me"],
    );
    assert!(!o.status.success(), "a user needs a password");
}

/// Accepts one connection, records the request head, answers `status` with `body`.
fn one_shot_server(
    status: &str,
    body: impl Into<String>,
) -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let status = status.to_string();
    let body: String = body.into();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut head = String::new();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let reply = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(reply.as_bytes()).unwrap();
        let _ = reader.read_to_end(&mut Vec::new());
        head
    });
    (url, handle)
}

#[test]
fn credentials_reach_the_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let refused = r#"{"error_code":40101,"message":"Unauthorized"}"#;

    // Basic auth from flags.
    let (url, head) = one_shot_server("401 Unauthorized", refused);
    let o = decode(
        &url,
        &confluent(5),
        tmp.path(),
        &["--registry-user", "me", "--registry-password", "pw"],
    );
    let head = head.join().unwrap().to_ascii_lowercase();
    assert!(head.contains("authorization: basic bwu6chc="), "{head}");
    assert!(head.starts_with("get /schemas/ids/5 http/1.1"), "{head}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("HTTP 401 (error 40101): Unauthorized"),
        "{err}"
    );
    assert!(
        err.contains("--registry-token"),
        "the error says how to authenticate: {err}"
    );

    // Basic auth from the URL's userinfo, which never shows in messages.
    let (url, head) = one_shot_server("401 Unauthorized", refused);
    let with_user = url.replace("http://", "http://me:s%3Acret@");
    let o = decode(&with_user, &confluent(5), tmp.path(), &[]);
    let head = head.join().unwrap().to_ascii_lowercase();
    // base64("me:s:cret")
    assert!(head.contains("authorization: basic bwu6czpjcmv0"), "{head}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("cret"), "{err}");

    // A bearer token.
    let (url, head) = one_shot_server(
        "404 Not Found",
        r#"{"error_code":40403,"message":"Schema 5 not found"}"#,
    );
    let o = decode(
        &url,
        &confluent(5),
        tmp.path(),
        &["--registry-token", "tok123"],
    );
    let head = head.join().unwrap().to_ascii_lowercase();
    assert!(head.contains("authorization: bearer tok123"), "{head}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("schema id 5"), "{err}");
}

#[test]
fn confluent_v1_guids_resolve_through_a_remote_registry() {
    // Confluent 8 registries answer GET /schemas/guids/{guid}; meshlens' own registry
    // assigns no GUIDs, so a recording server plays the registry here.
    let tmp = tempfile::tempdir().unwrap();
    let guid: [u8; 16] = [
        0x3f, 0x2b, 0x9c, 0x10, 0x5e, 0x44, 0x4a, 0x7b, 0x9d, 0x01, 0x22, 0x33, 0x44, 0x55, 0x66,
        0x77,
    ];
    let mut frame = vec![1];
    frame.extend_from_slice(&guid);
    frame.extend_from_slice(DATUM);
    let (url, head) = one_shot_server("200 OK", json!({ "schema": GREETING }).to_string());
    let (out, err) = ok(&decode(&url, &frame, tmp.path(), &[]));
    let head = head.join().unwrap();
    assert!(
        head.starts_with("GET /schemas/guids/3f2b9c10-5e44-4a7b-9d01-223344556677 HTTP/1.1"),
        "{head}"
    );
    assert_eq!(out, r#"{"text":"hi","n":21}"#);
    assert!(
        err.contains("reference: schema GUID 3f2b9c10-5e44-4a7b-9d01-223344556677"),
        "{err}"
    );
}
