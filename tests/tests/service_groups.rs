//! Service groups (the manual's GROUPID, issue 7) on namespaced nodes: the
//! web service of [`WebService`] (`www`, the group's leader: first by
//! name) and a member, `www2`, a `sleep` started by a script, both in
//! group 1 on alpha then beta. The member's script logs each start and
//! stop with its node and whether the leader's application listens on
//! that node then (`leader-up`), so the order shows:
//!
//! * both run on alpha, the member started after the leader; beta runs
//!   neither;
//! * the member's application killed beyond its `restart_times` (0): the
//!   whole group moves to beta, and a client of the leader's floating IP
//!   reaches beta;
//! * a fail-over of the leader moves both, the member stopped first (the
//!   leader still up then), and the member starts on beta after the leader;
//! * a take-over of the member on alpha acts on its group: both come back,
//!   in the same order;
//! * a bring-out (and bring-in) of the member acts on its group; a
//!   bring-out stops nothing (the service is left as it is), so neither
//!   restarts.
//!
//! Every wait is bounded ([`WAIT`]).

use haschema::ctl::ServiceOp;
use hatests::require_root;
use hatests::scratch::{ScratchDir, pidfile_script, script_service, write_script};
use hatests::web::{NODES, PORT, SERVICE, WAIT, WebService, WebSpec};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The member's name: after [`SERVICE`], so `www` leads.
const MEMBER: &str = "www2";

/// The member's script: `start|stop|status`, a `sleep` with a pid file per
/// node, its starts and stops logged in `DIR/order.log`.
fn member_script(dir: &Path) -> String {
    let prelude = format!(
        r#"log="{dir}/order.log"
leader() {{ if ss -Hltn "sport = :{PORT}" | grep -q .; then echo leader-up; else echo leader-down; fi; }}"#,
        dir = dir.display()
    );
    let pidfile = format!("{}/{MEMBER}-$HA_NODE.pid", dir.display());
    let body = pidfile_script(
        &prelude,
        &pidfile,
        "sleep 100000",
        r#"echo "start $HA_NODE $(leader)" >> "$log""#,
        r#"echo "stop $HA_NODE $(leader)" >> "$log""#,
    );
    write_script(dir, MEMBER, &body)
}

/// The member's service file: group 1, the web service's nodes, no local
/// restart.
fn member_file(script: &str) -> String {
    script_service(MEMBER, script, &NODES, "restart_times = 0\ngroup = 1")
}

/// The web service in group 1 with the member beside it, both running on
/// alpha; the member's script directory (kept for the test's length).
#[track_caller]
fn start(test: &str) -> (WebService, ScratchDir) {
    let w = WebService::start_with(
        test,
        WebSpec {
            fencing: true,
            service_extra: "group = 1".to_owned(),
            ..WebSpec::default()
        },
    );
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    let dir = ScratchDir::new(&format!("{test}-member"));
    let file = w.cluster().services_dir().join(format!("{MEMBER}.toml"));
    std::fs::write(&file, member_file(&member_script(dir.path())))
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    // hasvrd reads the services at start: a crash and a start (which
    // adopts the running web service) bring the member in.
    for node in NODES {
        w.cluster().crash_hasvrd(node);
        w.cluster().start_hasvrd(node);
    }
    wait_member(&w, "alpha", "ACTIVE");
    wait_member(&w, "beta", "STANDBY");
    w.wait_served_by("alpha");
    (w, dir)
}

/// Waits until `node` reports the member in `state`.
#[track_caller]
fn wait_member(w: &WebService, node: &str, state: &str) {
    w.wait_for(&format!("{node} reports {MEMBER} {state}"), || {
        w.cluster().service_state(node, MEMBER).as_deref() == Some(state)
    });
}

