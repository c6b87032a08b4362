//! What a proxy reads from peers before any policy applies: protocol detection on a
//! connection's first bytes, Linkerd's transport header, and the sidecar config. None of it
//! may panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use meshlens::proxy::config::ProxyConfig;
use meshlens::proxy::detect::detect;
use meshlens::proxy::inspect::wants_inspection;
use meshlens::proxy::transport_header::Header;

fuzz_target!(|data: &[u8]| {
    let _ = detect(data);
    if let Ok(h) = Header::decode(data) {
        assert_eq!(Header::decode(&h.encode()[27..]).as_ref(), Ok(&h));
    }
    let _ = wants_inspection(None, data, false);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ProxyConfig::parse(std::path::Path::new("fuzz.yaml"), text);
    }
});
