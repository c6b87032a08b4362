//! Decoding realistic records: meshlens's resolved decoder against apache-avro's datum
//! reader into `Value`, on the same bytes in the same run. Both build their reader once.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use apache_avro::types::Value as AValue;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const FLAT: &str = r#"{"type":"record","name":"Metric","namespace":"bench","fields":[
  {"name":"host","type":"string"},{"name":"service","type":"string"},
  {"name":"ts","type":"long"},{"name":"value","type":"double"},
  {"name":"count","type":"int"},{"name":"ok","type":"boolean"},
  {"name":"region","type":"string"},{"name":"latency","type":"float"},
  {"name":"bytes_in","type":"long"},{"name":"bytes_out","type":"long"}]}"#;

const ORDER: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
  {"name":"order_id","type":{"type":"string","logicalType":"uuid"}},
  {"name":"customer","type":{"type":"record","name":"Customer","fields":[
     {"name":"id","type":"long"},{"name":"email","type":"string"},
     {"name":"tier","type":{"type":"enum","name":"Tier","symbols":["FREE","GOLD","PLATINUM"]}}]}},
  {"name":"lines","type":{"type":"array","items":{"type":"record","name":"Line","fields":[
     {"name":"sku","type":"string"},{"name":"qty","type":"int"},
     {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}}]}}},
  {"name":"attributes","type":{"type":"map","values":"string"}},
  {"name":"placed_at","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"shipping","type":["null",{"type":"record","name":"Address","fields":[
     {"name":"street","type":"string"},{"name":"city","type":"string"},
     {"name":"zip","type":"string"},{"name":"country","type":"string"}]}]},
  {"name":"coupon","type":["null","string"],"default":null},
  {"name":"total","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}}]}"#;

fn s(v: &str) -> AValue {
    AValue::String(v.to_string())
}

fn flat_value() -> AValue {
    AValue::Record(vec![
        ("host".into(), s("ip-10-0-3-17.eu-west-1.compute.internal")),
        ("service".into(), s("checkout")),
        ("ts".into(), AValue::Long(1_764_158_400_123)),
        ("value".into(), AValue::Double(0.987_654_321)),
        ("count".into(), AValue::Int(4_211)),
        ("ok".into(), AValue::Boolean(true)),
        ("region".into(), s("eu-west-1")),
        ("latency".into(), AValue::Float(12.5)),
        ("bytes_in".into(), AValue::Long(88_231)),
        ("bytes_out".into(), AValue::Long(1_203_113)),
    ])
}

fn order_value() -> AValue {
    let line = |sku: &str, qty: i32, cents: i64| {
        AValue::Record(vec![
            ("sku".into(), s(sku)),
            ("qty".into(), AValue::Int(qty)),
            (
                "price".into(),
                AValue::Decimal(apache_avro::Decimal::from(cents.to_be_bytes().to_vec())),
            ),
        ])
    };
    let attributes: HashMap<String, AValue> = [
        ("channel", "web"),
        ("campaign", "black-friday"),
        ("locale", "en-GB"),
        ("ab_bucket", "B"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), s(v)))
    .collect();
    AValue::Record(vec![
        (
            "order_id".into(),
            AValue::Uuid(
                apache_avro::Uuid::parse_str("1b00cc00-0000-4000-8000-000000000001").unwrap(),
            ),
        ),
        (
            "customer".into(),
            AValue::Record(vec![
                ("id".into(), AValue::Long(884_213)),
                ("email".into(), s("ada@example.com")),
                ("tier".into(), AValue::Enum(1, "GOLD".into())),
            ]),
        ),
        (
            "lines".into(),
            AValue::Array(vec![
                line("SKU-1001", 1, 1999),
                line("SKU-2002", 2, 4550),
                line("SKU-3003", 1, 12000),
                line("SKU-4004", 3, 299),
                line("SKU-5005", 1, 7800),
            ]),
        ),
        ("attributes".into(), AValue::Map(attributes)),
        (
            "placed_at".into(),
            AValue::TimestampMillis(1_764_158_400_123),
        ),
        (
            "shipping".into(),
            AValue::Union(
                1,
                Box::new(AValue::Record(vec![
                    ("street".into(), s("1 Infinite Loop")),
                    ("city".into(), s("Cambridge")),
                    ("zip".into(), s("CB1 2AB")),
                    ("country".into(), s("GB")),
                ])),
            ),
        ),
        ("coupon".into(), AValue::Union(1, Box::new(s("SPRING")))),
        (
            "total".into(),
            AValue::Decimal(apache_avro::Decimal::from(36_346i64.to_be_bytes().to_vec())),
        ),
    ])
}

fn compare(c: &mut Criterion, name: &str, schema_text: &str, value: AValue) {
    let theirs = apache_avro::Schema::parse_str(schema_text).unwrap();
    let bytes = apache_avro::writer::datum::GenericDatumWriter::builder(&theirs)
        .build()
        .unwrap()
        .write_value_to_vec(value)
        .unwrap();
    let ours = Arc::new(meshlens::avro::Schema::parse(schema_text).unwrap());
    let decoder = meshlens::avro::Decoder::new(ours.clone(), ours);
    let reader = apache_avro::reader::datum::GenericDatumReader::builder(&theirs)
        .build()
        .unwrap();
    // Both must read the same bytes completely before anything is timed.
    decoder.decode(&bytes).unwrap();
    reader.read_value(&mut &bytes[..]).unwrap();

    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("meshlens", |b| {
        b.iter(|| decoder.decode(black_box(&bytes)).unwrap())
    });
    group.bench_function("apache_avro", |b| {
        b.iter(|| reader.read_value(&mut black_box(&bytes[..])).unwrap())
    });
    group.finish();
    println!("{name}: {} bytes per record", bytes.len());
}

fn benches(c: &mut Criterion) {
    compare(c, "flat10", FLAT, flat_value());
    compare(c, "order", ORDER, order_value());
}

criterion_group!(decode, benches);
criterion_main!(decode);
