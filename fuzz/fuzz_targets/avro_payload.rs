//! Sniffing, container parsing, resolution and decoding of arbitrary payloads against a
//! set of schemas covering every type (and recursion), then both renderings.

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use meshlens::avro::{PayloadDecoder, Schema, SniffOptions, to_avro_json, to_friendly_json};

const SCHEMAS: &[&str] = &[
    r#"{"type":"record","name":"All","fields":[
        {"name":"n","type":"null"},{"name":"b","type":"boolean"},{"name":"i","type":"int"},
        {"name":"l","type":"long"},{"name":"f","type":"float"},{"name":"d","type":"double"},
        {"name":"by","type":"bytes"},{"name":"s","type":"string"},
        {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"]}},
        {"name":"fx","type":{"type":"fixed","name":"F","size":4}},
        {"name":"a","type":{"type":"array","items":["null","long","E"]}},
        {"name":"m","type":{"type":"map","values":{"type":"array","items":"F"}}},
        {"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":20,"scale":4}},
        {"name":"bd","type":{"type":"bytes","logicalType":"big-decimal"}},
        {"name":"u","type":{"type":"fixed","name":"U","size":16,"logicalType":"uuid"}},
        {"name":"dt","type":{"type":"int","logicalType":"date"}},
        {"name":"tm","type":{"type":"int","logicalType":"time-millis"}},
        {"name":"tn","type":{"type":"long","logicalType":"timestamp-nanos"}},
        {"name":"du","type":{"type":"fixed","name":"D","size":12,"logicalType":"duration"}}]}"#,
    r#"{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"kids","type":{"type":"array","items":"Node"}},{"name":"next","type":["null","Node"]}]}"#,
    r#"{"type":"array","items":"null"}"#,
    r#"{"type":"map","values":{"type":"record","name":"Empty","fields":[]}}"#,
];

/// A reader for each writer above, exercising resolution (promotions, defaults, skips).
const READERS: &[&str] = &[
    r#"{"type":"record","name":"All","fields":[
        {"name":"l","type":"double"},{"name":"i","type":["null","long"]},{"name":"s","type":"bytes"},
        {"name":"e","type":{"type":"enum","name":"E","symbols":["B","Z"],"default":"Z"}},
        {"name":"extra","type":{"type":"map","values":"int"},"default":{"k":1}}]}"#,
    r#"{"type":"record","name":"Node","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","Node"]}]}"#,
    r#"{"type":"array","items":["null","int"]}"#,
    r#"{"type":"map","values":{"type":"record","name":"Empty","fields":[{"name":"x","type":"int","default":0}]}}"#,
];

fn decoders() -> &'static Vec<PayloadDecoder> {
    static D: OnceLock<Vec<PayloadDecoder>> = OnceLock::new();
    D.get_or_init(|| {
        let mut out = Vec::new();
        for (w, r) in SCHEMAS.iter().zip(READERS) {
            let w = Arc::new(Schema::parse(w).unwrap());
            let r = Arc::new(Schema::parse(r).unwrap());
            out.push(PayloadDecoder::new(SniffOptions::default()).with_schema(w.clone()));
            out.push(PayloadDecoder::new(SniffOptions::default()).with_schema(w).with_reader(r));
        }
        out
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let decoders = decoders();
    let decoder = &decoders[selector as usize % decoders.len()];
    if let Ok(decoded) = decoder.decode(payload, &[]) {
        for v in &decoded.values {
            let _ = to_avro_json(&decoded.reader, v, None);
            let _ = to_friendly_json(&decoded.reader, v, Some(2));
        }
    }
});
