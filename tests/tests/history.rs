//! The event history and alerts on namespaced nodes (real hamond and
//! hasvrd, the web service of [`WebService`], no fencing device):
//!
//! * `hactl alert test` runs the `[alerts]` hook, which gets the event in
//!   its environment and as JSON on stdin;
//! * an operator's fail-over appears in `hactl history --json` on both
//!   nodes as a failover with its cause and start time, and stays there
//!   after a restart of hamond;
//! * the holder powered off without fencing leaves the service STALLED:
//!   an emergency event that reaches the alert hook; the operator's fence
//!   confirmation then ends in a take-over whose record has the wait for
//!   that confirmation (its fencing phase) and the start.

use haschema::ctl::{Request, Response, ServiceOp};
use haschema::event::{Event, EventKind, Severity};
use hatests::bins;
use hatests::cluster::ClusterSpec;
use hatests::command::{Finished, run_for};
use hatests::require_root;
use hatests::scratch::{ScratchDir, write_script};
use hatests::web::{SERVICE, WAIT, WebService, WebSpec};
use std::process::Command;
use std::time::{Duration, Instant};

/// `hactl ARGS` against `node`'s hamond.
fn hactl(w: &WebService, node: &str, args: &[&str]) -> Finished {
    let mut cmd = Command::new(bins::hactl());
    cmd.arg("--socket").arg(w.cluster().socket(node)).args(args);
    run_for(&mut cmd, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"))
}

/// `node`'s history (`hactl history --json` with `filter` options).
fn history(w: &WebService, node: &str, filter: &[&str]) -> Vec<Event> {
    let mut args = vec!["history", "--json"];
    args.extend_from_slice(filter);
    let f = hactl(w, node, &args);
    assert_eq!(f.code(), Some(0), "{f:?}");
    serde_json::from_str(&f.stdout).unwrap_or_else(|e| panic!("{e}: {}", f.stdout))
}

/// Polls `node`'s history (every 200 ms, at most [`WAIT`]) until an event
/// passes `want`; returns it.
#[track_caller]
fn wait_event(w: &WebService, node: &str, filter: &[&str], want: impl Fn(&Event) -> bool) -> Event {
    let end = Instant::now() + WAIT;
    let mut last = Vec::new();
    while Instant::now() < end {
        last = history(w, node, filter);
        if let Some(e) = last.iter().find(|e| want(e)) {
            return e.clone();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "no such event in {node}'s history within {WAIT:?}; it has {last:#?}\n{}",
        w.cluster().log_tails(40)
    );
}

/// The alerts the hook received: (environment line, event) pairs.
fn alerts_received(file: &std::path::Path) -> Vec<(String, Event)> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    lines
        .chunks_exact(2)
        .filter_map(|pair| Some((pair[0].to_owned(), serde_json::from_str(pair[1]).ok()?)))
        .collect()
}

#[test]
fn failovers_are_in_every_history_and_emergencies_reach_the_alert_hook() {
    if !require_root() {
        return;
    }
    let scratch = ScratchDir::new("history_hook");
    let received = scratch.join("alerts");
    let hook = write_script(
        scratch.path(),
        "hook",
        &format!(
            "{{ echo \"$HA_EVENT_KIND $HA_EVENT_SEVERITY $HA_EVENT_NODE $HA_EVENT_SERVICE\"; \
             cat; echo; }} >> {}",
            received.display()
        ),
    );
    let mut spec = ClusterSpec::with_nodes(&["alpha", "beta"]);
    spec.extra_config =
        format!("[alerts]\nhooks = [[\"{hook}\", \"--from-test\"]]\ntimeout = \"10s\"\n");
    let w = WebService::start_with(
        "history",
        WebSpec {
            cluster: Some(spec),
            ..WebSpec::default()
        },
    );
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");

    // The alert test runs the hook now and reports it.
    let test = hactl(&w, "alpha", &["alert", "test"]);
    assert_eq!(test.code(), Some(0), "{test:?}");
    assert!(test.stdout.contains(&hook), "{test:?}");
    let got = alerts_received(&received);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "test info alpha ");
    assert_eq!(got[0].1.kind, EventKind::Test);

    // An operator's fail-over, asked on beta, moves the service to beta.
    let done = w.cluster().service_op("beta", ServiceOp::FailOver, SERVICE);
    assert!(done.is_ok(), "{done:?}");
    w.wait_served_by("beta");
    let is_failover = |e: &Event| {
        e.kind == EventKind::Failover && e.node == "beta" && e.service.as_deref() == Some(SERVICE)
    };
    let on_beta = wait_event(&w, "beta", &["--kind", "failover"], is_failover);
    assert!(on_beta.cause.contains("fail-over by"), "{on_beta:?}");
    assert!(
        on_beta.phases.iter().any(|p| p.name == "start"),
        "{on_beta:?}"
    );
    // Shared: alpha's history has beta's record of it, the same event.
    let on_alpha = wait_event(&w, "alpha", &["--service", SERVICE], is_failover);
    assert_eq!(on_alpha, on_beta);
    // The operator's command is recorded where it was given.
    wait_event(&w, "beta", &["--kind", "operator"], |e| {
        e.what == format!("fail-over {SERVICE}")
    });

    // It survives a restart of hamond on alpha.
    w.cluster().restart("alpha");
    let after = history(&w, "alpha", &["--node", "beta", "--kind", "failover"]);
    assert!(after.contains(&on_beta), "{after:#?}");

    // The holder (beta) is powered off; without a fencing device alpha
    // cannot take the service: STALLED, an emergency for the hook.
    w.switch().power_off(w.cluster().ns("beta"));
    w.wait_state("alpha", "STALLED");
    let stall = wait_event(&w, "alpha", &["--kind", "stall"], |e| {
        e.service.as_deref() == Some(SERVICE)
    });
    assert_eq!(stall.severity, Severity::Emergency);
    let end = Instant::now() + WAIT;
    let alerted = loop {
        let got = alerts_received(&received);
        if let Some((env, event)) = got.into_iter().find(|(_, e)| e.kind == EventKind::Stall) {
            break (env, event);
        }
        assert!(
            Instant::now() < end,
            "the hook got no stall alert within {WAIT:?}: {:?}\n{}",
            alerts_received(&received),
            w.cluster().log_tails(40)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(alerted.0, format!("stall emergency alpha {SERVICE}"));
    assert_eq!(alerted.1, stall);
    // Only emergencies are alerted: the failover (a warning) was not.
    assert!(
        alerts_received(&received)
            .iter()
            .all(|(_, e)| matches!(e.kind, EventKind::Test | EventKind::Stall)),
        "{:?}",
        alerts_received(&received)
    );

    // The operator confirms beta off: alpha takes the service over, and
    // the record says why and how long the wait for the confirmation and
    // the start took.
    let confirm = Request::FenceConfirm {
        node: "beta".into(),
    };
    match w.cluster().ask("alpha", &confirm) {
        Ok(Response::Done { .. }) => {}
        other => panic!("fence confirm: {other:?}"),
    }
    w.wait_served_by("alpha");
    wait_event(&w, "alpha", &["--kind", "operator"], |e| {
        e.what == "beta confirmed powered off by the operator"
    });
    let took = wait_event(&w, "alpha", &["--kind", "failover"], |e| e.node == "alpha");
    assert!(
        took.cause.contains("confirmed off by the operator"),
        "{took:?}"
    );
    let phases: Vec<&str> = took.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(phases, ["fencing", "start"], "{took:?}");
}

#[test]
fn a_fenced_take_over_records_detection_fencing_and_start() {
    if !require_root() {
        return;
    }
    let w = WebService::start("history_fence", true);
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");

    w.switch().power_off(w.cluster().ns("alpha"));
    w.wait_served_by("beta");
    let lost = wait_event(&w, "beta", &["--kind", "node"], |e| e.what == "alpha lost");
    let phases: Vec<&str> = lost.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(phases, ["detection"], "{lost:?}");
    let fenced = wait_event(&w, "beta", &["--kind", "fence"], |e| {
        e.what == "alpha fenced (powered off by switch)"
    });
    assert_eq!(fenced.severity, Severity::Warning);
    assert!(fenced.cause.starts_with("alpha lost"), "{fenced:?}");
    assert_eq!(fenced.phases.len(), 1, "{fenced:?}");
    let took = wait_event(&w, "beta", &["--kind", "failover"], |e| e.node == "beta");
    assert_eq!(took.cause, "alpha was lost and fenced", "{took:?}");
    let phases: Vec<&str> = took.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(phases, ["fencing", "start"], "{took:?}");
    // The text form: one line per event, with its time.
    let text = hactl(&w, "beta", &["history", "--kind", "failover"]);
    assert_eq!(text.code(), Some(0), "{text:?}");
    assert!(
        text.stdout
            .contains("beta failover www: took over www (alpha was lost and fenced) in "),
        "{text:?}"
    );
}
