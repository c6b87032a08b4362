//! Runs one of the Python test scripts (most get the binary cargo just built with `--bin`)
//! and checks its closing `N passed, M failed` line. The scripts need
//! `tests/requirements.txt`.

use std::process::Command;

pub fn run_script(name: &str, args: &[&str]) {
    let script = format!("{}/tests/{name}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(&script)
        .args(args)
        .output()
        .expect("python3 must be installed to run the Python tests");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named"),
        "install the test requirements first: pip install -r tests/requirements.txt\n{stderr}"
    );
    assert!(out.status.success(), "{name} failed:\n{stdout}\n{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.ends_with(", 0 failed") && !last.starts_with("0 passed"),
        "{last}"
    );
}
