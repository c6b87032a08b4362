//! `meshlens avro decode` and `meshlens schema fingerprint`, run as a user runs them.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const ORDER: &str = r#"{"type":"record","name":"OrderPlaced","namespace":"shop.orders","fields":[
  {"name":"id","type":{"type":"string","logicalType":"uuid"}},
  {"name":"total","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
  {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"coupon","type":["null","string"],"default":null}]}"#;

/// id "a", total 123.45, at 2024-01-31T12:34:56.789Z, coupon "X".
const ORDER_DATUM: &[u8] = &[
    0x02, b'a', 0x04, 0x30, 0x39, 0xaa, 0xa2, 0x9f, 0xf8, 0xab, 0x63, 0x02, 0x02, b'X',
];

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_meshlens"))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn confluent_frame_decodes_in_both_views() {
    let dir = tempfile::tempdir().unwrap();
    let schema = write(dir.path(), "order.avsc", ORDER.as_bytes());
    let mut frame = vec![0, 0, 0, 0, 42];
    frame.extend_from_slice(ORDER_DATUM);
    let s = schema.to_str().unwrap();

    let out = run(&["avro", "decode", "--schema", s, "-"], &frame);
    assert_eq!(
        stdout(&out).trim(),
        r#"{"id":"a","total":"123.45","at":"2024-01-31T12:34:56.789Z","coupon":"X"}"#
    );
    let out = run(
        &[
            "avro",
            "decode",
            "--schema",
            s,
            "--format",
            "avro-json",
            "--describe",
        ],
        &frame,
    );
    assert_eq!(
        stdout(&out).trim(),
        r#"{"id":"a","total":"09","at":1706704496789,"coupon":{"string":"X"}}"#
    );
    let described = String::from_utf8(out.stderr).unwrap();
    assert!(
        described.contains("framing: Confluent v0 (schema id)"),
        "{described}"
    );
    assert!(described.contains("reference: schema id 42"), "{described}");
    assert!(
        described.contains("writer: shop.orders.OrderPlaced"),
        "{described}"
    );
}

#[test]
fn pretty_indents_a_single_document() {
    let dir = tempfile::tempdir().unwrap();
    let schema = write(dir.path(), "order.avsc", ORDER.as_bytes());
    let out = run(
        &[
            "avro",
            "decode",
            "--schema",
            schema.to_str().unwrap(),
            "--framing",
            "bare",
            "--pretty",
        ],
        ORDER_DATUM,
    );
    assert!(stdout(&out).starts_with("{\n  \"id\": \"a\",\n"));
}

