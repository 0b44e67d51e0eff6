//! The operator's per-service choices survive a `kill -9` of hasvrd
//! (issue 7: maintenance "survives daemon restarts"), on namespaced nodes
//! with the web service ([`WebService`]), hamond supervising each node's
//! hasvrd (it starts a new one when it dies):
//!
//! * brought out while it runs on alpha, then alpha's hasvrd killed: the
//!   new one adopts it as it is (still OUTACT, the same application
//!   process, beta still OUTSTB), and does not watch it (the application
//!   killed is not restarted, nothing moves); brought in, it is watched
//!   again (its first probe finds the application dead and restarts it);
//! * stopped, then both hasvrds killed: both new ones come back OUTSTB,
//!   nobody asks for the lock and nothing starts for a while; brought in,
//!   it starts on alpha.
//!
//! hasvrd keeps them in `operator.NODE` of its `--state-dir` (the harness
//! gives each node its own). Every wait is bounded ([`WAIT`] through the
//! fixture, or a number of polls) and checks that the floating IP is on
//! at most one node.

use haschema::ctl::ServiceOp;
use hatests::require_root;
use hatests::web::{NODES, SERVICE, WebService, WebSpec};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::Duration;

/// Polls of a quiet check, [`POLL`] apart: several of the service's check
/// intervals (1 s) and more than a boot grace (5 s), in which a node that
/// would restart, move or ask for the service would have.
const QUIET_POLLS: u32 = 40;
/// Between two polls of a quiet check.
const POLL: Duration = Duration::from_millis(200);

/// SIGKILL to `pid` (`what` names it in a failure).
#[track_caller]
fn sigkill(pid: i32, what: &str) {
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap_or_else(|e| panic!("kill {what}: {e}"));
}

/// SIGKILL to `node`'s hasvrd; returns once hamond started a new one and
/// it answers on its control socket.
#[track_caller]
fn crash_hasvrd(w: &WebService, node: &str) {
    let old = w
        .hasvrd_pid(node)
        .unwrap_or_else(|| panic!("no hasvrd on {node}"));
    sigkill(old, &format!("{node}'s hasvrd"));
    w.wait_for(&format!("hamond starts a new hasvrd on {node}"), || {
        w.hasvrd_pid(node).is_some_and(|p| p != old)
    });
    w.wait_for(&format!("the new hasvrd on {node} answers"), || {
        w.cluster().services(node).is_ok()
    });
}

/// `node`'s hasvrd's state of the service, "" if it does not answer.
fn state(w: &WebService, node: &str) -> String {
    w.cluster().service_state(node, SERVICE).unwrap_or_default()
}

/// `op` on the service, asked on `node`; panics if refused.
#[track_caller]
fn command(w: &WebService, node: &str, op: ServiceOp) -> String {
    w.cluster()
        .service_op(node, op, SERVICE)
        .unwrap_or_else(|e| panic!("{} on {node}: {e}", op.as_str()))
}

/// Checks `ok` (an error says what broke) at every one of [`QUIET_POLLS`]
/// polls, with the floating IP on at most one node.
#[track_caller]
fn stays(w: &WebService, what: &str, ok: impl Fn() -> Result<(), String>) {
    for poll in 0..QUIET_POLLS {
        w.assert_never_twice();
        if let Err(e) = ok() {
            panic!("{what}: {e} (poll {poll})\n{}", w.cluster().log_tails(60));
        }
        std::thread::sleep(POLL);
    }
}

/// The service's states on alpha and beta are `want`.
fn states_are(w: &WebService, want: [&str; 2]) -> Result<(), String> {
    let states = NODES.map(|n| state(w, n));
    if states == want {
        Ok(())
    } else {
        Err(format!("states on {NODES:?}: {states:?}"))
    }
}

/// The application runs nowhere, the floating IP is on no node, and every
/// node reports the service OUTSTB with nobody holding it.
fn stopped_everywhere(w: &WebService) -> Result<(), String> {
    states_are(w, ["OUTSTB", "OUTSTB"])?;
    if let Some(node) = NODES.iter().find(|n| w.app_running(n)) {
        return Err(format!("the application runs on {node}"));
    }
    if !w.holders().is_empty() {
        return Err(format!("the floating IP is on {:?}", w.holders()));
    }
    for node in NODES {
        let services = w.cluster().services(node)?;
        if let Some(s) = services
            .iter()
            .find(|s| s.name == SERVICE && s.owner.is_some())
        {
            return Err(format!("{node} says {:?} holds it", s.owner));
        }
    }
    Ok(())
}

