//! `meshlens schema compat|check|diff`, run as CI pipelines run them: exit codes 0/1/2.

mod registry_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const V1: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
  {"name":"id","type":"string"},{"name":"qty","type":"int"}]}"#;
const V2: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
  {"name":"id","type":"string"},{"name":"qty","type":"long"},
  {"name":"coupon","type":["null","string"],"default":null}]}"#;
const V3: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
  {"name":"id","type":"string"},{"name":"qty","type":"long"},
  {"name":"coupon","type":["null","string"]}]}"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn meshlens(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshlens"))
        .args(args)
        .output()
        .unwrap()
}

fn files() -> (tempfile::TempDir, [String; 3]) {
    let dir = tempfile::tempdir().unwrap();
    let paths = [("v1.avsc", V1), ("v2.avsc", V2), ("v3.avsc", V3)]
        .map(|(n, t)| write(dir.path(), n, t).to_str().unwrap().to_string());
    (dir, paths)
}

#[test]
fn compat_exit_codes_and_json() {
    let (_d, [v1, v2, _]) = files();
    let ok = meshlens(&["schema", "compat", "--reader", &v2, "--writer", &v1]);
    assert_eq!(ok.status.code(), Some(0));
    let bad = meshlens(&[
        "schema", "compat", "--reader", &v1, "--writer", &v2, "--json",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(json["compatible"], false);
    assert_eq!(json["incompatibilities"][0]["kind"], "TYPE_MISMATCH");
    assert_eq!(json["incompatibilities"][0]["location"], "/fields/1/type");
}

#[test]
fn check_follows_confluent_levels() {
    let (_d, [v1, v2, v3]) = files();
    // v3 drops coupon's default: fine against v2 alone (BACKWARD), not against v1 too.
    assert_eq!(
        meshlens(&["schema", "check", "--level", "BACKWARD", &v3, &v1, &v2])
            .status
            .code(),
        Some(0)
    );
    let out = meshlens(&[
        "schema",
        "check",
        "--level",
        "BACKWARD_TRANSITIVE",
        &v3,
        &v1,
        &v2,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("The field 'coupon' at path '/fields/2' in the new schema has no default value and is missing in the old schema"),
        "{text}"
    );
    assert_eq!(
        meshlens(&["schema", "check", "--level", "FORWARD", &v2, &v1])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        meshlens(&["schema", "check", "--level", "NONE", &v2, &v1])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn usage_and_parse_errors_exit_2_with_one_line() {
    let (d, [v1, ..]) = files();
    let broken = write(d.path(), "broken.avsc", "{\"type\":");
    for args in [
        vec![
            "schema",
            "compat",
            "--reader",
            broken.to_str().unwrap(),
            "--writer",
            &v1,
        ],
        vec!["schema", "check", "--level", "SIDEWAYS", &v1, &v1],
        vec!["schema", "check", &v1],
        vec!["schema", "diff", &v1, "/nonexistent.avsc"],
    ] {
        let out = meshlens(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with("error:"), "{args:?}: {err}");
    }
}

#[test]
fn diff_lists_changes_with_impact() {
    let (_d, [v1, v2, _]) = files();
    let out = meshlens(&["schema", "diff", &v1, &v2, "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let changes = json.as_array().unwrap();
    assert_eq!(changes.len(), 2, "{json:#}");
    assert_eq!(changes[0]["path"], ".qty");
    assert_eq!(changes[0]["change"], "type changed from int to long");
    assert_eq!(changes[0]["backward"]["verdict"], "compatible");
    assert_eq!(changes[0]["forward"]["verdict"], "breaks");
    assert_eq!(changes[1]["path"], ".coupon");
    let text = String::from_utf8(meshlens(&["schema", "diff", &v1, &v1]).stdout).unwrap();
    assert_eq!(text.trim(), "no changes");
}

#[test]
fn check_against_a_registry_directory_uses_the_subjects_level() {
    let (d, [v1, v2, v3]) = files();
    let reg = d.path().join("registry");
    let store = meshlens::registry::Store::open(&reg).unwrap();
    for v in [&v1, &v2] {
        store
            .register("orders-value", &std::fs::read_to_string(v).unwrap(), &[])
            .unwrap();
    }
    store
        .set_subject_level("orders-value", meshlens::avro::Level::BackwardTransitive)
        .unwrap();
    drop(store);
    let reg = reg.to_str().unwrap();
    let out = meshlens(&[
        "schema",
        "check",
        "--registry",
        reg,
        "--subject",
        "orders-value",
        &v3,
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the subject's own BACKWARD_TRANSITIVE applies"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("orders-value v1 (new reads old)"), "{text}");
    let out = meshlens(&[
        "schema",
        "check",
        "--registry",
        reg,
        "--subject",
        "orders-value",
        "--level",
        "BACKWARD",
        &v3,
    ]);
    assert_eq!(out.status.code(), Some(0));
}

/// `schema check --registry R --subject NEW F` for a subject's first version: a pass.
fn assert_first_version_passes(registry: &str, schema: &str) {
    let out = meshlens(&[
        "schema",
        "check",
        "--registry",
        registry,
        "--subject",
        "payments-value",
        schema,
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{registry}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.trim(),
        "subject payments-value has no versions yet: nothing to be compatible with"
    );
}

#[test]
fn a_subject_without_versions_passes_in_a_directory_and_over_http() {
    let (d, [v1, _, v3]) = files();
    let reg = d.path().join("registry");
    let store = meshlens::registry::Store::open(&reg).unwrap();
    store
        .register("orders-value", &std::fs::read_to_string(&v1).unwrap(), &[])
        .unwrap();
    drop(store);
    assert_first_version_passes(reg.to_str().unwrap(), &v3);

    let server = registry_support::Server::start(&reg);
    assert_first_version_passes(&server.url, &v3);
    // The registry still answers for the subjects it has.
    let out = meshlens(&[
        "schema",
        "check",
        "--registry",
        &server.url,
        "--subject",
        "orders-value",
        &v3,
    ]);
    assert_eq!(out.status.code(), Some(1));
    drop(server);

    // A registry that cannot be reached is still an error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = meshlens(&[
        "schema",
        "check",
        "--registry",
        &format!("http://{closed}"),
        "--subject",
        "payments-value",
        &v3,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("error: ") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn a_closed_pipe_ends_output_quietly() {
    use std::io::Read as _;
    let dir = tempfile::tempdir().unwrap();
    let record = |prefix: &str| {
        let fields: Vec<String> = (0..5000)
            .map(|i| format!(r#"{{"name":"{prefix}{i}","type":"int"}}"#))
            .collect();
        format!(
            r#"{{"type":"record","name":"r","fields":[{}]}}"#,
            fields.join(",")
        )
    };
    let old = write(dir.path(), "old.avsc", &record("a"));
    let new = write(dir.path(), "new.avsc", &record("b"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshlens"))
        .args([
            "schema",
            "diff",
            old.to_str().unwrap(),
            new.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The read end is dropped here, like `| head` exiting.
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
