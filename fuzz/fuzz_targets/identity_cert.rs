//! Certificates from anywhere: PEM files handed to `identity init`/`inspect` and peer chains
//! read for their identity. Reading them must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use meshlens::identity::{CertInfo, TrustBundle, certs_from_pem};

fuzz_target!(|data: &[u8]| {
    let _ = CertInfo::parse(data, 0);
    if let Ok(certs) = certs_from_pem(data) {
        for (i, der) in certs.iter().enumerate() {
            if let Ok(info) = CertInfo::parse(der, i) {
                let _ = info.identity();
            }
        }
    }
    let _ = TrustBundle::from_pem(data);
});
