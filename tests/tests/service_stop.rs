//! The operator's `stop` of a service on namespaced nodes (Skyge's
//! `ha_svc_commander -a stop`, "stop service before remove service"),
//! with the web service: a stop asked on the standby node reaches the
//! holder, which stops the application and the floating IP (proven) and
//! releases the lock; both nodes end brought out (OUTSTB), nothing starts
//! anywhere, nobody holds the lock; `bring-in` starts it again through the
//! lock, on its preferred node, and the client reaches it.

use haschema::ctl::ServiceOp;
use hatests::require_root;
use hatests::web::{NODES, SERVICE, WebService};
use std::time::Duration;

/// Polls of the quiet check after the stop, [`POLL`] apart: several of
/// the service's check intervals (1 s) and more than a boot grace (5 s),
/// in which a node that would ask for the service again would have.
const QUIET_POLLS: u32 = 40;
/// Between two polls of the quiet check.
const POLL: Duration = Duration::from_millis(200);

/// Every node reports the service OUTSTB, and none says anybody holds it.
fn stopped_everywhere(w: &WebService) -> bool {
    NODES.iter().all(|node| {
        w.cluster().services(node).is_ok_and(|services| {
            services.iter().any(|s| {
                s.name == SERVICE
                    && s.owner.is_none()
                    && s.nodes.iter().all(|n| n.state == "OUTSTB")
            })
        })
    })
}

/// The application runs on no node and the floating IP is on none.
fn runs_nowhere(w: &WebService) -> bool {
    w.holders().is_empty() && NODES.iter().all(|n| !w.app_running(n))
}

#[test]
fn stop_from_the_standby_stops_the_holder_keeps_it_stopped_and_bring_in_restarts_it() {
    if !require_root() {
        return;
    }
    let w = WebService::start("service_stop", true);
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    assert!(w.app_running("alpha"));

    // Stop, asked on beta (the standby): it reaches alpha, the holder.
    let done = w
        .cluster()
        .service_op("beta", ServiceOp::Stop, SERVICE)
        .unwrap_or_else(|e| panic!("stop: {e}"));
    assert!(done.contains("alpha"), "{done}");
    w.wait_for(
        "the application and the floating IP gone from alpha",
        || runs_nowhere(&w),
    );
    w.wait_for("both nodes OUTSTB and the lock free", || {
        stopped_everywhere(&w)
    });
    assert!(w.fetch().is_err(), "the client is still served");
    let log = w.cluster().log("alpha");
    assert!(log.contains("stopped (proven) and released"), "{log}");

    // It stays stopped: nobody asks for it, nothing starts anywhere.
    for poll in 0..QUIET_POLLS {
        w.assert_never_twice();
        assert!(
            runs_nowhere(&w) && stopped_everywhere(&w),
            "the stopped service came back (poll {poll})\n{}",
            w.cluster().log_tails(60)
        );
        std::thread::sleep(POLL);
    }
    // Taking it over needs a bring-in first.
    let refused = w
        .cluster()
        .service_op("beta", ServiceOp::TakeOver, SERVICE)
        .unwrap_err();
    assert!(refused.contains("BringIn"), "{refused}");

    // Bring-in, asked on beta too: through the lock, on alpha (preferred).
    w.cluster()
        .service_op("beta", ServiceOp::BringIn, SERVICE)
        .unwrap_or_else(|e| panic!("bring-in: {e}"));
    w.wait_served_by("alpha");
    assert_eq!(w.holders(), ["alpha"]);
    w.wait_state("beta", "STANDBY");
}
