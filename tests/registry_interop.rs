//! Runs `tests/registry_interop.py`: Confluent's own Python client (confluent-kafka's
//! SchemaRegistryClient, AvroSerializer, AvroDeserializer) against `meshlens registry serve`
//! started from the binary cargo just built. Needs Python 3 with `tests/requirements.txt`.

use std::process::Command;

#[test]
fn confluent_python_client_works_against_meshlens_registry() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/registry_interop.py");
    let out = Command::new("python3")
        .args([script, "--bin", env!("CARGO_BIN_EXE_meshlens")])
        .output()
        .expect("python3 must be installed to run the registry interop test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named"),
        "install the test requirements first: pip install -r tests/requirements.txt\n{stderr}"
    );
    assert!(
        out.status.success(),
        "interop test failed:\n{stdout}\n{stderr}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.ends_with(", 0 failed") && !last.starts_with("0 passed"),
        "{last}"
    );
}
