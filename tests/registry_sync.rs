//! `meshlens registry import` and `export` between directories and running registries:
//! import keeps ids, version numbers, soft deletes and levels; export registers oldest first,
//! maps references to the remote's version numbers, and both can run again harmlessly.

mod registry_support;

use std::process::Output;

use registry_support::{Server, bin, schema_body};
use serde_json::{Value, json};

const ADDRESS: &str = r#"{"type":"record","name":"Address","namespace":"shop","fields":[{"name":"city","type":"string"}]}"#;
const ADDRESS_WITH_ZIP: &str = r#"{"type":"record","name":"Address","namespace":"shop","fields":[{"name":"city","type":"string"},{"name":"zip","type":"string","default":""}]}"#;
const SHIPMENT: &str = r#"{"type":"record","name":"Shipment","namespace":"shop","fields":[{"name":"to","type":"shop.Address"}]}"#;
const ORDER_V1: &str =
    r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}"#;
const ORDER_V2: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"qty","type":"int","default":1}]}"#;

fn run(args: &[&str]) -> (String, String) {
    let out: Output = bin().args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?} failed:\n{stdout}\n{stderr}");
    (stdout, stderr)
}

fn shipment_body(address_version: i64) -> String {
    json!({"schema": SHIPMENT, "references": [{"name": "shop.Address", "subject": "address-value", "version": address_version}]}).to_string()
}

#[test]
fn import_then_export() {
    let tmp = tempfile::tempdir().unwrap();
    // Registry A: a reference, an evolution with a soft-deleted version, a subject level.
    let a = Server::start(&tmp.path().join("a"));
    a.post("/subjects/orders-value/versions", &schema_body(ORDER_V1));
    a.post("/subjects/address-value/versions", &schema_body(ADDRESS));
    assert_eq!(
        a.post("/subjects/shipments-value/versions", &shipment_body(1))
            .json(),
        json!({"id": 3})
    );
    a.post("/subjects/orders-value/versions", &schema_body(ORDER_V2));
    a.delete("/subjects/orders-value/versions/2");
    a.put("/config/orders-value", r#"{"compatibility":"FULL"}"#);

    // Import A into directory b.
    let b = tmp.path().join("b");
    let b_str = b.to_str().unwrap();
    let (out, _) = run(&["registry", "import", "--from", &a.url, "--dir", b_str]);
    assert!(out.contains("imported 4 versions"), "{out}");
    assert!(
        out.contains("orders-value version 2: id 4 (soft-deleted)"),
        "{out}"
    );
    let (again, _) = run(&["registry", "import", "--from", &a.url, "--dir", b_str]);
    assert!(
        again.contains("imported 0 versions") && again.contains("(4 already there)"),
        "{again}"
    );

    // b serves the same ids, versions, deletes and levels as A.
    let bs = Server::start(&b);
    for id in 1..=4 {
        assert_eq!(
            bs.get(&format!("/schemas/ids/{id}")).json(),
            a.get(&format!("/schemas/ids/{id}")).json(),
            "id {id}"
        );
    }
    assert_eq!(bs.get("/subjects/orders-value/versions").json(), json!([1]));
    assert_eq!(
        bs.get("/subjects/orders-value/versions?deleted=true")
            .json(),
        json!([1, 2])
    );
    assert_eq!(
        bs.get("/config/orders-value").json(),
        json!({"compatibilityLevel": "FULL"})
    );
    assert_eq!(
        bs.get("/subjects/shipments-value/versions/1").json()["references"],
        json!([{"name": "shop.Address", "subject": "address-value", "version": 1}])
    );
    // New registrations in b continue after A's ids.
    assert_eq!(
        bs.post("/subjects/x/versions", &schema_body("\"int\""))
            .json(),
        json!({"id": 5})
    );
    assert!(b.join("subjects/shipments-value/v1.avsc").is_file());

    // Registry C already has a version of address-value, so b's address-value v1 becomes v2
    // there and the shipment's reference must follow.
    let c = Server::start(&tmp.path().join("c"));
    c.post(
        "/subjects/address-value/versions",
        &schema_body(ADDRESS_WITH_ZIP),
    );
    let (out, _) = run(&["registry", "export", "--dir", b_str, "--to", &c.url]);
    assert!(out.contains("exported 4 versions"), "{out}");
    assert!(
        out.contains("address-value version 1 (id 2) -> version 2"),
        "{out}"
    );
    assert_eq!(
        c.get("/subjects/address-value/versions").json(),
        json!([1, 2])
    );
    let shipment = c.get("/subjects/shipments-value/versions/latest").json();
    assert_eq!(
        shipment["references"],
        json!([{"name": "shop.Address", "subject": "address-value", "version": 2}])
    );
    assert_eq!(
        c.get("/subjects/orders-value/versions").json(),
        json!([1]),
        "deleted versions are not exported"
    );
    assert_eq!(
        c.get("/config/orders-value").json(),
        json!({"compatibilityLevel": "FULL"})
    );
    let schema_of = |s: &Server, subject: &str| -> Value {
        serde_json::from_str(
            s.get(&format!("/subjects/{subject}/versions/latest"))
                .json()["schema"]
                .as_str()
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(schema_of(&c, "x"), json!("int"));
    assert_eq!(schema_of(&c, "orders-value"), schema_of(&a, "orders-value"));

    let (again, _) = run(&["registry", "export", "--dir", b_str, "--to", &c.url]);
    assert!(
        again.contains("exported 0 versions") && again.contains("(4 already there)"),
        "{again}"
    );
}

#[test]
fn import_refuses_a_directory_whose_ids_disagree() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Server::start(&tmp.path().join("a"));
    a.post("/subjects/s/versions", &schema_body(ORDER_V1));
    // Directory b gave id 1 to another schema.
    let b = tmp.path().join("b");
    drop(Server::start(&b).post("/subjects/t/versions", &schema_body("\"string\"")));
    let out = bin()
        .args(["registry", "import", "--from", &a.url, "--dir"])
        .arg(&b)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("schema id 1 is already a different schema"),
        "{err}"
    );
}
