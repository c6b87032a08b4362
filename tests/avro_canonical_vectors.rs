//! Every vector of the Avro project's `schema-tests.txt`: canonical form and CRC-64-AVRO
//! fingerprint must match the Java reference exactly.

use meshlens::avro::{Schema, canonical_form, rabin_fingerprint};

struct Vector {
    id: String,
    input: String,
    canonical: String,
    fingerprint: Option<i64>,
}

fn vectors() -> Vec<Vector> {
    let text = include_str!("data/schema-tests.txt");
    let mut out = Vec::new();
    let mut id = String::new();
    let mut lines = text.lines();
    let mut current: Option<Vector> = None;
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("// ")
            && rest.chars().all(|c| c.is_ascii_digit())
        {
            id = rest.to_string();
        } else if line == "<<INPUT" {
            let mut input = String::new();
            for l in lines.by_ref() {
                if l == "INPUT" {
                    break;
                }
                input.push_str(l);
                input.push('\n');
            }
            current = Some(Vector {
                id: id.clone(),
                input,
                canonical: String::new(),
                fingerprint: None,
            });
        } else if let Some(input) = line.strip_prefix("<<INPUT ") {
            current = Some(Vector {
                id: id.clone(),
                input: input.to_string(),
                canonical: String::new(),
                fingerprint: None,
            });
        } else if let Some(canonical) = line.strip_prefix("<<canonical ") {
            let v = current.as_mut().expect("canonical after input");
            v.canonical = canonical.to_string();
        } else if let Some(fp) = line.strip_prefix("<<fingerprint ") {
            current
                .as_mut()
                .expect("fingerprint after input")
                .fingerprint = Some(fp.parse().unwrap());
        } else if line.trim().is_empty()
            && let Some(v) = current.take()
        {
            out.push(v);
        }
    }
    out.extend(current);
    out
}

#[test]
fn all_canonical_forms_and_fingerprints_match_java() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 34, "the file holds 34 vectors (000..033)");
    let with_fingerprint = vectors.iter().filter(|v| v.fingerprint.is_some()).count();
    assert!(with_fingerprint >= 20, "{with_fingerprint}");
    for v in &vectors {
        let schema = Schema::parse(&v.input).unwrap_or_else(|e| panic!("vector {}: {e}", v.id));
        assert_eq!(canonical_form(&schema), v.canonical, "vector {}", v.id);
        if let Some(fp) = v.fingerprint {
            assert_eq!(rabin_fingerprint(&schema), fp, "vector {}", v.id);
        }
    }
}
