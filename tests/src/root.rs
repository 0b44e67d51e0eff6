//! The root check: namespaced tests need root (CAP_SYS_ADMIN, CAP_NET_ADMIN).

use std::io::Write;

/// Text printed when a test skips for lack of root; CI fails a run whose
/// output contains it.
pub const SKIPPED: &str = "SKIPPED (needs root)";

/// True when running as root. Otherwise: under CI (env `CI` set, and not
/// to `0` or `false`) panics,
/// since tests must never skip there; elsewhere prints [`SKIPPED`] (past
/// the test output capture, so it always shows) and returns false, and the
/// test should return early:
///
/// ```ignore
/// if !hatests::require_root() { return; }
/// ```
#[track_caller]
pub fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
    if ci {
        panic!("this test needs root, and CI is set: tests must not skip in CI");
    }
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let _ = writeln!(std::io::stderr(), "{test}: {SKIPPED}");
    false
}
