//! Runs `tests/registry_interop.py`: Confluent's own Python client (confluent-kafka's
//! SchemaRegistryClient, AvroSerializer, AvroDeserializer) against `meshlens registry serve`.

mod python_support;

#[test]
fn confluent_python_client_works_against_meshlens_registry() {
    python_support::run_script(
        "registry_interop.py",
        &["--bin", env!("CARGO_BIN_EXE_meshlens")],
    );
}
