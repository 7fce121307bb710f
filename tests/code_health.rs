//! Code-health checks on the source tree itself.

use std::path::Path;
use std::process::Command;

/// No function outside tests is longer than `scripts/long-functions.py` allows (100 lines):
/// split a long one into well-named smaller ones rather than raising the limit.
#[test]
fn no_function_outside_tests_is_too_long() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("python3")
        .arg("scripts/long-functions.py")
        .current_dir(root)
        .output()
        .expect("python3 runs scripts/long-functions.py");
    assert!(
        output.status.success(),
        "scripts/long-functions.py exited with {}: functions over the limit:\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}