#[test]
fn reader_schema_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let writer = write(dir.path(), "w.avsc", br#""int""#);
    let reader = write(dir.path(), "r.avsc", br#"["null","long"]"#);
    let out = run(
        &[
            "avro",
            "decode",
            "--schema",
            writer.to_str().unwrap(),
            "--reader",
            reader.to_str().unwrap(),
            "--format",
            "avro-json",
        ],
        &[0x54],
    );
    assert_eq!(stdout(&out).trim(), r#"{"long":42}"#);
}

#[test]
fn single_object_encoding_must_match_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let schema = write(dir.path(), "s.avsc", br#""string""#);
    let fp = run(&["schema", "fingerprint", schema.to_str().unwrap()], &[]);
    let fp = stdout(&fp);
    let (decimal, header) = fp.trim().split_once(' ').unwrap();
    assert_eq!(decimal, "-8142146995180207161");
    let mut frame = vec![0xc3, 0x01];
    frame.extend((0..8).map(|i| u8::from_str_radix(&header[2 * i..2 * i + 2], 16).unwrap()));
    frame.extend_from_slice(&[0x04, b'h', b'i']);
    let out = run(
        &["avro", "decode", "--schema", schema.to_str().unwrap()],
        &frame,
    );
    assert_eq!(stdout(&out).trim(), "\"hi\"");

    let other = write(dir.path(), "o.avsc", br#""bytes""#);
    let out = run(
        &["avro", "decode", "--schema", other.to_str().unwrap()],
        &frame,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("fingerprint -8142146995180207161"), "{err}");
}

#[test]
fn header_carried_id_leaves_a_bare_payload() {
    let dir = tempfile::tempdir().unwrap();
    let schema = write(dir.path(), "s.avsc", br#""long""#);
    let out = run(
        &[
            "avro",
            "decode",
            "--schema",
            schema.to_str().unwrap(),
            "--header",
            "__value_schema_id=hex:0000000007",
            "--describe",
        ],
        // Without the header this would sniff as a (too short) Confluent frame.
        &[0x00],
    );
    assert_eq!(stdout(&out).trim(), "0");
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("schema reference in a header")
    );
}

#[test]
fn fingerprint_algorithms_and_canonical_form() {
    let dir = tempfile::tempdir().unwrap();
    let schema = write(
        dir.path(),
        "s.avsc",
        br#"{"type":"record","name":"r","namespace":"n","doc":"x","fields":[{"name":"t","type":{"type":"long","logicalType":"timestamp-micros"}}]}"#,
    );
    let s = schema.to_str().unwrap();
    let pcf = stdout(&run(&["schema", "fingerprint", s, "--pcf"], &[]));
    assert_eq!(
        pcf.trim(),
        r#"{"name":"n.r","type":"record","fields":[{"name":"t","type":"long"}]}"#
    );
    let sha = stdout(&run(
        &["schema", "fingerprint", s, "--algorithm", "sha256"],
        &[],
    ));
    assert_eq!(sha.trim().len(), 64);
    let md5 = stdout(&run(
        &["schema", "fingerprint", s, "--algorithm", "md5"],
        &[],
    ));
    assert_eq!(md5.trim().len(), 32);
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["avro", "decode", "--header", "x-avro-schema-id"],
            "--header \"x-avro-schema-id\": expected NAME=VALUE",
        ),
        (
            vec!["avro", "decode", "--header", "__value_schema_id=hex:0"],
            "odd number of digits",
        ),
        (
            vec!["avro", "decode", "--header", "__value_schema_id=hex:zz"],
            "invalid hex",
        ),
        (
            vec!["avro", "decode", "--framing", "bare"],
            "--framing bare needs the writer schema",
        ),
    ];
    for (args, needle) in cases {
        // No stdin: the error comes before the payload is read.
        let out = run(&args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(needle),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn bad_input_fails_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let schema = write(dir.path(), "order.avsc", ORDER.as_bytes());
    let broken = write(
        dir.path(),
        "broken.avsc",
        br#"{"type":"record","name":"r","fields":[{"name":"a","type":"Nope"}]}"#,
    );
    let cases: Vec<(Vec<&str>, &[u8], &str)> = vec![
        (
            vec![
                "avro",
                "decode",
                "--schema",
                schema.to_str().unwrap(),
                "--framing",
                "bare",
            ],
            &ORDER_DATUM[..5],
            "at byte 5 (in .at)",
        ),
        (
            vec!["avro", "decode"],
            &[0x02, 0x04],
            "needs a writer schema",
        ),
        (
            vec!["avro", "decode"],
            &[0, 0, 0, 0, 9, 1],
            "refers to schema id 9, which is unknown here",
        ),
        (
            vec!["avro", "decode", "--schema", broken.to_str().unwrap()],
            &[0],
            "broken.avsc: invalid schema at /fields/0/type: unknown type name \"Nope\"",
        ),
        (
            vec!["avro", "decode", "/nonexistent/file"],
            &[],
            "cannot read /nonexistent/file",
        ),
        (vec!["avro", "decode"], b"Obj\x01\x02", "container file"),
    ];
    for (args, input, needle) in cases {
        let out = run(&args, input);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(needle),
            "{args:?}: {err}"
        );
    }
}
