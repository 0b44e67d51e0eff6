//! habench: measures the heartbeat core on real namespaced nodes and prints
//! figures (min / median / max over repeated runs). Speed is measured here,
//! never asserted in tests. Run it with `bench/run` (release build, root).

mod detection;
mod idle;
mod stats;

use clap::Parser;
use std::time::Duration;

/// Heartbeat benchmarks on two namespaced nodes.
#[derive(Parser)]
struct Args {
    /// Repetitions of each detection measurement.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Length of each idle measurement.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    idle: Duration,
}

fn main() {
    let args = Args::parse();
    if !hatests::require_root() {
        std::process::exit(1);
    }
    println!(
        "# hacluster heartbeat benchmarks (2 nodes in network namespaces, 1 serial + 2 UDP paths)\n"
    );
    detection::report(args.runs);
    idle::report(args.idle);
}