/// The member's log: `start|stop NODE leader-up|leader-down` lines.
fn order(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("order.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The member's pid file on `node`.
fn pidfile(dir: &Path, node: &str) -> PathBuf {
    dir.join(format!("{MEMBER}-{node}.pid"))
}

/// Waits until the member's log has `line` (after the first `from` lines).
#[track_caller]
fn wait_logged(w: &WebService, dir: &Path, from: usize, line: &str) {
    let end = Instant::now() + WAIT;
    while !order(dir).iter().skip(from).any(|l| l == line) {
        assert!(
            Instant::now() < end,
            "no `{line}` in the member's log within {WAIT:?}: {:?}\n{}",
            order(dir),
            w.cluster().log_tails(60)
        );
        w.assert_never_twice();
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_group_starts_in_order_on_one_node_and_moves_together() {
    if !require_root() {
        return;
    }
    let (w, dir) = start("svgrp_move");
    let dir = dir.path();
    assert_eq!(order(dir), ["start alpha leader-up"]);
    assert!(!pidfile(dir, "beta").exists(), "the member runs on beta");

    // The member fails beyond its restart_times: the group moves.
    let pid = std::fs::read_to_string(pidfile(dir, "alpha")).expect("the member's pid");
    let pid: i32 = pid.trim().parse().expect("a pid");
    let offset = w.cluster().log_len("alpha");
    let ((), outage) = w.outage_during("alpha", "beta", || {
        kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap_or_else(|e| panic!("kill {pid}: {e}"))
    });
    eprintln!("the group moved after the member failed: {outage:?}");
    wait_logged(&w, dir, 1, "start beta leader-up");
    // alpha cannot host the member after its failure.
    wait_member(&w, "beta", "ACTIVEACT");
    assert_eq!(w.holders(), ["beta"]);
    let log = w.cluster().log_since("alpha", offset);
    assert!(
        log.contains(&format!(
            "service {MEMBER} moved away from here: its group follows ({SERVICE})"
        )),
        "{log}"
    );
    assert!(
        !pidfile(dir, "alpha").exists(),
        "the member still runs on alpha"
    );
}

#[test]
fn commands_on_a_member_act_on_its_group_and_the_member_stops_first() {
    if !require_root() {
        return;
    }
    let (w, dir) = start("svgrp_cmds");
    let dir = dir.path();

    // A fail-over of the leader: the member stops first, the leader after.
    let offset = w.cluster().log_len("alpha");
    let (done, _) = w.outage_during("alpha", "beta", || {
        w.cluster()
            .service_op("alpha", ServiceOp::FailOver, SERVICE)
    });
    assert!(done.is_ok(), "{done:?}");
    wait_logged(&w, dir, 1, "start beta leader-up");
    assert_eq!(order(dir)[1], "stop alpha leader-up", "{:?}", order(dir));
    wait_member(&w, "beta", "ACTIVESTB");
    wait_member(&w, "alpha", "STANDBY");
    let log = w.cluster().log_since("alpha", offset);
    assert!(
        log.contains(&format!(
            "service {SERVICE}: its stop of application waits until the later services"
        )),
        "{log}"
    );

    // A take-over of the member acts on its group: both come back.
    let (done, _) = w.outage_during("beta", "alpha", || {
        w.cluster().service_op("alpha", ServiceOp::TakeOver, MEMBER)
    });
    let done = done.unwrap_or_else(|e| panic!("take-over of {MEMBER}: {e}"));
    assert!(
        done.contains(&format!("take-over acts on {SERVICE}")),
        "{done}"
    );
    wait_logged(&w, dir, 3, "start alpha leader-up");
    assert_eq!(order(dir)[3], "stop beta leader-up", "{:?}", order(dir));
    wait_member(&w, "alpha", "ACTIVESTB");
    assert_eq!(w.holders(), ["alpha"]);
    assert!(
        !pidfile(dir, "beta").exists(),
        "the member still runs on beta"
    );

    // A bring-out of the member acts on its group: both are left as they
    // are (nothing stops), and a bring-in takes both back.
    let done = w.cluster().service_op("alpha", ServiceOp::BringOut, MEMBER);
    let done = done.unwrap_or_else(|e| panic!("bring-out of {MEMBER}: {e}"));
    assert!(
        done.contains(&format!("bring-out acts on {SERVICE}, {MEMBER}")),
        "{done}"
    );
    wait_member(&w, "alpha", "OUTACT");
    w.wait_state("alpha", "OUTACT");
    w.cluster()
        .service_op("alpha", ServiceOp::BringIn, MEMBER)
        .unwrap_or_else(|e| panic!("bring-in of {MEMBER}: {e}"));
    wait_member(&w, "alpha", "ACTIVESTB");
    w.wait_state("alpha", "ACTIVESTB");
    assert_eq!(
        order(dir).len(),
        5,
        "the member restarted: {:?}",
        order(dir)
    );
    w.wait_served_by("alpha");
}
