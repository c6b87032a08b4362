//! Parsing arbitrary schema text (registry responses, container headers), then canonical
//! form and a self-resolution plan.

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use meshlens::avro::{Decoder, Schema, canonical_form};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(schema) = Schema::parse(text) {
        let _ = canonical_form(&schema);
        let _ = schema.invalid_defaults();
        let schema = Arc::new(schema);
        let _ = Decoder::new(schema.clone(), schema).decode(&[0; 8]);
    }
});
