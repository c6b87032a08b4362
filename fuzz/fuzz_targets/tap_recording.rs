//! What `meshlens replay` and the app parse from a recording file: any bytes, opened, indexed
//! and read back by block and by time. Only clean errors are allowed, never a panic.

#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use meshlens::tap::recording::Recording;

/// One file per fuzzing process, rewritten for every input.
static PATH: LazyLock<PathBuf> = LazyLock::new(|| {
    std::env::temp_dir().join(format!("meshlens-fuzz-recording-{}.avro", std::process::id()))
});

fuzz_target!(|data: &[u8]| {
    if std::fs::write(&*PATH, data).is_err() {
        return;
    }
    let Ok(mut recording) = Recording::open(&PATH) else {
        return;
    };
    let _ = recording.span();
    for i in 0..recording.blocks().len() {
        let _ = recording.read_block(i);
    }
    if let Some((start, end)) = recording.span() {
        let _ = recording.events_from(start / 2 + end / 2);
    }
});
