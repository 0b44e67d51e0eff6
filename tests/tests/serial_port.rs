//! A serial port that vanishes and comes back, with real `hamond` daemons
//! (alpha and beta, joined by the serial cable `rs232` and two LANs): when
//! the cable is unplugged both ports hang up and their devices vanish; each
//! daemon keeps running, reports the port closed with the cause, logs each
//! distinct error once (not once per retry), keeps its peer up over the
//! LANs, and reopens the port with backoff once the cable is plugged back.

use haschema::ctl::State::{self, Down, Up};
use hatests::{LAN1, LAN2, SERIAL, Snapshot, TestCluster, require_root};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Longest wait for a state change that needs no reopen.
const WAIT: Duration = Duration::from_secs(20);
/// hamond's longest delay between two attempts to reopen a port.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Slack for a loaded 2-core machine (status polls, scheduling).
const SLACK: Duration = Duration::from_secs(2);
/// How long the cable stays out in the first round: long enough for the
/// reopen backoff (200 ms doubling, with jitter) to reach its maximum.
const LONG_UNPLUG: Duration = Duration::from_secs(14);
/// (node, its peer) both ways.
const SIDES: [(&str, &str); 2] = [("alpha", "beta"), ("beta", "alpha")];

/// The link over `path` is `state` on both sides.
fn link_both(s: &Snapshot, path: &str, state: State) -> bool {
    SIDES
        .iter()
        .all(|&(node, peer)| s.link_state(node, peer, path) == Some(state))
}

/// Both peers up, over both LANs.
fn peers_up_over_lans(s: &Snapshot) -> bool {
    SIDES
        .iter()
        .all(|&(node, peer)| s.peer_state(node, peer) == Some(Up))
        && link_both(s, LAN1, Up)
        && link_both(s, LAN2, Up)
}

/// Both serial ports are open with no error.
fn ports_open(s: &Snapshot) -> bool {
    SIDES.iter().all(|&(node, _)| {
        s.path(node, SERIAL)
            .is_some_and(|p| p.open && p.error.is_none())
    })
}

/// Both serial ports are closed, each reporting that its device (the
/// configured link) does not exist.
fn ports_gone(c: &TestCluster, s: &Snapshot) -> bool {
    SIDES.iter().all(|&(node, _)| {
        let device = c.serial_device(node).display().to_string();
        s.path(node, SERIAL).is_some_and(|p| {
            !p.open
                && p.error
                    .as_deref()
                    .is_some_and(|e| e.contains(&device) && e.contains("No such file"))
        })
    })
}

/// The serial errors `text` (a log excerpt) reports, each with how many
/// times it was logged.
fn serial_errors(text: &str) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    let prefix = format!("path {SERIAL}: ");
    for line in text.lines().filter(|l| l.contains("retrying")) {
        if let Some(at) = line.find(&prefix) {
            *seen.entry(line[at..].to_owned()).or_default() += 1;
        }
    }
    seen
}

/// Every node's pid and incarnation: unchanged while no daemon restarts.
fn identities(c: &TestCluster) -> Vec<(Option<u32>, u32)> {
    SIDES
        .iter()
        .map(|&(node, _)| (c.pid(node), c.status(node).incarnation))
        .collect()
}

/// Unplugs the cable and waits until both sides report it: ports closed
/// with the cause, serial link down; the peers stay up over the LANs.
fn unplug(c: &TestCluster) -> Instant {
    let start = Instant::now();
    c.unplug_serial();
    c.wait_until_keeping(
        "both serial ports closed (device gone) and the rs232 link down on both sides",
        WAIT,
        "peers stay up over both LANs",
        peers_up_over_lans,
        |s| ports_gone(c, s) && link_both(s, SERIAL, Down),
    );
    start
}

/// Plugs the cable back and waits, within the reopen backoff and the
/// deadtime, until both ports are open and the serial link up again.
fn replug(c: &TestCluster) {
    let deadtime = Duration::from_millis(c.spec().serial_interval_ms) * c.spec().serial_maxmiss;
    let opens: Vec<usize> = ["alpha", "beta"]
        .iter()
        .map(|n| c.log_count(n, "port open"))
        .collect();
    c.replug_serial();
    let deadline = Instant::now() + BACKOFF_MAX + deadtime + SLACK;
    c.wait_until_keeping(
        "both serial ports reopened (within the longest backoff)",
        BACKOFF_MAX + SLACK,
        "peers stay up over both LANs",
        peers_up_over_lans,
        ports_open,
    );
    c.wait_until_keeping(
        "the rs232 link up on both sides (within backoff + deadtime)",
        deadline.saturating_duration_since(Instant::now()),
        "peers stay up over both LANs and the ports open",
        |s| peers_up_over_lans(s) && ports_open(s),
        |s| link_both(s, SERIAL, Up),
    );
    for (node, before) in ["alpha", "beta"].into_iter().zip(opens) {
        assert!(
            c.log_count(node, "port open") > before,
            "{node} logs the reopen"
        );
    }
}

#[test]
fn an_unplugged_serial_port_is_reported_and_reopened_with_backoff() {
    if !require_root() {
        return;
    }
    let c = TestCluster::new("serial_unplug", &["alpha", "beta"]);
    c.wait_until("every path up on both sides", WAIT, |s| {
        peers_up_over_lans(s) && ports_open(s) && link_both(s, SERIAL, Up)
    });
    let before = identities(&c);
    let marks: Vec<u64> = SIDES.iter().map(|&(n, _)| c.log_len(n)).collect();

    // Long unplug: the daemons retry all along, up to the longest backoff.
    let unplugged = unplug(&c);
    c.assert_always(
        "ports stay closed, rs232 down, peers up over the LANs",
        LONG_UNPLUG.saturating_sub(unplugged.elapsed()),
        |s| ports_gone(&c, s) && link_both(s, SERIAL, Down) && peers_up_over_lans(s),
    );
    for (&(node, _), mark) in SIDES.iter().zip(&marks) {
        let log = c.log_since(node, *mark);
        let errors = serial_errors(&log);
        let device = c.serial_device(node).display().to_string();
        assert!(
            errors
                .keys()
                .any(|e| e.contains("cannot open") && e.contains(&device)),
            "{node} logs that it cannot open {device}: {errors:#?}\n{log}"
        );
        assert!(
            errors.values().all(|&n| n == 1),
            "{node} logs each distinct serial error once, not at each retry: {errors:#?}"
        );
    }
    replug(&c);

    // Short unplug: the backoff started again from its minimum.
    unplug(&c);
    replug(&c);
    assert_eq!(
        identities(&c),
        before,
        "no daemon restarted (pid, incarnation)"
    );
}
