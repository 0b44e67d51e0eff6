//! Acceptance tests of a protected service's failures, after the SureHA
//! manual's chapter 6.2 (the procedures an administrator runs before
//! putting a cluster in service), on the two-node web service fixture
//! ([`WebService`]: real hamond and hasvrd on namespaced nodes, a floating
//! IP on a public LAN, a client that says which node served). Every poll
//! of every wait checks that the floating IP is on at most one node
//! (safety rule 1), and every wait is bounded ([`WAIT`]).
//!
//! * bring out / bring in (6.2, test 1): a brought-out service keeps
//!   running unwatched (OUTACT on its node, OUTSTB on the other), a killed
//!   application is left alone; brought in, the dead application is
//!   noticed and restarted where it is;
//! * the application killed (test 6): restarted locally once
//!   (`restart_times = 1`), killed again it fails over; the node it failed
//!   away from refuses a TakeOver until Cleanup, then takes it back;
//! * the public cable unplugged (test 4): the service fails over at once
//!   (no local restart), and the node without network says it cannot host
//!   it; plugged back, it can again by itself: with switchback on the
//!   service returns to it, with switchback off it stays where it is;
//! * a stop that fails (safety rule 7, with a fencing device): an
//!   operator's fail-over finds alpha's stop script failing; alpha keeps
//!   the lock in ERRORACT and asks beta to fence it; beta powers it off
//!   through the power switch, then serves.

