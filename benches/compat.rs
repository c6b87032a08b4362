//! Checking two 200-field schemas: meshlens's checker against apache-avro's
//! `SchemaCompatibility::can_read` on the same pair in the same run.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

/// A 200-field record mixing every kind of type; `evolved` widens ints, adds defaulted
/// fields and enum symbols, as a realistic new version would.
fn wide_schema(evolved: bool) -> String {
    let mut fields = Vec::new();
    for i in 0..200 {
        let ty = match i % 8 {
            0 => {
                if evolved {
                    "\"long\"".to_string()
                } else {
                    "\"int\"".to_string()
                }
            }
            1 => "\"string\"".to_string(),
            2 => r#"["null","string"]"#.to_string(),
            3 => format!(
                r#"{{"type":"enum","name":"E{i}","symbols":["A","B","C"{}]}}"#,
                if evolved { r#","D""# } else { "" }
            ),
            4 => r#"{"type":"array","items":"double"}"#.to_string(),
            5 => r#"{"type":"map","values":["null","long"]}"#.to_string(),
            6 => format!(
                r#"{{"type":"record","name":"R{i}","fields":[{{"name":"a","type":"int"}},{{"name":"b","type":{{"type":"fixed","name":"F{i}","size":8}}}}]}}"#
            ),
            _ => r#"{"type":"long","logicalType":"timestamp-millis"}"#.to_string(),
        };
        fields.push(format!(r#"{{"name":"f{i}","type":{ty}}}"#));
    }
    if evolved {
        fields.push(r#"{"name":"added","type":["null","string"],"default":null}"#.to_string());
    }
    format!(
        r#"{{"type":"record","name":"Wide","namespace":"bench","fields":[{}]}}"#,
        fields.join(",")
    )
}

fn benches(c: &mut Criterion) {
    let (old, new) = (wide_schema(false), wide_schema(true));
    let (ours_old, ours_new) = (
        meshlens::avro::Schema::parse(&old).unwrap(),
        meshlens::avro::Schema::parse(&new).unwrap(),
    );
    let (theirs_old, theirs_new) = (
        apache_avro::Schema::parse_str(&old).unwrap(),
        apache_avro::Schema::parse_str(&new).unwrap(),
    );
    // New reads old: compatible for both checkers.
    assert!(meshlens::avro::compat::check(&ours_new, &ours_old).is_compatible());
    assert!(
        apache_avro::schema_compatibility::SchemaCompatibility::can_read(&theirs_old, &theirs_new)
            .is_ok()
    );

    let mut group = c.benchmark_group("compat_200_fields");
    group.bench_function("meshlens", |b| {
        b.iter(|| meshlens::avro::compat::check(black_box(&ours_new), black_box(&ours_old)))
    });
    group.bench_function("apache_avro", |b| {
        b.iter(|| {
            apache_avro::schema_compatibility::SchemaCompatibility::can_read(
                black_box(&theirs_old),
                black_box(&theirs_new),
            )
        })
    });
    group.finish();
}

criterion_group!(compat, benches);
criterion_main!(compat);
