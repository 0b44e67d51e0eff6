//! Part 1, the heartbeat core: a two-node cluster (serial cable and two
//! UDP LANs) through link cuts, a stall, a crash, a restart and a clean
//! leave, with `hactl status` after each.

use crate::step;
use haschema::ctl::State;
use hatests::{ClusterSpec, LAN1, SERIAL, TestCluster};
use std::process::Command;
use std::time::Duration;

/// Longest wait for the cluster to reach each stage.
const PATIENCE: Duration = Duration::from_secs(30);

/// Runs the walk-through; the cluster is torn down when it returns.
pub fn run() {
    step(
        "Starting two nodes, alpha and beta: a 19200-baud serial cable (rs232) and two UDP LANs (lan1, lan2)",
    );
    let cluster = TestCluster::start("demo", ClusterSpec::default());
    cluster.wait_until("every link up on both nodes", PATIENCE, |s| {
        all_links(s, State::Up)
    });
    show(&cluster, "alpha");

    step(
        "Cutting the serial cable: only that link goes down, beta stays up (one medium is enough)",
    );
    cluster.cut_serial();
    cluster.wait_until("serial link down on both", PATIENCE, |s| {
        s.link_state("alpha", "beta", SERIAL) == Some(State::Down)
            && s.link_state("beta", "alpha", SERIAL) == Some(State::Down)
    });
    show(&cluster, "alpha");

    step("Cutting lan1 in one direction only (alpha -> beta): both sides see that link down");
    cluster.cut_udp_one_way(LAN1, "alpha", "beta");
    cluster.wait_until("lan1 down on both", PATIENCE, |s| {
        s.link_state("alpha", "beta", LAN1) == Some(State::Down)
            && s.link_state("beta", "alpha", LAN1) == Some(State::Down)
    });
    show(&cluster, "alpha");

    step("Restoring every path");
    cluster.restore_all();
    cluster.wait_until("every link up again", PATIENCE, |s| all_links(s, State::Up));
    show(&cluster, "alpha");

    step(
        "Freezing beta's hamond for 0.5 s (SIGSTOP): it notices its own stall, nobody declares anyone dead",
    );
    cluster.stop("beta");
    std::thread::sleep(Duration::from_millis(500));
    cluster.cont("beta");
    cluster.wait_for_log("beta", "stall", PATIENCE);
    print_log_lines(&cluster, "beta", "stall");

    step("Killing beta's hamond (SIGKILL): alpha declares beta down after the deadtime");
    cluster.crash("beta");
    cluster.wait_until("alpha sees beta down", PATIENCE, |s| {
        s.peer_state("alpha", "beta") == Some(State::Down)
    });
    show(&cluster, "alpha");

    step("Starting beta again: a new incarnation, accepted after a nonce round trip");
    cluster.start_node("beta");
    cluster.wait_until("every link up again", PATIENCE, |s| all_links(s, State::Up));
    print_log_lines(&cluster, "alpha", "restarted");

    step("Stopping beta cleanly (SIGTERM): alpha logs a clean leave, not a crash");
    cluster.shutdown("beta");
    cluster.wait_until("alpha sees beta gone", PATIENCE, |s| {
        s.peer_state("alpha", "beta") == Some(State::Down)
    });
    print_log_lines(&cluster, "alpha", "left the cluster");
}

fn all_links(s: &hatests::Snapshot, state: State) -> bool {
    ["alpha", "beta"].iter().all(|node| {
        s.get(node).is_some_and(|r| {
            r.peers
                .iter()
                .all(|p| p.state == state && p.links.iter().all(|l| l.state == state))
        })
    })
}

/// `hactl status` on `node`, as an administrator types it.
fn show(cluster: &TestCluster, node: &str) {
    let mut cmd = Command::new(hatests::bins::hactl());
    cmd.arg("--socket").arg(cluster.socket(node)).arg("status");
    crate::run_hactl(&format!("hactl status   (on {node})"), &mut cmd);
}

fn print_log_lines(cluster: &TestCluster, node: &str, needle: &str) {
    for line in cluster.log(node).lines().filter(|l| l.contains(needle)) {
        println!("{node}: {line}");
    }
}
