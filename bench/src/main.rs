//! habench: measures the heartbeat core on real namespaced nodes and prints
//! figures (min / median / max over repeated runs), next to Debian's
//! heartbeat (Linux-HA 3.0.6) at the same timing on the same kind of nodes
//! when it is installed, with the ratio ours / theirs; and the failover of
//! a protected service (node crash, application failure), split into
//! phases. Speed is measured here, never asserted in tests. Run it with
//! `bench/run` (release build, root; it installs heartbeat if missing).

mod detection;
mod failover;
mod heartbeat;
mod idle;
mod stats;

use clap::{Parser, ValueEnum};
use std::time::Duration;

/// Heartbeat and service failover benchmarks on two namespaced nodes.
#[derive(Parser)]
struct Args {
    /// Repetitions of each detection measurement.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Length of each idle measurement.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    idle: Duration,
    /// Repetitions of each service failover measurement (each node crash
    /// run starts a cluster of its own).
    #[arg(long, env = "BENCH_RUNS", default_value_t = 3)]
    failover_runs: usize,
    /// The sections to run (comma-separated); all of them by default.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Section>,
}

/// A part of the benchmarks.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Section {
    /// Detection time of a dead peer.
    Detection,
    /// Idle cost, bandwidth and serial line occupancy.
    Idle,
    /// Service failover: node crash and application failure.
    Failover,
}

fn main() {
    let args = Args::parse();
    if !hatests::require_root() {
        std::process::exit(1);
    }
    println!(
        "# hacluster heartbeat benchmarks (2 nodes in network namespaces, 1 serial + 2 UDP paths)\n"
    );
    let peer = heartbeat::installed_version();
    match &peer {
        Some(version) => println!(
            "Peer: Debian's heartbeat {version}, two daemons in the same kind of namespaced nodes \
             (own network, UTS and mount namespaces), 2 ucast paths + serial through the same \
             paced cable.\n"
        ),
        None => println!(
            "Peer: Debian's heartbeat is not installed ({} missing): no peer figures. \
             `bench/run` installs it.\n",
            heartbeat::DAEMON
        ),
    }
    let wanted = |s: Section| args.only.is_empty() || args.only.contains(&s);
    if wanted(Section::Detection) {
        detection::report(args.runs, peer.as_deref());
    }
    if wanted(Section::Idle) {
        idle::report(args.idle, peer.as_deref());
    }
    if wanted(Section::Failover) {
        failover::report(args.failover_runs);
    }
}
