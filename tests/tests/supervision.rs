//! Mutual supervision of hamond and hasvrd on namespaced nodes (issue 4,
//! safety rule 6), with the web service of [`WebService`] running on alpha
//! and a deadtime (5 s) well above a daemon restart:
//!
//! * a SIGKILLed hamond is started again by its hasvrd; the new hamond
//!   adopts that hasvrd (same pid), the application is never restarted and
//!   the peer never declares the node down; a second hamond started by
//!   hand refuses to run; a clean stop of the adopted hamond stops hasvrd
//!   first (the service moves, the peer sees a clean leave);
//! * a SIGKILLed hasvrd is restarted by the adopted hamond and resumes the
//!   service without restarting it;
//! * a hamond that keeps dying is restarted with a growing pause and an
//!   emergency log.

use hatests::command::run_for;
use hatests::web::{WAIT, WebService, WebSpec};
use hatests::{ClusterSpec, TestCluster, require_root};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// alpha and beta, hamond running hasvrd, the web service on alpha, and a
/// deadtime of 5 s on every path.
#[track_caller]
fn supervised(test: &str, fencing: bool) -> WebService {
    let cluster = ClusterSpec {
        udp_maxmiss: 50,
        serial_maxmiss: 25,
        ..ClusterSpec::with_nodes(&["alpha", "beta"])
    };
    let w = WebService::start_with(
        test,
        WebSpec {
            fencing,
            hamond_runs_hasvrd: true,
            cluster: Some(cluster),
            ..WebSpec::default()
        },
    );
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    w
}

