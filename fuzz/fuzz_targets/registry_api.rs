//! The registry's REST API on arbitrary requests: method, path, query and body from the
//! input, against a read-only store holding a few subjects (so lookups and compatibility
//! checks parse and compare schemas, while writes are refused after their input is read).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use meshlens::registry::Store;
use meshlens::registry::api::{Request, handle};

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

fn store() -> &'static Store {
    static S: OnceLock<Store> = OnceLock::new();
    S.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("meshlens-fuzz-registry-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let s = Store::open(&dir).unwrap();
            s.register("orders-value", r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}"#, &[]).unwrap();
            s.register("orders-value", r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"n","type":["null","long"],"default":null}]}"#, &[]).unwrap();
            s.register("a/b c", r#"{"type":"enum","name":"E","symbols":["A","B"]}"#, &[]).unwrap();
        }
        Store::open_read_only(&dir).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let (target, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(target) = std::str::from_utf8(target) else {
        return;
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let response = handle(
        store(),
        &Request {
            method: METHODS[m as usize % METHODS.len()],
            path,
            query,
            body,
        },
    );
    assert!((200..600).contains(&response.status));
});
