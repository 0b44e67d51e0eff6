//! A hasvrd that was never told of a new cluster config loads it when it
//! connects to hamond again: hamond restarts in place on a replicated
//! `cluster.toml` and tells its hasvrd, but a hasvrd that was away at that
//! moment (starting, or its hamond down) would otherwise run on with the
//! old one until its next restart.
//!
//! Here alpha's hasvrd runs on its own (not under hamond), alpha's hamond
//! is stopped, the config file changes, and hamond starts again: on the
//! reconnection hasvrd sees the file changed since it loaded it and
//! restarts in place (same pid) to load it.

use hatests::{TestCluster, require_root};
use std::time::{Duration, Instant};

/// Longest wait for a log line or a process.
const WAIT: Duration = Duration::from_secs(30);

#[test]
fn a_hasvrd_away_when_the_cluster_config_changed_loads_it_when_it_reconnects() {
    if !require_root() {
        return;
    }
    let c = TestCluster::new("hasvrd_relink", &["alpha", "beta"]);
    c.services_dir();
    let from = c.log_len("alpha");
    c.start_hasvrd("alpha");
    let connected = |since: u64| {
        c.log_since("alpha", since)
            .contains("connected to hamond at")
    };
    wait(&c, "alpha's hasvrd connects to hamond", || connected(from));
    let pid = c.daemon_pid("alpha", "hasvrd").expect("alpha's hasvrd");

    c.shutdown("alpha");
    let path = c.config_path();
    let mut text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // A change of the config's content (its hash) that nothing else acts on.
    text.push_str("\n[watchdog]\nlease = \"61s\"\n");
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let restarted = c.log_len("alpha");
    c.start_node("alpha");
    let since = |needle: &str| c.log_since("alpha", restarted).matches(needle).count();
    wait(&c, "alpha's hasvrd restarts and connects again", || {
        since("changed since hasvrd loaded it") == 1 && since("connected to hamond at") >= 2
    });
    assert_eq!(
        c.daemon_pid("alpha", "hasvrd"),
        Some(pid),
        "restarted in place"
    );
    // Loaded now: its own connection did not restart it again.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(since("changed since hasvrd loaded it"), 1);
}

/// Waits (at most [`WAIT`]) until `ok`.
#[track_caller]
fn wait(c: &TestCluster, what: &str, ok: impl Fn() -> bool) {
    let end = Instant::now() + WAIT;
    while !ok() {
        assert!(
            Instant::now() < end,
            "not within {WAIT:?}: {what}\n{}",
            c.log_tails(40)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
