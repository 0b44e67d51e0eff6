//! Detection time: SIGKILL the peer's daemon, then the time until the
//! survivor reports it dead. Ours: beta's hamond killed, alpha's NodeDown
//! line (taken from the log line's own timestamp). The peer, Debian's
//! heartbeat, at the same timing on the same kind of nodes: every process
//! of beta's heartbeat killed at once, alpha's "node beta: is dead" line
//! (its log stamps whole seconds, so the log is polled every 10 ms).

use crate::heartbeat::{self, HeartbeatPair, Timing};
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

pub fn report(runs: usize, peer: Option<&str>) {
    println!("## Detection time (SIGKILL of beta's daemon -> alpha reports beta dead)\n");
    println!(
        "hamond: kill -> alpha's NodeDown (log timestamp). heartbeat: kill of all beta's \
         heartbeat processes -> alpha's \"node beta: is dead\" (log polled every {} ms), \
         at least {} s after beta's start (heartbeat announces its deadtime + 2 s for its \
         first 5 s).\n",
        heartbeat::POLL.as_millis(),
        heartbeat::START_GRACE.as_secs()
    );
    for (label, interval_ms, maxmiss, baud) in SETTINGS {
        println!("- {label}");
        let ours = hamond_samples(runs, interval_ms, maxmiss, baud);
        println!("  - hamond: {}", stats::millis(&ours));
        let Some(version) = peer else {
            continue;
        };
        // Heartbeat with the same three paths, then with its two ucast
        // paths only: its serial heartbeats are several times longer than
        // ours and can fill the line at these intervals.
        for serial_baud in [Some(baud), None] {
            let timing = Timing {
                keepalive_ms: interval_ms,
                deadtime_ms: interval_ms * u64::from(maxmiss),
                serial_baud,
            };
            let label = format!("heartbeat {version} ({})", timing.describe());
            match std::panic::catch_unwind(|| heartbeat_samples(runs, timing)) {
                Ok(theirs) => println!(
                    "  - {label}: {}; ratio hamond / heartbeat (medians): {}",
                    stats::millis(&theirs),
                    stats::ratio(stats::median_secs(&ours), stats::median_secs(&theirs))
                ),
                Err(_) => println!("  - {label}: failed (see the panic above)"),
            }
        }
    }
    println!();
}

fn hamond_samples(runs: usize, interval_ms: u64, maxmiss: u32, baud: u32) -> Vec<Duration> {
    let spec = ClusterSpec {
        udp_interval_ms: interval_ms,
        udp_maxmiss: maxmiss,
        serial_interval_ms: interval_ms,
        serial_maxmiss: maxmiss,
        serial_baud: baud,
        ..ClusterSpec::default()
    };
    let cluster = TestCluster::start("bench-detect", spec);
    (0..runs).map(|_| detect_once(&cluster)).collect()
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

fn heartbeat_samples(runs: usize, timing: Timing) -> Vec<Duration> {
    let pair = HeartbeatPair::start("bench-hb-detect", timing);
    (0..runs)
        .map(|run| {
            if run > 0 {
                pair.restart("beta");
            }
            let offset = pair.log_len("alpha");
            let killed = pair.crash("beta");
            let seen = pair
                .wait_log("alpha", offset, &heartbeat::dead_line("beta"), PATIENCE)
                .unwrap_or_else(|| {
                    panic!(
                        "heartbeat: alpha never declared beta dead\n{}",
                        pair.all_tails(30)
                    )
                });
            seen - killed
        })
        .collect()
}
