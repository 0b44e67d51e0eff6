//! Failure accounting on namespaced nodes (issue 7), on the two-node web
//! service fixture ([`WebService`]): real hamond and hasvrd, a floating IP
//! on a public LAN, the application killed with SIGKILL. Every wait is
//! bounded ([`WAIT`]) and checks that the floating IP is on at most one
//! node.
//!
//! * `migration_threshold = 2` with local restarts left
//!   (`restart_times = 5`): the first kill restarts the application on
//!   alpha, the second moves the service to beta; alpha's fail count (2)
//!   shows in `hactl service status`, alpha advertises it cannot host and
//!   refuses a TakeOver; Cleanup resets the count and alpha can host again;
//! * `migration_threshold = 1` with `failure_timeout`: one kill moves the
//!   service, and alpha can host again by itself once the failure expired;
//! * `switchback_stable = "8s"`: alpha's public cable flaps (unplugged,
//!   plugged, unplugged, plugged); the service, moved to beta, stays there
//!   for at least 4 s after the last plug (the stable time counts from
//!   when beta hears alpha is able again, after that plug), then returns
//!   to alpha by itself.

use haschema::ctl::ServiceOp;
use hatests::require_root;
use hatests::web::{SERVICE, WebService, WebSpec};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// The fixture with a fencing device, `restart_times = 5` and `extra`
/// service keys.
#[track_caller]
fn start(test: &str, extra: &str) -> WebService {
    WebService::start_with(
        test,
        WebSpec {
            fencing: true,
            restart_times: Some(5),
            service_extra: extra.to_owned(),
            ..WebSpec::default()
        },
    )
}

/// SIGKILL to the application on `node`.
#[track_caller]
fn kill_app(w: &WebService, node: &str) {
    let pid = w.app_pid(node);
    let n: i32 = pid.parse().unwrap_or_else(|e| panic!("pid {pid:?}: {e}"));
    kill(Pid::from_raw(n), Signal::SIGKILL).unwrap_or_else(|e| panic!("kill {pid}: {e}"));
}

/// The service as `asked`'s hasvrd reports it: its fail count there and
/// whether it says `node` can host it.
fn seen_by(w: &WebService, asked: &str, node: &str) -> Option<(u32, bool)> {
    let services = w.cluster().services(asked).ok()?;
    let service = services.into_iter().find(|s| s.name == SERVICE)?;
    let can_host = service.nodes.iter().find(|n| n.node == node)?.can_host;
    Some((service.failures, can_host))
}

/// Kills alpha's application until the service moved to beta: `restarts`
/// kills are restarted on alpha first, the next one moves it.
#[track_caller]
fn kill_until_moved(w: &WebService, restarts: u32) {
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    for n in 1..=restarts {
        let before = w.app_pid("alpha");
        kill_app(w, "alpha");
        let want = format!("recovering here ({n} of 5); {n} failure(s) counted here");
        w.wait_for(&want, || w.cluster().log("alpha").contains(&want));
        w.wait_for("alpha runs a new application", || {
            w.app_running("alpha") && w.app_pid("alpha") != before
        });
        w.wait_served_by("alpha");
        w.wait_state("alpha", "ACTIVE");
    }
    let ((), outage) = w.outage_during("alpha", "beta", || kill_app(w, "alpha"));
    eprintln!("fail-over at the migration threshold: {outage:?}");
    let log = w.cluster().log("alpha");
    let threshold = restarts + 1;
    let want = format!(
        "{threshold} failure(s) here reached migration_threshold {threshold}: failing over"
    );
    assert!(log.contains(&want), "{log}");
    assert_eq!(w.holders(), ["beta"]);
}

#[test]
fn the_migration_threshold_moves_the_service_and_cleanup_resets_the_fail_count() {
    if !require_root() {
        return;
    }
    let w = start("svfc_threshold", "migration_threshold = 2");
    kill_until_moved(&w, 1);
    // alpha cannot host: beta runs it without an able peer.
    w.wait_state("beta", "ACTIVEACT");
    w.wait_for("beta sees alpha unable to host", || {
        seen_by(&w, "beta", "alpha").is_some_and(|(_, can)| !can)
    });
    assert_eq!(seen_by(&w, "alpha", "alpha"), Some((2, false)));
    let refused = w
        .cluster()
        .service_op("alpha", ServiceOp::TakeOver, SERVICE)
        .unwrap_err();
    assert!(refused.contains("migration_threshold 2"), "{refused}");

    let done = w.cluster().service_op("beta", ServiceOp::Cleanup, SERVICE);
    assert!(done.is_ok(), "{done:?}");
    w.wait_for("alpha's fail count is reset and it can host", || {
        seen_by(&w, "alpha", "alpha") == Some((0, true))
    });
    w.wait_for("beta sees alpha able again", || {
        seen_by(&w, "beta", "alpha").is_some_and(|(_, can)| can)
    });
    // Switchback is off: the service stays on beta.
    w.wait_state("beta", "ACTIVESTB");
    assert_eq!(w.holders(), ["beta"]);
    w.wait_served_by("beta");
}

#[test]
fn an_expired_failure_lets_the_node_host_again_by_itself() {
    if !require_root() {
        return;
    }
    let w = start(
        "svfc_expiry",
        "migration_threshold = 1\nfailure_timeout = \"10s\"",
    );
    kill_until_moved(&w, 0);
    w.wait_for("alpha's failure expires", || {
        seen_by(&w, "beta", "alpha").is_some_and(|(_, can)| can)
    });
    assert_eq!(seen_by(&w, "alpha", "alpha"), Some((0, true)));
    let log = w.cluster().log("alpha");
    assert!(
        log.contains("1 failure(s) expired (failure_timeout)"),
        "{log}"
    );
    w.wait_state("beta", "ACTIVESTB");
    assert_eq!(w.holders(), ["beta"]);
}

/// Waits until beta says whether alpha can host (`can`).
#[track_caller]
fn beta_sees_alpha(w: &WebService, can: bool) {
    w.wait_for(&format!("beta sees alpha can_host = {can}"), || {
        seen_by(w, "beta", "alpha").is_some_and(|(_, c)| c == can)
    });
}

#[test]
fn a_flapping_node_gets_the_service_back_only_after_the_stable_time() {
    if !require_root() {
        return;
    }
    let w = start("svfc_flap", "switchback = true\nswitchback_stable = \"8s\"");
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    let ((), outage) = w.outage_during("alpha", "beta", || w.lan().set_port(0, false));
    eprintln!("fail-over after the public cable was unplugged: {outage:?}");
    beta_sees_alpha(&w, false);
    // A flap: back, and lost again before it was stable.
    w.lan().set_port(0, true);
    beta_sees_alpha(&w, true);
    w.lan().set_port(0, false);
    beta_sees_alpha(&w, false);
    assert_eq!(w.holders(), ["beta"]);
    w.lan().set_port(0, true);
    let plugged = Instant::now();
    // Not before the stable time, which starts after this plug.
    while plugged.elapsed() < Duration::from_secs(4) {
        w.assert_never_twice();
        assert_eq!(
            w.holders(),
            ["beta"],
            "switched back before switchback_stable\n{}",
            w.cluster().log_tails(60)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    w.wait_served_by("alpha");
    let log = w.cluster().log("beta");
    assert!(
        log.contains("switchback: a preferred node has been up and able for 8s"),
        "{log}"
    );
    w.wait_state("alpha", "ACTIVESTB");
    w.wait_state("beta", "STANDBY");
}
