//! `meshlens registry serve` over real loopback HTTP: Confluent's paths, JSON shapes, content
//! type and error codes, ids that survive a crash, one server per directory, and a clean stop.

mod registry_support;

use std::time::Duration;

use registry_support::{CT, Server, bin, http, schema_body};
use serde_json::json;

const V1: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"string"}]}"#;
const V2: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"string"},{"name":"total","type":"double","default":0.0}]}"#;
const V3_BREAKS: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"string"},{"name":"total","type":"double","default":0.0},{"name":"coupon","type":"string"}]}"#;

#[test]
fn register_look_up_evolve_check_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("reg"));

    let r = s.post("/subjects/orders-value/versions", &schema_body(V1));
    assert_eq!((r.status, r.json()), (200, json!({"id": 1})));
    assert_eq!(r.content_type, CT);
    // The same schema, written differently, under another subject: the same id.
    let spaced =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(V1).unwrap())
            .unwrap();
    assert_eq!(
        s.post("/subjects/audit-value/versions", &schema_body(&spaced))
            .json(),
        json!({"id": 1})
    );
    assert_eq!(
        s.post("/subjects/orders-value/versions", &schema_body(V2))
            .json(),
        json!({"id": 2})
    );
    // Registering again changes nothing.
    assert_eq!(
        s.post("/subjects/orders-value/versions", &schema_body(V2))
            .json(),
        json!({"id": 2})
    );

    assert_eq!(
        s.get("/subjects").json(),
        json!(["audit-value", "orders-value"])
    );
    assert_eq!(
        s.get("/subjects/orders-value/versions").json(),
        json!([1, 2])
    );
    assert_eq!(
        s.get("/subjects/orders-value/versions/latest").json(),
        json!({"subject": "orders-value", "version": 2, "id": 2, "schema": V2})
    );
    assert_eq!(
        s.get("/subjects/orders-value/versions/-1").json()["version"],
        2
    );
    assert_eq!(s.get("/subjects/orders-value/versions/1").json()["id"], 1);
    assert_eq!(s.get("/subjects/orders-value/versions/1/schema").body, V1);
    assert_eq!(s.get("/schemas/ids/2").json(), json!({"schema": V2}));
    assert_eq!(s.get("/schemas/ids/1/schema").body, V1);
    assert_eq!(
        s.get("/schemas/ids/1/subjects").json(),
        json!(["audit-value", "orders-value"])
    );
    assert_eq!(
        s.get("/schemas/ids/1/versions").json(),
        json!([{"subject": "audit-value", "version": 1}, {"subject": "orders-value", "version": 1}])
    );
    assert_eq!(s.get("/schemas/types").json(), json!(["AVRO"]));
    assert_eq!(
        s.get("/schemas?subjectPrefix=orders&latestOnly=true")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Lookup: is this schema in the subject?
    let found = s.post("/subjects/orders-value", &schema_body(V1)).json();
    assert_eq!(
        (found["version"].clone(), found["id"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(
        s.post("/subjects/orders-value", &schema_body(V3_BREAKS))
            .code(),
        (404, 40403)
    );
    assert_eq!(
        s.post("/subjects/nobody", &schema_body(V1)).code(),
        (404, 40401)
    );

    // Compatibility, plain and verbose.
    let c = s.post(
        "/compatibility/subjects/orders-value/versions/latest",
        &schema_body(V3_BREAKS),
    );
    assert_eq!(c.json(), json!({"is_compatible": false}));
    let c = s
        .post(
            "/compatibility/subjects/orders-value/versions/latest?verbose=true",
            &schema_body(V3_BREAKS),
        )
        .json();
    let messages = c["messages"].as_array().unwrap();
    assert_eq!(
        messages[0],
        "{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field 'coupon' at path '/fields/2' in the new schema has no default value and is missing in the old schema', additionalInfo:'coupon'}"
    );
    assert_eq!(messages[1], "{oldSchemaVersion: 2}");
    assert_eq!(
        messages.last().unwrap(),
        "{validateFields: 'false', compatibility: 'BACKWARD'}"
    );
    let c = s
        .post(
            "/compatibility/subjects/orders-value/versions?verbose=true",
            &schema_body(V2),
        )
        .json();
    assert_eq!(c, json!({"is_compatible": true, "messages": []}));

    // An incompatible registration is a 409 that says why.
    let r = s.post("/subjects/orders-value/versions", &schema_body(V3_BREAKS));
    assert_eq!(r.code(), (409, 409));
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("incompatible with an earlier schema for subject \"orders-value\""),
        "{message}"
    );
    assert!(message.contains("'coupon'"), "{message}");

    // Config: global and per subject.
    assert_eq!(
        s.get("/config").json(),
        json!({"compatibilityLevel": "BACKWARD"})
    );
    assert_eq!(
        s.put("/config/orders-value", r#"{"compatibility":"NONE"}"#)
            .json(),
        json!({"compatibility": "NONE"})
    );
    assert_eq!(
        s.get("/config/orders-value").json(),
        json!({"compatibilityLevel": "NONE"})
    );
    assert_eq!(
        s.post("/subjects/orders-value/versions", &schema_body(V3_BREAKS))
            .json(),
        json!({"id": 3})
    );
    assert_eq!(
        s.delete("/config/orders-value").json(),
        json!({"compatibilityLevel": "NONE"})
    );
    assert_eq!(s.get("/config/orders-value").code(), (404, 40408));
    assert_eq!(
        s.get("/config/orders-value?defaultToGlobal=true").json(),
        json!({"compatibilityLevel": "BACKWARD"})
    );
    assert_eq!(
        s.put("/config", r#"{"compatibility":"FULL_TRANSITIVE"}"#)
            .json(),
        json!({"compatibility": "FULL_TRANSITIVE"})
    );
    assert_eq!(
        s.get("/config").json(),
        json!({"compatibilityLevel": "FULL_TRANSITIVE"})
    );
    assert_eq!(
        s.delete("/config").json(),
        json!({"compatibilityLevel": "FULL_TRANSITIVE"})
    );
    assert_eq!(
        s.get("/config").json(),
        json!({"compatibilityLevel": "BACKWARD"})
    );

    // Soft, then permanent delete.
    assert_eq!(
        s.delete("/subjects/orders-value/versions/3").json(),
        json!(3)
    );
    assert_eq!(
        s.get("/subjects/orders-value/versions").json(),
        json!([1, 2])
    );
    assert_eq!(
        s.get("/subjects/orders-value/versions?deleted=true").json(),
        json!([1, 2, 3])
    );
    assert_eq!(
        s.get("/subjects/orders-value/versions/3").code(),
        (404, 40402)
    );
    assert_eq!(
        s.get("/subjects/orders-value/versions/3?deleted=true")
            .json()["id"],
        3
    );
    assert_eq!(
        s.get("/schemas/ids/3").status,
        200,
        "a soft-deleted schema still has its id"
    );
    assert_eq!(
        s.delete("/subjects/orders-value/versions/3").code(),
        (404, 40406)
    );
    assert_eq!(
        s.delete("/subjects/orders-value/versions/3?permanent=true")
            .json(),
        json!(3)
    );
    assert_eq!(s.get("/schemas/ids/3").code(), (404, 40403));
    assert_eq!(
        s.delete("/subjects/audit-value?permanent=true").code(),
        (404, 40405)
    );
    assert_eq!(s.delete("/subjects/audit-value").json(), json!([1]));
    assert_eq!(s.delete("/subjects/audit-value").code(), (404, 40404));
    assert_eq!(s.get("/subjects").json(), json!(["orders-value"]));
    assert_eq!(
        s.get("/subjects?deleted=true").json(),
        json!(["audit-value", "orders-value"])
    );
    assert_eq!(
        s.delete("/subjects/audit-value?permanent=true").json(),
        json!([1])
    );
    assert_eq!(
        s.get("/subjects?deleted=true").json(),
        json!(["orders-value"])
    );
    assert!(!dir.path().join("reg/subjects/audit-value").exists());
}

#[test]
fn error_codes_and_content_types() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("reg"));
    s.post("/subjects/s/versions", &schema_body(V1));

    assert_eq!(s.get("/subjects/missing/versions").code(), (404, 40401));
    assert_eq!(
        s.get("/subjects/missing/versions/latest").code(),
        (404, 40401)
    );
    assert_eq!(s.get("/subjects/s/versions/9").code(), (404, 40402));
    assert_eq!(s.get("/schemas/ids/999").code(), (404, 40403));
    assert_eq!(s.get("/subjects/s/versions/zero").code(), (422, 42202));
    assert_eq!(s.get("/subjects/s/versions/0").code(), (422, 42202));
    let invalid = s.post(
        "/subjects/s/versions",
        &schema_body(r#"{"type":"record","name":"r","fields":[{"name":"a","type":"strnig"}]}"#),
    );
    assert_eq!(invalid.code(), (422, 42201));
    assert!(
        invalid.json()["message"]
            .as_str()
            .unwrap()
            .contains("strnig"),
        "{}",
        invalid.body
    );
    assert_eq!(
        s.post("/subjects/s/versions", "{\"schema\":").code(),
        (400, 400)
    );
    assert_eq!(s.post("/subjects/s/versions", "{}").code(), (422, 42201));
    assert_eq!(
        s.put("/config", r#"{"compatibility":"LOOSE"}"#).code(),
        (422, 42203)
    );
    assert_eq!(s.get("/no/such/path").code(), (404, 404));
    assert_eq!(
        http(&s.addr, "PATCH", "/config", Some(CT), "{}").code(),
        (405, 405)
    );
    // Content types: Confluent's, plain JSON and none at all are read; a form is not.
    let body = schema_body(V1);
    for ct in [
        Some("application/vnd.schemaregistry+json"),
        Some("application/json; charset=utf-8"),
        None,
    ] {
        assert_eq!(
            http(&s.addr, "POST", "/subjects/s", ct, &body).status,
            200,
            "{ct:?}"
        );
    }
    let form = http(
        &s.addr,
        "POST",
        "/subjects/s/versions",
        Some("application/x-www-form-urlencoded"),
        &body,
    );
    assert_eq!(form.code(), (415, 415));
    assert!(
        form.json()["message"]
            .as_str()
            .unwrap()
            .contains("-H 'Content-Type: application/vnd.schemaregistry.v1+json'")
    );
    // Too large a body.
    let big = format!("{{\"schema\":\"{}\"}}", "x".repeat(9 * 1024 * 1024));
    assert_eq!(s.post("/subjects/s/versions", &big).code(), (422, 42209));
    // Subjects with characters that need escaping in URLs and file names.
    let r = s.post("/subjects/team%2Fa%20b:v/versions", &schema_body(V1));
    assert_eq!(r.json(), json!({"id": 1}));
    assert_eq!(
        s.get("/subjects/team%2Fa%20b:v/versions").json(),
        json!([1])
    );
}

#[test]
fn ids_survive_a_crash_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().join("reg");
    {
        let s = Server::start(&reg);
        assert_eq!(
            s.post("/subjects/a/versions", &schema_body(V1)).json(),
            json!({"id": 1})
        );
        assert_eq!(
            s.post("/subjects/a/versions", &schema_body(V2)).json(),
            json!({"id": 2})
        );
        s.put("/config/a", r#"{"compatibility":"FULL"}"#);
        // Dropping kills the server with SIGKILL: no chance to flush anything more.
    }
    let s = Server::start(&reg);
    assert_eq!(s.get("/schemas/ids/1").json(), json!({"schema": V1}));
    assert_eq!(s.get("/subjects/a/versions/2").json()["id"], 2);
    assert_eq!(
        s.get("/config/a").json(),
        json!({"compatibilityLevel": "FULL"})
    );
    assert_eq!(
        s.post("/subjects/b/versions", &schema_body(V1)).json(),
        json!({"id": 1})
    );
    assert_eq!(
        s.post("/subjects/c/versions", &schema_body("\"string\""))
            .json(),
        json!({"id": 3})
    );
}

#[test]
fn concurrent_clients_get_consistent_ids() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("reg"));
    let addr = s.addr.clone();
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                (0..10)
                    .map(|i| {
                        // Every thread registers the same ten schemas, each under its own subject.
                        let schema = format!(r#"{{"type":"enum","name":"E{i}","symbols":["A"]}}"#);
                        let r = http(
                            &addr,
                            "POST",
                            &format!("/subjects/t{t}-{i}/versions"),
                            Some(CT),
                            &schema_body(&schema),
                        );
                        assert_eq!(r.status, 200, "{}", r.body);
                        (i, r.json()["id"].as_u64().unwrap())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<Vec<(i32, u64)>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for r in &results[1..] {
        assert_eq!(
            r, &results[0],
            "the same schema got the same id for every client"
        );
    }
    let mut ids: Vec<u64> = results[0].iter().map(|(_, id)| *id).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=10).collect::<Vec<u64>>());
    assert_eq!(s.get("/subjects").json().as_array().unwrap().len(), 60);
}

#[test]
fn a_damaged_index_stops_the_server_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().join("reg");
    drop(Server::start(&reg));
    std::fs::write(
        reg.join("index.json"),
        "{\"format\": 1, \"next_id\": 3, \"subj",
    )
    .unwrap();
    let out = bin()
        .args(["registry", "serve", "--listen", "127.0.0.1:0", "--dir"])
        .arg(&reg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("index.json: damaged registry index"),
        "{err}"
    );
}

#[test]
fn one_server_per_directory() {
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().join("reg");
    let _s = Server::start(&reg);
    let out = bin()
        .args(["registry", "serve", "--listen", "127.0.0.1:0", "--dir"])
        .arg(&reg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is in use by another meshlens process"),
        "{err}"
    );
}

#[test]
fn clients_that_vanish_mid_response_do_not_stop_the_server() {
    use std::io::{Read as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("reg"));
    let doc = "x".repeat(2000);
    for i in 0..50 {
        let schema = format!(
            r#"{{"type":"fixed","name":"f{i}","size":{},"doc":"{doc}"}}"#,
            i + 1
        );
        assert_eq!(
            s.post(&format!("/subjects/s{i}/versions"), &schema_body(&schema))
                .status,
            200
        );
    }
    let requests = b"GET /schemas HTTP/1.1\r\nHost: x\r\n\r\n".repeat(3);
    for round in 0..40 {
        // Ask for ~100 KB three times and hang up: at once (a FIN, then a RST for what the
        // server writes next, which is when a write raises SIGPIPE), or after reading a
        // little (a RST with data unread).
        let mut c = std::net::TcpStream::connect(&s.addr).unwrap();
        c.write_all(&requests).unwrap();
        if round % 2 == 1 {
            let _ = c.read(&mut [0u8; 16]);
        }
        drop(c);
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(s.get("/subjects").json().as_array().unwrap().len(), 50);
}

#[cfg(unix)]
#[test]
fn stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(&dir.path().join("reg"));
    s.post("/subjects/a/versions", &schema_body(V1));
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &s.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = s
        .wait_exit(Duration::from_secs(10))
        .expect("the server stops on SIGTERM");
    assert!(status.success(), "{status:?}");
}
