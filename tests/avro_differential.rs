//! Runs the fastavro differential test (`tests/avro_differential.py`): random schemas and data
//! written by fastavro in every framing and codec must decode to the Avro JSON fastavro's
//! values imply.

mod python_support;

#[test]
fn meshlens_decodes_what_fastavro_writes() {
    python_support::run_script(
        "avro_differential.py",
        &["--bin", env!("CARGO_BIN_EXE_meshlens")],
    );
}
