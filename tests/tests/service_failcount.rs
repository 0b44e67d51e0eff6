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
//!   to alpha by itself;
//! * the fail count is kept across a `kill -9` of hasvrd (hamond restarts
//!   it): still counted, shown on the other node, and the threshold still
//!   applies; `cleanup SERVICE NODE` resets one node's count, asked on
//!   either node, and names an unknown node.

use haschema::ctl::{Request, Response, ServiceOp};
use hatests::require_root;
use hatests::web::{SERVICE, WebService, WebSpec};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// The fixture with a fencing device, `restart_times = 5` and `extra`
/// service keys.
#[track_caller]
fn start(test: &str, extra: &str) -> WebService {
    WebService::start_with(test, spec(extra))
}

/// The fixture's spec with a fencing device, `restart_times = 5` and
/// `extra` service keys.
fn spec(extra: &str) -> WebSpec {
    WebSpec {
        fencing: true,
        restart_times: Some(5),
        service_extra: extra.to_owned(),
        ..WebSpec::default()
    }
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

/// The fail count of the service on `node` as `asked`'s hasvrd reports
/// it (its own, or the one `node` advertised).
fn count_on(w: &WebService, asked: &str, node: &str) -> Option<u32> {
    let services = w.cluster().services(asked).ok()?;
    let service = services.into_iter().find(|s| s.name == SERVICE)?;
    Some(service.nodes.iter().find(|n| n.node == node)?.failures)
}

/// Kills the application on `node`, which recovers it there: its `n`-th
/// local restart (of 5) with `count` failures counted there.
#[track_caller]
fn kill_restarted(w: &WebService, node: &str, n: u32, count: u32) {
    let before = w.app_pid(node);
    kill_app(w, node);
    let want = format!("recovering here ({n} of 5); {count} failure(s) counted here");
    w.wait_for(&want, || w.cluster().log(node).contains(&want));
    w.wait_for(&format!("{node} runs a new application"), || {
        w.app_running(node) && w.app_pid(node) != before
    });
    w.wait_served_by(node);
}

/// `cleanup SERVICE node`, asked on `asked`.
fn cleanup_on(w: &WebService, asked: &str, node: &str) -> Result<String, String> {
    let request = Request::Service {
        op: ServiceOp::Cleanup,
        service: SERVICE.to_owned(),
        node: Some(node.to_owned()),
    };
    match w.cluster().ask(asked, &request)? {
        Response::Done { message } => Ok(message),
        Response::Error { message } => Err(message),
        other => Err(format!("{other:?}")),
    }
}

/// Kills alpha's application until the service moved to beta: `restarts`
/// kills are restarted on alpha first, the next one moves it.
#[track_caller]
fn kill_until_moved(w: &WebService, restarts: u32) {
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    for n in 1..=restarts {
        kill_restarted(w, "alpha", n, n);
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

#[test]
fn the_fail_count_survives_a_killed_hasvrd_and_cleanup_acts_on_one_node() {
    if !require_root() {
        return;
    }
    let w = WebService::start_with(
        "svfc_restart",
        WebSpec {
            hamond_runs_hasvrd: true,
            ..spec("migration_threshold = 2")
        },
    );
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    kill_restarted(&w, "alpha", 1, 1);
    w.wait_for("beta sees alpha's failure", || {
        count_on(&w, "beta", "alpha") == Some(1)
    });

    // kill -9 of alpha's hasvrd: hamond starts it again, and the new one
    // counts the failure from before.
    let hasvrd = w.hasvrd_pid("alpha").expect("alpha's hasvrd");
    let offset = w.cluster().log_len("alpha");
    kill(Pid::from_raw(hasvrd), Signal::SIGKILL).unwrap_or_else(|e| panic!("kill: {e}"));
    w.wait_for("a new hasvrd on alpha", || {
        w.hasvrd_pid("alpha").is_some_and(|p| p != hasvrd)
    });
    w.wait_for("the restarted hasvrd answers", || {
        count_on(&w, "alpha", "alpha").is_some()
    });
    let log = w.cluster().log_since("alpha", offset);
    assert!(
        log.contains("1 failure(s) counted here before hasvrd restarted"),
        "{log}"
    );
    assert_eq!(count_on(&w, "alpha", "alpha"), Some(1));
    w.wait_state("alpha", "ACTIVE");
    assert_eq!(count_on(&w, "beta", "alpha"), Some(1));

    // The threshold still applies: the next failure moves the service.
    let ((), outage) = w.outage_during("alpha", "beta", || kill_app(&w, "alpha"));
    eprintln!("fail-over at the threshold after the restart: {outage:?}");
    let log = w.cluster().log_since("alpha", offset);
    assert!(
        log.contains("2 failure(s) here reached migration_threshold 2: failing over to beta"),
        "{log}"
    );
    w.wait_state("beta", "ACTIVEACT");
    // beta's own failure, recovered there.
    kill_restarted(&w, "beta", 1, 1);
    w.wait_for("each node sees both counts", || {
        ["alpha", "beta"].iter().all(|asked| {
            count_on(&w, asked, "alpha") == Some(2) && count_on(&w, asked, "beta") == Some(1)
        })
    });

    // alpha alone, asked on beta: forwarded to alpha; beta's count stays.
    let done = cleanup_on(&w, "beta", "alpha");
    assert_eq!(done.as_deref(), Ok("cleanup on alpha"));
    w.wait_for("alpha's count reset, seen from both nodes", || {
        count_on(&w, "alpha", "alpha") == Some(0) && count_on(&w, "beta", "alpha") == Some(0)
    });
    w.wait_for("beta sees alpha able again", || {
        seen_by(&w, "beta", "alpha").is_some_and(|(_, can)| can)
    });
    assert_eq!(count_on(&w, "beta", "beta"), Some(1));
    assert_eq!(count_on(&w, "alpha", "beta"), Some(1));
    // beta alone, asked on beta.
    assert_eq!(
        cleanup_on(&w, "beta", "beta").as_deref(),
        Ok("cleanup on beta")
    );
    w.wait_for("beta's count reset, seen from alpha", || {
        count_on(&w, "alpha", "beta") == Some(0)
    });
    // Not a node of the service.
    let e = cleanup_on(&w, "alpha", "gamma").unwrap_err();
    assert!(e.contains("gamma is not a node of"), "{e}");
    // Kept across a restart as well: a cleanup is persisted.
    let hasvrd = w.hasvrd_pid("beta").expect("beta's hasvrd");
    kill(Pid::from_raw(hasvrd), Signal::SIGKILL).unwrap_or_else(|e| panic!("kill: {e}"));
    w.wait_for("beta's restarted hasvrd reports no failure", || {
        w.hasvrd_pid("beta").is_some_and(|p| p != hasvrd) && count_on(&w, "beta", "beta") == Some(0)
    });
    w.wait_served_by("beta");
    assert_eq!(w.holders(), ["beta"]);
}
