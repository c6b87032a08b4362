//! Policy YAML from untrusted files: loading, validating, linting and indexing must never
//! panic, whatever the bytes.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use meshlens::policy::defaults::Settings;
use meshlens::policy::index::Index;
use meshlens::policy::lint::lint;
use meshlens::policy::load::{PolicySet, load_str};
use meshlens::policy::workload::parse_workloads;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut set = PolicySet::default();
    let mut errors = Vec::new();
    load_str(Path::new("fuzz.yaml"), text, &mut set, &mut errors);
    let workloads = parse_workloads(Path::new("fuzz.yaml"), text).unwrap_or_default();
    let settings = Settings::default();
    let _ = lint(&set, errors, Some(&workloads), &settings);
    let _ = Index::build(&set, &workloads, &settings);
});
