//! Node standby on namespaced nodes (`hactl node standby on|off`, the
//! control request `node_standby`), with the web service and switchback
//! on: alpha put in standby hands its service to beta (the floating IP is
//! never on both), refuses to take it over, stays in standby across a
//! restart of its hasvrd, and out of standby gets the service back.
//!
//! hasvrd keeps the flag in `standby.NODE` of its `--state-dir` (the
//! harness gives each node its own).

use haschema::ctl::{Request, Response, ServiceOp};
use hatests::require_root;
use hatests::web::{SERVICE, WebService, WebSpec};

/// Asks `node`'s hasvrd for standby `on`; its Done message, or its error.
#[track_caller]
fn standby(w: &WebService, node: &str, on: bool) -> Result<String, String> {
    match w.cluster().ask(node, &Request::NodeStandby { on })? {
        Response::Done { message } => Ok(message),
        Response::Error { message } => Err(message),
        other => Err(format!("{other:?}")),
    }
}

/// Whether `node` reports itself in standby: the fault says so and it
/// advertises that it cannot host the service.
fn in_standby(w: &WebService, node: &str) -> bool {
    let Ok(services) = w.cluster().services(node) else {
        return false;
    };
    services.iter().any(|s| {
        s.name == SERVICE
            && s.fault.as_deref().is_some_and(|f| f.starts_with("standby"))
            && s.nodes.iter().any(|n| n.node == node && !n.can_host)
    })
}

#[test]
fn a_node_in_standby_hands_its_service_over_takes_none_and_survives_a_restart() {
    if !require_root() {
        return;
    }
    let w = WebService::start_with(
        "node_standby",
        WebSpec {
            fencing: true,
            service_extra: "switchback = true".to_owned(),
            ..WebSpec::default()
        },
    );
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");

    // Standby on alpha: the service moves to beta, never on both.
    let (done, _outage) = w.outage_during("alpha", "beta", || standby(&w, "alpha", true));
    let done = done.unwrap_or_else(|e| panic!("standby on: {e}"));
    assert!(done.contains("standby"), "{done}");
    assert_eq!(w.holders(), ["beta"]);
    w.wait_for("alpha reports standby", || in_standby(&w, "alpha"));
    let file = w.cluster().hasvrd_state_dir("alpha").join("standby.alpha");
    assert!(file.exists(), "standby not persisted in {}", file.display());

    // alpha refuses to take it over, asked on alpha.
    let refused = w
        .cluster()
        .service_op("alpha", ServiceOp::TakeOver, SERVICE)
        .unwrap_err();
    assert!(refused.contains("standby"), "{refused}");

    // A restarted hasvrd on alpha comes back in standby and takes nothing.
    w.cluster().crash_hasvrd("alpha");
    w.cluster().start_hasvrd("alpha");
    w.wait_for("alpha reports standby after its restart", || {
        in_standby(&w, "alpha")
    });
    w.wait_state("alpha", "STANDBY");
    let refused = w
        .cluster()
        .service_op("alpha", ServiceOp::TakeOver, SERVICE)
        .unwrap_err();
    assert!(refused.contains("standby"), "{refused}");
    assert_eq!(w.holders(), ["beta"]);

    // Standby off: alpha can host again, and switchback brings the
    // service back.
    let (done, _outage) = w.outage_during("beta", "alpha", || standby(&w, "alpha", false));
    let done = done.unwrap_or_else(|e| panic!("standby off: {e}"));
    assert!(done.contains("left standby"), "{done}");
    assert_eq!(w.holders(), ["alpha"]);
    assert!(!in_standby(&w, "alpha"));
    let log = w.cluster().log("alpha");
    assert!(log.contains("node standby on by"), "{log}");
    assert!(log.contains("node standby off by"), "{log}");
}
