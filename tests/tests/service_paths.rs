//! SureHA 6.1 test 1 on namespaced nodes: with only one private network
//! left between the nodes, the protected service stays where it runs and
//! nobody is fenced (safety rule 3: one medium is enough); when the other
//! networks come back nothing moves either.

use hatests::web::{SERVICE, WebService};
use hatests::{LAN1, LAN2, require_root};
use std::time::{Duration, Instant};

/// How long the test watches the service once the networks are cut:
/// several deadtimes of the harness's paths (about 2 s each).
const WATCH: Duration = Duration::from_secs(8);

/// Fails unless alpha serves every request during `how_long`.
#[track_caller]
fn alpha_keeps_serving(w: &WebService, how_long: Duration) {
    let want = w.addr("alpha");
    let end = Instant::now() + how_long;
    while Instant::now() < end {
        w.assert_never_twice();
        match w.fetch() {
            Ok(body) => assert_eq!(body.trim(), want, "served by another node"),
            Err(e) => panic!(
                "the client lost the service: {e}\n{}",
                w.cluster().log_tails(40)
            ),
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
