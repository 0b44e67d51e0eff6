//! SureHA 6.1 on namespaced nodes. Test 1: with only one private network
//! left between the nodes, the protected service stays where it runs and
//! nobody is fenced (safety rule 3: one medium is enough); when the other
//! networks come back nothing moves either. Test 2: with every private
//! network down while the public LAN still carries the lowest-priority
//! heartbeat path, the same holds; then the primary is shut down and the
//! backup takes the service over (through that public path alone). And
//! with the serial cable as the only path left, the cluster holds and an
//! operator's fail-over is carried out over it.

use haschema::ctl::ServiceOp;
use haschema::ctl::State::Up;
use hatests::web::{PUBLIC_NET, SERVICE, WAIT, WebService, WebSpec};
use hatests::{LAN1, LAN2, require_root};
use std::time::{Duration, Instant};

/// How long the test watches the service once the networks are cut:
/// several deadtimes of the harness's paths (about 2 s each).
const WATCH: Duration = Duration::from_secs(8);

/// Fails unless alpha keeps the service during `how_long`: the floating
/// IP stays on alpha alone and every answer is alpha's. A single request
/// left unanswered is tolerated (the test server, socat, now and then
/// closes a connection without a reply under load); three in a row are not.
#[track_caller]
fn alpha_keeps_serving(w: &WebService, how_long: Duration) {
    let want = w.addr("alpha");
    let end = Instant::now() + how_long;
    let mut misses = 0;
    while Instant::now() < end {
        w.assert_never_twice();
        assert_eq!(w.holders(), ["alpha"], "the floating IP moved");
        match w.fetch() {
            Ok(body) => {
                assert_eq!(body.trim(), want, "served by another node");
                misses = 0;
            }
            Err(e) => {
                misses += 1;
                assert!(
                    misses < 3,
                    "the client lost the service: {e}\n{}",
                    w.cluster().log_tails(40)
                );
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn one_private_network_left_keeps_the_service_where_it_runs() {
    if !require_root() {
        return;
    }
    let w = WebService::start("svc_onepath", true);
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    let c = w.cluster();

    for (left, cut) in [(LAN2, [LAN1]), (LAN1, [LAN2])] {
        c.cut_serial();
        for net in cut {
            c.cut_udp(net);
        }
        alpha_keeps_serving(&w, WATCH);
        assert_eq!(
            c.service_state("beta", SERVICE).as_deref(),
            Some("STANDBY"),
            "beta, with only {left} left"
        );
        c.restore_all();
        alpha_keeps_serving(&w, Duration::from_secs(2));
    }
    for node in ["alpha", "beta"] {
        let log = c.log(node);
        assert!(
            !log.contains("fencing it"),
            "{node} fenced its peer:\n{log}"
        );
        assert!(!log.contains("NodeDown"), "{node} lost its peer:\n{log}");
    }
}

#[test]
fn with_every_private_network_down_the_public_path_keeps_the_cluster_and_a_shutdown_hands_over() {
    if !require_root() {
        return;
    }
    let w = WebService::start_with(
        "svc_pubpath",
        WebSpec {
            fencing: true,
            public_heartbeat: true,
            hamond_runs_hasvrd: true,
            ..WebSpec::default()
        },
    );
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    let c = w.cluster();
    c.wait_until("the public path is up both ways", WAIT, |s| {
        s.link_state("alpha", "beta", PUBLIC_NET) == Some(Up)
            && s.link_state("beta", "alpha", PUBLIC_NET) == Some(Up)
    });

    c.cut_serial();
    c.cut_udp(LAN1);
    c.cut_udp(LAN2);
    alpha_keeps_serving(&w, WATCH);
    assert_eq!(c.service_state("beta", SERVICE).as_deref(), Some("STANDBY"));

    // The primary shut down: its hamond stops hasvrd (the service is
    // released) and leaves; beta hears both over the public path.
    let stopped = c.shutdown("alpha");
    assert!(stopped.is_some_and(|s| s.success()), "{stopped:?}");
    w.wait_served_by("beta");
    let log = c.log("beta");
    assert!(log.contains("left the cluster cleanly"), "{log}");
    assert!(!log.contains("fencing it"), "{log}");
}

#[test]
fn the_serial_cable_alone_keeps_the_cluster_and_carries_a_failover() {
    if !require_root() {
        return;
    }
    let w = WebService::start("svc_serialonly", true);
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    let c = w.cluster();

    c.cut_udp(LAN1);
    c.cut_udp(LAN2);
    alpha_keeps_serving(&w, WATCH);
    assert_eq!(c.service_state("beta", SERVICE).as_deref(), Some("STANDBY"));

    // The operator moves the service: the release, the lock and the
    // take-over request travel on the serial line alone.
    c.service_op("alpha", ServiceOp::FailOver, SERVICE)
        .unwrap_or_else(|e| panic!("fail-over refused: {e}"));
    w.wait_served_by("beta");
    w.assert_never_twice();
    for node in ["alpha", "beta"] {
        let log = c.log(node);
        assert!(
            !log.contains("fencing it"),
            "{node} fenced its peer:\n{log}"
        );
        assert!(!log.contains("NodeDown"), "{node} lost its peer:\n{log}");
    }
}