#[test]
fn bring_out_and_stop_survive_a_kill_of_hasvrd() {
    if !require_root() {
        return;
    }
    let w = WebService::start_with(
        "service_maint",
        WebSpec {
            fencing: true,
            restart_times: Some(1),
            hamond_runs_hasvrd: true,
            ..WebSpec::default()
        },
    );
    w.wait_served_by("alpha");
    w.wait_state("alpha", "ACTIVE");
    w.wait_state("beta", "STANDBY");
    let pid = w.app_pid("alpha");

    // Brought out while it runs on alpha: kept on both nodes.
    command(&w, "alpha", ServiceOp::BringOut);
    w.wait_state("alpha", "OUTACT");
    w.wait_state("beta", "OUTSTB");
    for node in NODES {
        let file = w
            .cluster()
            .hasvrd_state_dir(node)
            .join(format!("operator.{node}"));
        w.wait_for(&format!("{} keeps the bring-out", file.display()), || {
            std::fs::read_to_string(&file).is_ok_and(|t| t.contains(&format!("{SERVICE} out")))
        });
    }

    // kill -9 of alpha's hasvrd: the new one adopts it as it is.
    let offset = w.cluster().log_len("alpha");
    crash_hasvrd(&w, "alpha");
    w.wait_state("alpha", "OUTACT");
    assert_eq!(states_are(&w, ["OUTACT", "OUTSTB"]), Ok(()));
    w.wait_served_by("alpha");
    assert_eq!(
        w.app_pid("alpha"),
        pid,
        "the restart restarted the application"
    );
    let log = w.cluster().log_since("alpha", offset);
    assert!(
        log.contains("brought out by the operator before hasvrd restarted"),
        "{log}"
    );

    // Not watched: the application killed stays dead, nothing moves.
    let app: i32 = pid.parse().unwrap_or_else(|e| panic!("pid {pid:?}: {e}"));
    sigkill(app, "the application");
    stays(&w, "a brought-out service must be left alone", || {
        states_are(&w, ["OUTACT", "OUTSTB"])?;
        match w.holders().as_slice() {
            ["alpha"] => Ok(()),
            other => Err(format!("the floating IP is on {other:?}")),
        }
    });
    assert!(
        !w.app_running("alpha"),
        "the killed application was restarted"
    );
    let log = w.cluster().log_since("alpha", offset);
    assert!(!log.contains("recovering here"), "{log}");

    // Brought in: watched again; its first probe finds the application
    // dead and restarts it here.
    command(&w, "alpha", ServiceOp::BringIn);
    w.wait_for("alpha restarts the application", || {
        w.cluster()
            .log_since("alpha", offset)
            .contains("recovering here (1 of 1)")
    });
    w.wait_served_by("alpha");
    w.wait_state("alpha", "ACTIVE");
    w.wait_state("beta", "STANDBY");
    assert_ne!(w.app_pid("alpha"), pid, "not restarted");

    // Stopped, then both hasvrds killed: both come back stopped.
    command(&w, "beta", ServiceOp::Stop);
    w.wait_for("stopped everywhere", || stopped_everywhere(&w).is_ok());
    let offsets = NODES.map(|n| w.cluster().log_len(n));
    for node in NODES {
        crash_hasvrd(&w, node);
    }
    w.wait_for("both restarted hasvrds report it stopped", || {
        stopped_everywhere(&w).is_ok()
    });
    for (node, offset) in NODES.iter().zip(offsets) {
        let log = w.cluster().log_since(node, offset);
        assert!(
            log.contains("stopped by the operator before hasvrd restarted"),
            "{node}: {log}"
        );
    }
    stays(&w, "a stopped service must stay stopped", || {
        stopped_everywhere(&w)
    });

    // Brought in: it starts on alpha, its preferred node.
    command(&w, "alpha", ServiceOp::BringIn);
    w.wait_served_by("alpha");
    w.wait_state("alpha", "ACTIVE");
    w.wait_state("beta", "STANDBY");
    assert_eq!(w.holders(), ["alpha"]);
}
