//! Sandbox manifests from untrusted files: parsing and checking must never panic, whatever
//! the bytes. The manifest's directory does not exist, so file checks fail cleanly.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use meshlens::sandbox::Manifest;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/nonexistent/meshlens-fuzz/sandbox.yaml");
    if let Ok(m) = Manifest::parse(path, text) {
        let _ = m.check();
    }
});
