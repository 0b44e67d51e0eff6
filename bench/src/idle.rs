//! Idle cost of hamond (CPU and memory) and what its heartbeats cost each
//! path (bytes per second), at two intervals, next to Debian's heartbeat at
//! the same keepalive on the same kind of nodes; and the share of a serial
//! line the heartbeats occupy at 9600 and 19200 baud.

use crate::heartbeat::{HeartbeatPair, Timing};
use crate::stats;
use haschema::ctl::State;
use hatests::{ClusterSpec, Direction, SERIAL, TestCluster};
use nix::time::{clock_getcpuclockid, clock_gettime};
use nix::unistd::{Pid, SysconfVar, sysconf};
use std::time::{Duration, Instant};

/// The default number of missed heartbeats before a path is dead
/// (`ClusterSpec::default()`); heartbeat's deadtime is set to match.
const MAXMISS: u64 = 10;
/// Baud rate of the serial line in the idle measurements.
const IDLE_BAUD: u32 = 19200;

pub fn report(window: Duration, peer: Option<&str>) {
    println!(
        "## Idle cost on alpha over {} s (CPU of all the daemon's processes; RSS summed over them, PSS = their proportional share)\n",
        window.as_secs()
    );
    for interval_ms in [1000, 100] {
        println!(
            "- interval {interval_ms} ms, deadtime {} ms ({MAXMISS} missed):",
            interval_ms * MAXMISS
        );
        let ours = idle(interval_ms, window);
        if let Some(version) = peer {
            let timing = Timing {
                keepalive_ms: interval_ms,
                deadtime_ms: interval_ms * MAXMISS,
                serial_baud: Some(IDLE_BAUD),
            };
            match std::panic::catch_unwind(|| heartbeat_idle(timing, window)) {
                Ok((theirs, serial)) => {
                    println!(
                        "  - heartbeat {version} ({}): {}; serial line {serial:.0} B/s of {:.0} B/s",
                        timing.describe(),
                        theirs.describe(),
                        f64::from(IDLE_BAUD) / 10.0
                    );
                    println!(
                        "  - ratio hamond / heartbeat: CPU {}, RSS {}, PSS {}",
                        stats::ratio(ours.cpu_pct, theirs.cpu_pct),
                        stats::ratio(ours.rss_kib as f64, theirs.rss_kib as f64),
                        stats::ratio(ours.pss_kib as f64, theirs.pss_kib as f64)
                    );
                }
                Err(_) => println!("  - heartbeat {version}: failed (see the panic above)"),
            }
        }
    }
    println!("\n## Serial line occupancy by heartbeats (100 ms interval, one direction)\n");
    for baud in [9600, 19200] {
        occupancy(baud, window);
    }
    println!();
}

fn spec(interval_ms: u64, baud: u32) -> ClusterSpec {
    ClusterSpec {
        udp_interval_ms: interval_ms,
        serial_interval_ms: interval_ms,
        serial_baud: baud,
        ..ClusterSpec::default()
    }
}

fn settled(cluster: &TestCluster) {
    cluster.wait_until("every link up", Duration::from_secs(60), |s| {
        s.link_state("alpha", "beta", SERIAL) == Some(State::Up)
            && s.peer_state("beta", "alpha") == Some(State::Up)
            && s.get("alpha").is_some_and(|r| {
                r.peers
                    .iter()
                    .all(|p| p.links.iter().all(|l| l.state == State::Up))
            })
    });
}

fn idle(interval_ms: u64, window: Duration) -> Cost {
    let cluster = TestCluster::start("bench-idle", spec(interval_ms, IDLE_BAUD));
    settled(&cluster);
    let pid = cluster.pid("alpha").expect("alpha runs") as i32;
    let before = cluster.status("alpha");
    let (cost, secs) = cost(&[pid], window);
    let after = cluster.status("alpha");
    println!("  - hamond: {}", cost.describe());
    for (p0, p1) in before.paths.iter().zip(&after.paths) {
        println!(
            "    - path {} ({}): {:.0} B/s sent, {:.1} frames/s",
            p1.name,
            p1.kind,
            (p1.bytes_sent - p0.bytes_sent) as f64 / secs,
            (p1.frames_sent - p0.frames_sent) as f64 / secs
        );
    }
    cost
}

