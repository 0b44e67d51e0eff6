//! Protected services on namespaced nodes: real hamond and hasvrd on two
//! nodes, a web service (a floating IP on the public LAN and a small HTTP
//! server started by its scripts) reached by a client in its own namespace
//! ([`WebService`]). Every poll checks that the floating IP is on at most
//! one node (safety rule 1); the answers say which node served.
//!
//! * the service starts on its active node only, moves on an operator's
//!   FailOver and comes back on TakeOver;
//! * the active node is powered off: its peer fences it through the test
//!   power switch and takes the service over;
//! * both daemons of the active node killed at once: its application,
//!   left running, is ended by the fence before the peer takes over;
//! * without a fencing device the same loss leaves the service STALLED
//!   until `fence confirm`;
//! * a crashed hasvrd, restarted, adopts the running service without
//!   restarting it; a clean hasvrd shutdown hands the service to the peer.

use haschema::ctl::{Request, Response, ServiceOp};
use hatests::require_root;
use hatests::web::{SERVICE, WAIT, WebService, WebSpec};
use std::time::{Duration, Instant};

#[test]
fn the_service_runs_on_its_active_node_and_moves_on_failover_and_takeover() {
    if !require_root() {
        return;
    }
    let w = WebService::start("svc_moves", true);
    w.wait_served_by("alpha");
    w.wait_state("alpha", "ACTIVE");
    w.wait_state("beta", "STANDBY");
    assert_eq!(w.holders(), ["alpha"]);

    // FailOver asked on beta reaches the holder, alpha; the client is
    // served by beta next (within the bounded wait).
    let (done, _outage) = w.outage_during("alpha", "beta", || {
        w.cluster().service_op("beta", ServiceOp::FailOver, SERVICE)
    });
    assert!(done.is_ok(), "{done:?}");
    w.wait_state("beta", "ACTIVESTB");

    // TakeOver on alpha brings it back.
    let done = w
        .cluster()
        .service_op("alpha", ServiceOp::TakeOver, SERVICE);
    assert!(done.is_ok(), "{done:?}");
    w.wait_served_by("alpha");

    // An unknown service is refused with a clear message.
    let refused = w
        .cluster()
        .service_op("alpha", ServiceOp::FailOver, "nope")
        .unwrap_err();
    assert!(refused.contains("no service nope"), "{refused}");
}

#[test]
fn a_powered_off_owner_is_fenced_and_its_service_taken_over() {
    if !require_root() {
        return;
    }
    let w = WebService::start("svc_fence", true);
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");

    // The client's outage covers detection, fencing and the start on beta.
    let ((), outage) = w.outage_during("alpha", "beta", || {
        w.switch().power_off(w.cluster().ns("alpha"))
    });
    // The client saw the crash (its length is measured in bench/).
    assert!(outage.failed_probes > 0, "{outage:?}");
    assert_eq!(w.holders(), ["beta"]);
    let log = w.cluster().log("beta");
    assert!(log.contains("fenced (powered off by switch)"), "{log}");
}

#[test]
fn both_daemons_killed_at_once_the_node_is_fenced_with_its_orphaned_application() {
    if !require_root() {
        return;
    }
    let w = WebService::start("svc_bothkilled", true);
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    let app = w.app_pid("alpha");

    // Nothing on alpha watches the application any more, and it still
    // answers: beta takes over only after alpha is fenced, which ends it.
    let ((), outage) = w.outage_during("alpha", "beta", || {
        w.cluster().crash_hasvrd("alpha");
        w.cluster().crash("alpha");
    });
    eprintln!("both daemons killed: {outage:?}");
    assert_eq!(w.holders(), ["beta"]);
    let log = w.cluster().log("beta");
    assert!(log.contains("fenced (powered off by switch)"), "{log}");
    // Dead, or a zombie waiting for whoever adopted it.
    let stat = std::fs::read_to_string(format!("/proc/{app}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
    assert!(
        matches!(state, None | Some("Z")),
        "alpha's application {app} outlived the fence: {stat}"
    );
}

#[test]
fn without_fencing_a_lost_owner_stalls_its_service_until_fence_confirm() {
    if !require_root() {
        return;
    }
    let w = WebService::start("svc_stall", false);
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");

    w.switch().power_off(w.cluster().ns("alpha"));
    w.wait_state("beta", "STALLED");
    // Nothing moves while the operator has not confirmed (rule 1).
    std::thread::sleep(Duration::from_secs(3));
    assert!(w.holders().is_empty(), "{:?}", w.holders());
    assert_eq!(
        w.cluster().service_state("beta", SERVICE).as_deref(),
        Some("STALLED")
    );

    // Confirming a node that is up is refused; this node neither.
    let me = Request::FenceConfirm {
        node: "beta".into(),
    };
    assert!(matches!(
        w.cluster().ask("beta", &me),
        Ok(Response::Error { .. })
    ));
    let confirm = Request::FenceConfirm {
        node: "alpha".into(),
    };
    match w.cluster().ask("beta", &confirm) {
        Ok(Response::Done { .. }) => {}
        other => panic!("fence confirm: {other:?}"),
    }
    w.wait_served_by("beta");
}

#[test]
fn a_restarted_hasvrd_adopts_its_service_and_a_clean_stop_hands_it_over() {
    if !require_root() {
        return;
    }
    let w = WebService::start("svc_adopt", true);
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    let pid = w.app_pid("alpha");

    w.cluster().crash_hasvrd("alpha");
    w.cluster().start_hasvrd("alpha");
    w.wait_state("alpha", "ACTIVE");
    w.wait_served_by("alpha");
    assert_eq!(w.app_pid("alpha"), pid, "the application was restarted");
    assert_eq!(w.holders(), ["alpha"]);

    let stopped = w.cluster().shutdown_hasvrd("alpha", WAIT);
    assert!(stopped.is_some_and(|s| s.success()), "{stopped:?}");
    w.wait_served_by("beta");
    assert_eq!(w.holders(), ["beta"]);
}

#[test]
fn hamond_restarts_a_dead_hasvrd_and_stops_it_before_leaving() {
    if !require_root() {
        return;
    }
    let w = WebService::start_with(
        "svc_supervised",
        WebSpec {
            fencing: true,
            hamond_runs_hasvrd: true,
            ..WebSpec::default()
        },
    );
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    let app = w.app_pid("alpha");
    let first = w.hasvrd_pid("alpha").expect("alpha's hasvrd");

    // A killed hasvrd is started again by hamond and adopts the service.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let end = Instant::now() + WAIT;
    while w.hasvrd_pid("alpha").is_none_or(|p| p == first) {
        assert!(Instant::now() < end, "hamond did not restart hasvrd");
        std::thread::sleep(Duration::from_millis(100));
    }
    w.wait_state("alpha", "ACTIVE");
    w.wait_served_by("alpha");
    assert_eq!(w.app_pid("alpha"), app, "the application was restarted");

    // Stopping hamond stops its hasvrd first: the service is handed over
    // and beta sees a clean leave, no fence.
    let stopped = w.cluster().shutdown("alpha");
    assert!(stopped.is_some_and(|s| s.success()), "{stopped:?}");
    w.wait_served_by("beta");
    let log = w.cluster().log("beta");
    assert!(log.contains("left the cluster cleanly"), "{log}");
    assert!(!log.contains("fencing it"), "{log}");
}
