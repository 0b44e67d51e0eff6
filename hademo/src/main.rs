//! hademo: runs a live two-node cluster on this machine (each node a network
//! namespace, joined by a virtual null-modem cable and two veth LANs), then
//! walks through the failures the heartbeat core handles, showing
//! `hactl status` after each. `--keep` leaves the cluster running until
//! Ctrl-C so that you can explore it with hactl.

use clap::Parser;
use haschema::ctl::State;
use hatests::{ClusterSpec, LAN1, SERIAL, TestCluster};
use std::process::Command;
use std::time::Duration;

/// Live two-node cluster demo.
#[derive(Parser)]
struct Args {
    /// After the walk-through, keep the cluster running until Ctrl-C.
    #[arg(long)]
    keep: bool,
}

const PATIENCE: Duration = Duration::from_secs(30);

fn main() {
    let args = Args::parse();
    if !hatests::require_root() {
        eprintln!("hademo needs root (network namespaces): run it with sudo");
        std::process::exit(1);
    }
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

    if args.keep {
        cluster.start_node("beta");
        step("The cluster keeps running; press Ctrl-C to tear it down. Try:");
        for node in ["alpha", "beta"] {
            println!(
                "  {} --socket {} status",
                hatests::bins::hactl().display(),
                cluster.socket(node).display()
            );
        }
        println!("  logs: {}", cluster.dir().display());
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    step("Done: tearing the cluster down");
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

fn step(text: &str) {
    println!("\n==> {text}\n");
}

fn show(cluster: &TestCluster, node: &str) {
    println!("$ hactl status   (on {node})");
    let out = Command::new(hatests::bins::hactl())
        .arg("--socket")
        .arg(cluster.socket(node))
        .arg("status")
        .output();
    match out {
        Ok(out) => {
            print!("{}", String::from_utf8_lossy(&out.stdout));
            println!("(exit code {})", out.status.code().unwrap_or(-1));
        }
        Err(e) => println!("cannot run hactl: {e}"),
    }
}

fn print_log_lines(cluster: &TestCluster, node: &str, needle: &str) {
    for line in cluster.log(node).lines().filter(|l| l.contains(needle)) {
        println!("{node}: {line}");
    }
}