/// Polls `f` every 50 ms until it gives a value, at most [`WAIT`].
#[track_caller]
fn wait_for<T>(c: &TestCluster, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "no {what} within {WAIT:?}\n{}",
            c.log_tails(60)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for a hamond on `node` other than `old`, answering status.
#[track_caller]
fn new_hamond(c: &TestCluster, node: &str, old: i32) -> i32 {
    let pid = wait_for(c, "restarted hamond", || {
        c.hamond_pid(node).filter(|&p| p != old)
    });
    wait_for(c, "answer from the restarted hamond", || {
        c.try_status(node).ok()
    });
    pid
}

/// Waits until `node`'s hasvrd logged, after `offset`, that it is linked
/// to the new hamond again (the adoption is complete).
#[track_caller]
fn wait_relinked(c: &TestCluster, node: &str, offset: u64) {
    wait_for(c, "relink of hasvrd", || {
        c.log_since(node, offset)
            .contains("reconnected to hamond")
            .then_some(())
    });
}

fn sigkill(pid: i32) {
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap_or_else(|e| panic!("kill {pid}: {e}"));
}

#[test]
fn a_killed_hamond_is_restarted_by_hasvrd_and_adopts_it() {
    if !require_root() {
        return;
    }
    let w = supervised("sup_adopt", true);
    let c = w.cluster();
    let app = w.app_pid("alpha");
    let hasvrd = w.hasvrd_pid("alpha").expect("alpha's hasvrd");
    let first = c.hamond_pid("alpha").expect("alpha's hamond");
    let beta_before = c.log_len("beta");
    let alpha_before = c.log_len("alpha");

    // SIGKILL (the harness reaps its child): hasvrd starts a new hamond,
    // which adopts hasvrd instead of starting another.
    let killed = Instant::now();
    c.crash("alpha");
    let second = new_hamond(c, "alpha", first);
    eprintln!(
        "hamond restarted and answering {:?} after its SIGKILL",
        killed.elapsed()
    );
    c.wait_for_log("alpha", "adopted the running hasvrd", WAIT);
    wait_relinked(c, "alpha", alpha_before);
    // Its service state after a hamond restart: see the next test.
    w.wait_served_by("alpha");
    assert_eq!(w.hasvrd_pid("alpha"), Some(hasvrd), "hasvrd was replaced");
    assert_eq!(w.app_pid("alpha"), app, "the application was restarted");
    let log = c.log_since("alpha", alpha_before);
    assert!(log.contains("hamond died"), "{log}");
    assert!(!log.contains("started hasvrd"), "{log}");
    let beta = c.log_since("beta", beta_before);
    assert!(!beta.contains("NodeDown: alpha"), "{beta}");
    assert!(!beta.contains("fencing it"), "{beta}");

    // Never two hamonds: one started by hand exits at once, naming it.
    let mut by_hand = c.hamond_command("alpha");
    by_hand.arg("--no-syslog");
    let f = run_for(&mut by_hand, WAIT).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(f.code(), Some(0), "{f:?}");
    let expected = format!("another hamond (pid {second})");
    assert!(f.stderr.contains(&expected), "{}", f.stderr);
    assert_eq!(c.hamond_pid("alpha"), Some(second));

    // A clean stop of the adopted hamond stops hasvrd first: the service
    // moves to beta, which sees a clean leave and fences nobody.
    kill(Pid::from_raw(second), Signal::SIGTERM).expect("SIGTERM to hamond");
    wait_for(c, "hamond gone", || {
        c.hamond_pid("alpha").is_none().then_some(())
    });
    assert_eq!(
        w.hasvrd_pid("alpha"),
        None,
        "hasvrd {hasvrd} outlived hamond"
    );
    w.wait_served_by("beta");
    let beta = c.log_since("beta", beta_before);
    assert!(beta.contains("left the cluster cleanly"), "{beta}");
    assert!(!beta.contains("fencing it"), "{beta}");
    assert!(!w.app_running("alpha"));
}

/// Fails until a restarted hamond learns its peers' service adverts again
/// (hamond/src/services.rs: a peer's new incarnation gets this node's
/// adverts again): till then alpha's hasvrd, relinked to it, may see beta
/// unable to host and stay ACTIVEACT (the application keeps running).
#[test]
fn a_hasvrd_killed_under_an_adopted_hamond_is_restarted_and_resumes() {
    if !require_root() {
        return;
    }
    let w = supervised("sup_both", true);
    let c = w.cluster();
    let app = w.app_pid("alpha");
    let first = c.hamond_pid("alpha").expect("alpha's hamond");
    let before = c.log_len("alpha");
    c.crash("alpha");
    let second = new_hamond(c, "alpha", first);
    wait_relinked(c, "alpha", before);
    w.wait_state("alpha", "ACTIVE");
    let hasvrd = w.hasvrd_pid("alpha").expect("alpha's hasvrd");

    // The adopted hasvrd, SIGKILLed, is restarted by the new hamond (not
    // its parent) and adopts the service in turn.
    sigkill(hasvrd);
    wait_for(c, "restarted hasvrd", || {
        w.hasvrd_pid("alpha").filter(|&p| p != hasvrd)
    });
    w.wait_served_by("alpha");
    assert_eq!(w.app_pid("alpha"), app, "the application was restarted");
    assert_eq!(c.hamond_pid("alpha"), Some(second));
    w.wait_state("alpha", "ACTIVE");
}

#[test]
fn a_hamond_that_keeps_dying_is_restarted_with_backoff_and_an_emergency() {
    if !require_root() {
        return;
    }
    let w = supervised("sup_flap", false);
    let c = w.cluster();
    let app = w.app_pid("alpha");
    let hasvrd = w.hasvrd_pid("alpha").expect("alpha's hasvrd");
    let mut pid = c.hamond_pid("alpha").expect("alpha's hamond");
    c.crash("alpha");
    for _ in 0..3 {
        pid = new_hamond(c, "alpha", pid);
        sigkill(pid);
    }
    new_hamond(c, "alpha", pid);
    let log = c.log("alpha");
    let emergencies: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("hamond died again"))
        .collect();
    assert_eq!(emergencies.len(), 2, "{log}");
    assert!(emergencies.iter().all(|l| l.contains("emerg")), "{log}");
    assert!(emergencies[0].contains("restarting it in 1s"), "{log}");
    assert!(emergencies[1].contains("restarting it in 2s"), "{log}");
    // Through it all, hasvrd and the application ran on.
    w.wait_served_by("alpha");
    assert_eq!(w.hasvrd_pid("alpha"), Some(hasvrd), "hasvrd was replaced");
    assert_eq!(w.app_pid("alpha"), app, "the application was restarted");
}
