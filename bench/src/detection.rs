//! Detection time: SIGKILL the peer's hamond, then the time until the
//! survivor logs NodeDown (taken from the log line's own timestamp).

use crate::stats;
use haschema::ctl::State;
use hatests::{ClusterSpec, TestCluster};
use std::time::{Duration, SystemTime};

/// Longest wait for one detection.
const PATIENCE: Duration = Duration::from_secs(30);

/// Timing settings measured: label, UDP and serial interval, maxmiss, baud.
const SETTINGS: [(&str, u64, u32, u32); 2] = [
    (
        "deadtime 1 s: every path 100ms x 10, serial 19200 baud",
        100,
        10,
        19200,
    ),
    (
        "deadtime 250 ms: every path 50ms x 5, serial 38400 baud",
        50,
        5,
        38400,
    ),
];

pub fn report(runs: usize) {
    println!("## Detection time (SIGKILL of beta's hamond -> NodeDown logged by alpha)\n");
    for (label, interval_ms, maxmiss, baud) in SETTINGS {
        let spec = ClusterSpec {
            udp_interval_ms: interval_ms,
            udp_maxmiss: maxmiss,
            serial_interval_ms: interval_ms,
            serial_maxmiss: maxmiss,
            serial_baud: baud,
            ..ClusterSpec::default()
        };
        let cluster = TestCluster::start("bench-detect", spec);
        let samples: Vec<Duration> = (0..runs).map(|_| detect_once(&cluster)).collect();
        println!("- {label}: {}", stats::millis(&samples));
    }
    println!();
}

fn detect_once(cluster: &TestCluster) -> Duration {
    cluster.wait_until("alpha and beta see each other", PATIENCE, |s| {
        s.peer_state("alpha", "beta") == Some(State::Up)
            && s.peer_state("beta", "alpha") == Some(State::Up)
    });
    let before = cluster.log_count("alpha", "NodeDown");
    let killed = SystemTime::now();
    cluster.crash("beta");
    let started = std::time::Instant::now();
    while cluster.log_count("alpha", "NodeDown") == before {
        assert!(started.elapsed() < PATIENCE, "alpha never logged NodeDown");
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = cluster.log("alpha");
    let line = log
        .lines()
        .rfind(|l| l.contains("NodeDown"))
        .expect("counted above");
    let stamp = line.split_whitespace().next().unwrap_or_default();
    let logged = humantime::parse_rfc3339_weak(stamp)
        .unwrap_or_else(|e| panic!("log timestamp {stamp:?}: {e}"));
    cluster.start_node("beta");
    logged.duration_since(killed).unwrap_or_default()
}
