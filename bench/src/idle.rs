//! Idle cost of hamond (CPU and resident memory) and what its heartbeats
//! cost each path (bytes per second), at two intervals; and the share of a
//! serial line the heartbeats occupy at 9600 and 19200 baud.

use haschema::ctl::State;
use hatests::{ClusterSpec, SERIAL, TestCluster};
use nix::unistd::{SysconfVar, sysconf};
use std::time::{Duration, Instant};

pub fn report(window: Duration) {
    println!(
        "## Idle cost of hamond on alpha over {} s\n",
        window.as_secs()
    );
    for interval_ms in [1000, 100] {
        idle(interval_ms, window);
    }
    println!("\n## Serial line occupancy by heartbeats (100 ms interval, one direction)\n");
    for baud in [9600, 19200] {
        occupancy(baud, window);
    }
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

fn idle(interval_ms: u64, window: Duration) {
    let cluster = TestCluster::start("bench-idle", spec(interval_ms, 19200));
    settled(&cluster);
    let pid = cluster.pid("alpha").expect("alpha runs");
    let before = cluster.status("alpha");
    let (ticks0, start) = (cpu_ticks(pid), Instant::now());
    std::thread::sleep(window);
    let secs = start.elapsed().as_secs_f64();
    let ticks = cpu_ticks(pid) - ticks0;
    let after = cluster.status("alpha");
    let hz = sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64;
    println!(
        "- interval {interval_ms} ms: CPU {:.3} % of one core, RSS {} KiB",
        ticks as f64 / hz / secs * 100.0,
        rss_kib(pid)
    );
    for (p0, p1) in before.paths.iter().zip(&after.paths) {
        println!(
            "  - path {} ({}): {:.0} B/s sent, {:.1} frames/s",
            p1.name,
            p1.kind,
            (p1.bytes_sent - p0.bytes_sent) as f64 / secs,
            (p1.frames_sent - p0.frames_sent) as f64 / secs
        );
    }
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

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(14) + field(15)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