use haschema::ctl::ServiceOp;
use hatests::require_root;
use hatests::web::{SERVICE, WAIT, WebService, WebSpec};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a test watches that nothing happens (several check
/// intervals of the fixture's 1 s).
const QUIET: Duration = Duration::from_secs(4);

/// The fixture with a fencing device and `extra` service keys.
#[track_caller]
fn start(test: &str, extra: &str) -> WebService {
    WebService::start_with(
        test,
        WebSpec {
            fencing: true,
            service_extra: extra.to_owned(),
            ..WebSpec::default()
        },
    )
}

/// Waits (at most [`WAIT`]) until `ok` holds, checking the floating IP on
/// every poll.
#[track_caller]
fn wait_for(w: &WebService, what: &str, ok: impl Fn() -> bool) {
    let end = Instant::now() + WAIT;
    loop {
        w.assert_never_twice();
        if ok() {
            return;
        }
        if Instant::now() >= end {
            panic!("not within {WAIT:?}: {what}\n{}", w.cluster().log_tails(60));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// For `span`, checks on every poll that `holds` holds (and the floating
/// IP is on at most one node).
#[track_caller]
fn keeps(w: &WebService, span: Duration, what: &str, holds: impl Fn() -> Result<(), String>) {
    let end = Instant::now() + span;
    while Instant::now() < end {
        w.assert_never_twice();
        if let Err(e) = holds() {
            panic!("{what}: {e}\n{}", w.cluster().log_tails(60));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// SIGKILL to the application on `node`; its pid.
#[track_caller]
fn kill_app(w: &WebService, node: &str) -> String {
    let pid = w.app_pid(node);
    let n: i32 = pid.parse().unwrap_or_else(|e| panic!("pid {pid:?}: {e}"));
    kill(Pid::from_raw(n), Signal::SIGKILL).unwrap_or_else(|e| panic!("kill {pid}: {e}"));
    pid
}

/// Whether `node`'s log (hamond's and hasvrd's) has `needle`.
fn logged(w: &WebService, node: &str, needle: &str) -> bool {
    w.cluster().log(node).contains(needle)
}

/// `node`'s state of the service and whether it can host it, as `asked`'s
/// hasvrd reports them.
fn seen_by(w: &WebService, asked: &str, node: &str) -> Option<(String, bool)> {
    let services = w.cluster().services(asked).ok()?;
    let service = services.into_iter().find(|s| s.name == SERVICE)?;
    let n = service.nodes.into_iter().find(|n| n.node == node)?;
    Some((n.state, n.can_host))
}

/// The state of the service on `node`, from its own hasvrd.
fn state(w: &WebService, node: &str) -> String {
    w.cluster()
        .service_state(node, SERVICE)
        .unwrap_or_else(|| "no answer".into())
}

/// For `span`, checks on every poll that the floating IP is on `node`
/// alone and that no other node answers the client; then that `node`
/// serves. (One request may fail now and then: the test's `socat` server
/// sometimes closes a connection without an answer.)
#[track_caller]
fn stays_on(w: &WebService, node: &str, span: Duration, what: &str) {
    keeps(w, span, what, || {
        if w.holders() != [node] {
            return Err(format!("the floating IP is on {:?}", w.holders()));
        }
        match w.fetch() {
            Ok(body) if body.trim() != w.addr(node) => {
                Err(format!("answered {body:?}, not {node}"))
            }
            _ => Ok(()),
        }
    });
    w.wait_served_by(node);
}

/// 6.2 test 1: BringOut leaves the service running, unwatched; BringIn
/// watches it again.
#[test]
fn bring_out_leaves_it_running_unwatched_and_bring_in_restarts_a_dead_app() {
    if !require_root() {
        return;
    }
    let w = start("svf_out", "");
    w.wait_served_by("alpha");
    w.wait_state("alpha", "ACTIVE");
    w.wait_state("beta", "STANDBY");
    let pid = w.app_pid("alpha");

    let done = w
        .cluster()
        .service_op("alpha", ServiceOp::BringOut, SERVICE);
    assert!(done.is_ok(), "{done:?}");
    // Reached beta too: brought out everywhere, nothing stopped.
    w.wait_state("alpha", "OUTACT");
    w.wait_state("beta", "OUTSTB");
    w.wait_served_by("alpha");
    assert_eq!(
        w.app_pid("alpha"),
        pid,
        "BringOut restarted the application"
    );

    // Killed while brought out: nobody restarts it, nothing moves.
    kill_app(&w, "alpha");
    keeps(
        &w,
        QUIET,
        "a brought-out service must be left alone",
        || {
            let states = (state(&w, "alpha"), state(&w, "beta"));
            if states != ("OUTACT".into(), "OUTSTB".into()) {
                return Err(format!("states {states:?}"));
            }
            if w.holders() != ["alpha"] {
                return Err(format!("the floating IP is on {:?}", w.holders()));
            }
            Ok(())
        },
    );
    assert!(w.fetch().is_err(), "the killed application still answers");
    assert_eq!(w.app_pid("alpha"), pid, "the application was restarted");
    let log = w.cluster().log("alpha");
    assert!(!log.contains("recovering here"), "{log}");

    // Brought in: the first probe finds it dead, and it restarts here.
    let done = w.cluster().service_op("alpha", ServiceOp::BringIn, SERVICE);
    assert!(done.is_ok(), "{done:?}");
    wait_for(&w, "alpha restarts the application", || {
        logged(&w, "alpha", "recovering here (1 of 1)")
    });
    w.wait_served_by("alpha");
    assert_ne!(w.app_pid("alpha"), pid, "not restarted");
    w.wait_state("alpha", "ACTIVE");
    w.wait_state("beta", "STANDBY");
    assert_eq!(w.holders(), ["alpha"]);
}

/// 6.2 test 6: the application killed is restarted where it runs, up to
/// `restart_times` (1 here); then the service fails over, and the
/// node it left can host it again only after Cleanup.
#[test]
fn a_killed_app_restarts_locally_then_fails_over_and_comes_back_after_cleanup() {
    if !require_root() {
        return;
    }
    let w = WebService::start_with(
        "svf_kill",
        WebSpec {
            fencing: true,
            restart_times: Some(1),
            ..WebSpec::default()
        },
    );
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");

    // First kill: restarted on alpha.
    let first = kill_app(&w, "alpha");
    wait_for(&w, "alpha restarts the application", || {
        logged(&w, "alpha", "recovering here (1 of 1)")
    });
    w.wait_served_by("alpha");
    let second = w.app_pid("alpha");
    assert_ne!(second, first, "not restarted");
    assert_eq!(w.holders(), ["alpha"]);
    w.wait_state("alpha", "ACTIVE");

    // Second kill: the restart budget is spent, the service fails over.
    let ((), outage) = w.outage_during("alpha", "beta", || {
        kill_app(&w, "alpha");
    });
    eprintln!("fail-over after the second kill: {outage:?}");
    let log = w.cluster().log("alpha");
    assert!(
        log.contains("local attempts used up: failing over to beta"),
        "{log}"
    );
    assert_eq!(w.holders(), ["beta"]);
    // alpha advertises itself unable: beta has no able peer.
    w.wait_state("beta", "ACTIVEACT");
    wait_for(&w, "beta sees alpha unable to host", || {
        seen_by(&w, "beta", "alpha").is_some_and(|(s, can)| s == "STANDBY" && !can)
    });

    // A TakeOver on alpha is refused until Cleanup.
    let refused = w
        .cluster()
        .service_op("alpha", ServiceOp::TakeOver, SERVICE)
        .unwrap_err();
    assert!(refused.contains("Cleanup"), "{refused}");
    w.wait_served_by("beta");

    let done = w.cluster().service_op("alpha", ServiceOp::Cleanup, SERVICE);
    assert!(done.is_ok(), "{done:?}");
    wait_for(&w, "beta sees alpha able again", || {
        seen_by(&w, "beta", "alpha").is_some_and(|(_, can)| can)
    });
    // Switchback is off: Cleanup alone moves nothing.
    w.wait_state("beta", "ACTIVESTB");
    assert_eq!(w.holders(), ["beta"]);

    // The operator's switch back.
    let ((), _) = w.outage_during("beta", "alpha", || {
        let done = w
            .cluster()
            .service_op("alpha", ServiceOp::TakeOver, SERVICE);
        assert!(done.is_ok(), "{done:?}");
    });
    w.wait_state("alpha", "ACTIVESTB");
    w.wait_state("beta", "STANDBY");
    assert_eq!(w.holders(), ["alpha"]);
}

/// Unplugs alpha's public cable while it serves: the service fails over to
/// beta at once, without a restart on alpha, and alpha says it cannot host
/// it while its cable is out.
#[track_caller]
fn unplug_alpha(w: &WebService) {
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    let ((), outage) = w.outage_during("alpha", "beta", || w.lan().set_port(0, false));
    eprintln!("fail-over after the public cable was unplugged: {outage:?}");
    let log = w.cluster().log("alpha");
    assert!(log.contains("public network lost"), "{log}");
    assert!(log.contains(": failing over to beta"), "{log}");
    assert!(!log.contains("recovering here"), "restarted locally\n{log}");
    assert_eq!(w.holders(), ["beta"]);
    // alpha cannot host: beta runs it without an able peer.
    w.wait_state("beta", "ACTIVEACT");
    wait_for(w, "beta sees alpha unable to host", || {
        seen_by(w, "beta", "alpha").is_some_and(|(s, can)| s == "STANDBY" && !can)
    });
    let refused = w
        .cluster()
        .service_op("alpha", ServiceOp::TakeOver, SERVICE)
        .unwrap_err();
    assert!(refused.contains("public network"), "{refused}");
    // It stays on beta while the cable is out (nothing bounces back).
    stays_on(w, "beta", QUIET, "the service must stay on beta");
}

/// 6.2 test 4 with switchback on: the service fails over when the public
/// cable is unplugged, and comes back by itself once it is plugged in.
#[test]
fn an_unplugged_public_cable_fails_over_and_switchback_returns_it_when_plugged() {
    if !require_root() {
        return;
    }
    let w = start("svf_cable", "switchback = true");
    unplug_alpha(&w);

    let ((), outage) = w.outage_during("beta", "alpha", || w.lan().set_port(0, true));
    eprintln!("switchback after the cable was plugged back: {outage:?}");
    let log = w.cluster().log("alpha");
    assert!(log.contains("public network back here"), "{log}");
    w.wait_state("alpha", "ACTIVESTB");
    w.wait_state("beta", "STANDBY");
    assert_eq!(w.holders(), ["alpha"]);
}

/// 6.2 test 4 with switchback off: plugged back, alpha can host again (no
/// Cleanup needed), but the service stays on beta.
#[test]
fn an_unplugged_public_cable_fails_over_and_without_switchback_it_stays() {
    if !require_root() {
        return;
    }
    let w = start("svf_cable_off", "");
    unplug_alpha(&w);

    w.lan().set_port(0, true);
    wait_for(&w, "beta sees alpha able again", || {
        seen_by(&w, "beta", "alpha").is_some_and(|(s, can)| s == "STANDBY" && can)
    });
    w.wait_state("beta", "ACTIVESTB");
    stays_on(
        &w,
        "beta",
        QUIET,
        "without switchback the service must stay on beta",
    );
}

/// From now on the service's `stop` fails (exit 1) on `node`: the
/// fixture's script (named in the service file) is moved aside and
/// replaced by one that refuses `stop` in `node`'s namespace and runs the
/// original for everything else.
#[track_caller]
fn fail_stops_on(w: &WebService, node: &str) {
    let file = w.cluster().services_dir().join(format!("{SERVICE}.toml"));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let script = text
        .lines()
        .find_map(|l| l.strip_prefix("stop = [\""))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no stop script in {text}"));
    let original = format!("{script}.orig");
    let copied = std::process::Command::new("cp")
        .args(["-p", script, &original])
        .status()
        .unwrap_or_else(|e| panic!("cp: {e}"));
    assert!(copied.success(), "cp {script}: {copied}");
    let (dir, name) = {
        let path = Path::new(script);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        (path.parent().unwrap_or(Path::new("/")), name)
    };
    hatests::scratch::write_script(
        dir,
        name,
        &format!(
            r#"if [ "$1" = stop ] && [ "$(ip netns identify $$)" = "{ns}" ]; then
    echo "the test makes this stop fail" >&2
    exit 1
fi
exec "{original}" "$@""#,
            ns = w.cluster().ns(node).name()
        ),
    );
}

/// Safety rule 7 with a fencing device: the holder whose stop fails keeps
/// the lock (ERRORACT) and asks the peer to fence it; the peer powers it
/// off, then takes the service over. Never on two nodes at any poll.
#[test]
fn a_failed_stop_is_fenced_by_the_peer_which_then_serves() {
    if !require_root() {
        return;
    }
    let w = start("svf_stop_fails", "");
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    fail_stops_on(&w, "alpha");

    let ((), outage) = w.outage_during("alpha", "beta", || {
        let done = w
            .cluster()
            .service_op("alpha", ServiceOp::FailOver, SERVICE);
        assert!(done.is_ok(), "{done:?}");
    });
    eprintln!("fail-over through a failed stop and a fence: {outage:?}");
    assert!(
        w.switch().is_off(w.cluster().ns("alpha")),
        "beta serves, and alpha is not off\n{}",
        w.cluster().log_tails(60)
    );
    let alpha = w.cluster().log("alpha");
    assert!(alpha.contains("stop of application failed"), "{alpha}");
    assert!(alpha.contains("asking beta to fence this node"), "{alpha}");
    let beta = w.cluster().log("beta");
    assert!(
        beta.contains("it asked for it: the stop of www failed"),
        "{beta}"
    );
    assert!(beta.contains("alpha is fenced (powered off by"), "{beta}");
    w.wait_state("beta", "ACTIVEACT");
    assert_eq!(w.holders(), ["beta"]);
}