/// Heartbeat's idle cost on alpha, and the bytes per second alpha's
/// heartbeat puts on the serial line.
fn heartbeat_idle(timing: Timing, window: Duration) -> (Cost, f64) {
    let pair = HeartbeatPair::start("bench-hb-idle", timing);
    let cable = pair.cable().expect("the idle timing has a serial line");
    let sent = || cable.stats(Direction::AToB).delivered;
    let (before, start) = (sent(), Instant::now());
    let (cost, _) = cost(&pair.pids("alpha"), window);
    let serial = (sent() - before) as f64 / start.elapsed().as_secs_f64();
    (cost, serial)
}

fn occupancy(baud: u32, window: Duration) {
    let cluster = TestCluster::start("bench-line", spec(100, baud));
    settled(&cluster);
    let dir = cluster.serial_dir("alpha");
    let before = cluster.cable().stats(dir).delivered;
    let start = Instant::now();
    std::thread::sleep(window);
    let bytes = cluster.cable().stats(dir).delivered - before;
    let per_sec = bytes as f64 / start.elapsed().as_secs_f64();
    let capacity = f64::from(baud) / 10.0;
    println!(
        "- {baud} baud: {per_sec:.0} B/s of {capacity:.0} B/s = {:.1} % (heartbeat on the line: {} bytes, {:.1} ms)",
        per_sec / capacity * 100.0,
        litecloud::serial::line_len(litecloud::wire::HEARTBEAT_LEN),
        litecloud::serial::airtime(
            litecloud::serial::line_len(litecloud::wire::HEARTBEAT_LEN),
            baud
        )
        .as_secs_f64()
            * 1000.0
    );
}

/// What a daemon's processes cost while idle.
#[derive(Clone, Copy, Debug)]
struct Cost {
    /// CPU time over the window, in % of one core.
    cpu_pct: f64,
    /// Resident memory, summed over the processes (shared pages counted
    /// once per process).
    rss_kib: u64,
    /// Proportional set size, summed (shared pages split between sharers).
    pss_kib: u64,
    processes: usize,
}

impl Cost {
    fn describe(&self) -> String {
        format!(
            "CPU {:.3} % of one core, RSS {} KiB, PSS {} KiB ({} process{})",
            self.cpu_pct,
            self.rss_kib,
            self.pss_kib,
            self.processes,
            if self.processes == 1 { "" } else { "es" }
        )
    }
}

/// Measures the processes `pids` over `window`: CPU time (their own, all
/// threads, and that of children they reaped meanwhile) and memory at the
/// end. Returns the cost and the window's exact length in seconds.
fn cost(pids: &[i32], window: Duration) -> (Cost, f64) {
    let cpu0: Vec<Option<Duration>> = pids.iter().map(|&p| cpu_time(p)).collect();
    let start = Instant::now();
    std::thread::sleep(window);
    let secs = start.elapsed().as_secs_f64();
    let cpu: Duration = pids
        .iter()
        .zip(&cpu0)
        .map(|(&p, t0)| match (t0, cpu_time(p)) {
            (Some(t0), Some(t1)) => t1.saturating_sub(*t0),
            _ => Duration::ZERO,
        })
        .sum();
    let cost = Cost {
        cpu_pct: cpu.as_secs_f64() / secs * 100.0,
        rss_kib: pids.iter().map(|&p| kib_field(p, "status", "VmRSS:")).sum(),
        pss_kib: pids
            .iter()
            .map(|&p| kib_field(p, "smaps_rollup", "Pss:"))
            .sum(),
        processes: pids.len(),
    };
    (cost, secs)
}

/// CPU time of a process: its CPU-time clock (every thread, nanoseconds)
/// plus the times of the children it reaped (cutime + cstime, in clock
/// ticks). None if it is gone.
fn cpu_time(pid: i32) -> Option<Duration> {
    let clock = clock_getcpuclockid(Pid::from_raw(pid)).ok()?;
    let own = Duration::from(clock_gettime(clock).ok()?);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; cutime and cstime are
    // 16 and 17.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = (16..=17)
        .filter_map(|i| fields.get(i - 3)?.parse::<u64>().ok())
        .sum();
    let hz = sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64;
    Some(own + Duration::from_secs_f64(ticks as f64 / hz))
}

/// A "Key:   N kB" line of `/proc/PID/FILE`, in KiB (0 if absent).
fn kib_field(pid: i32, file: &str, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
