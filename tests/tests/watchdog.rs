//! The watchdog end to end with its stand-in: `hamond::watchdog::Watchdog`
//! writes its pets into a FIFO read by a simulated watchdog
//! (`hatests::watchdog::FifoWatchdog`) that powers a namespaced node off
//! (`hatests::PowerSwitch`) when no pet came for W. A small pet loop plays
//! hamond: every W/4 it asks the `PetGate` and pets only when it says so.
//!
//! * petting keeps the node up, and the magic close disarms the watchdog;
//! * a lease running out closes the gate: the node is reset within W (+ a
//!   margin) of the lease deadline, and no pet came at or after it;
//! * hasvrd going silent closes the gate: reset within its deadline + W;
//! * hamond dying (the watchdog dropped without the magic close) leaves it
//!   armed: reset within W of the last pet.
//!
//! The real device's ioctl path is not exercised here (no watchdog device
//! on the test machines).

use hamond::watchdog::{Check, GateLimits, PetGate, Verdict, Watchdog, pet_interval};
use hatests::scratch::ScratchDir;
use hatests::watchdog::{FifoWatchdog, Outcome};
use hatests::{Netns, PowerSwitch, Veth, require_root};
use std::net::Ipv4Addr;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The watchdog timeout in these tests.
const W: Duration = Duration::from_secs(3);
/// Slack for a loaded 2-core machine: the simulated watchdog's poll slice,
/// the power switch's run, thread wake-ups.
const MARGIN: Duration = Duration::from_millis(1500);

/// A namespaced node with an address and a process, on a power switch.
struct Node {
    ns: Arc<Netns>,
    switch: Arc<PowerSwitch>,
    sleeper: Child,
    _peer: Netns,
    _veth: Veth,
}

impl Node {
    fn new(dir: &ScratchDir, tag: &str) -> Node {
        let ns = Arc::new(Netns::new(&format!("wd-{tag}")));
        let peer = Netns::new(&format!("wd-{tag}-peer"));
        let veth = Veth::new(
            &ns,
            "eth0",
            Ipv4Addr::new(10, 94, 1, 1),
            &peer,
            "eth0",
            Ipv4Addr::new(10, 94, 1, 2),
        );
        let sleeper = ns
            .command("sleep")
            .arg("600")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let switch = Arc::new(PowerSwitch::install(dir.path()));
        assert!(!switch.is_off(&ns));
        Node {
            ns,
            switch,
            sleeper,
            _peer: peer,
            _veth: veth,
        }
    }

    /// The simulated watchdog, wired to power this node off.
    fn watchdog(&self, dir: &ScratchDir) -> FifoWatchdog {
        let (switch, ns) = (self.switch.clone(), self.ns.clone());
        FifoWatchdog::start(dir.path(), W, move || switch.power_off(&ns))
    }

    fn is_off(&self) -> bool {
        self.switch.is_off(&self.ns)
    }

    /// Off, and its process killed.
    fn assert_reset(&mut self) {
        assert!(self.is_off(), "the node is still on");
        let status = self.sleeper.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
    }

    fn assert_up(&mut self) {
        assert!(!self.is_off(), "the node was reset");
        assert!(self.sleeper.try_wait().unwrap().is_none());
    }
}

/// hamond's pet loop in miniature, on a clock that starts at `t0`.
struct Daemon {
    t0: Instant,
    gate: PetGate,
    /// Times (since t0) of the pets it made.
    pets: Vec<Duration>,
    withheld: Vec<(Duration, String)>,
}

impl Daemon {
    fn new() -> Daemon {
        Daemon {
            t0: Instant::now(),
            gate: PetGate::new(GateLimits::for_timeout(W)),
            pets: Vec::new(),
            withheld: Vec::new(),
        }
    }

    fn now(&self) -> Duration {
        self.t0.elapsed()
    }

    /// Ticks every W/4 for `run_for` (or until `done`): hasvrd reports
    /// while `hasvrd(now)`, leases are `leases(now)`; pets when the gate
    /// says so.
    fn run(
        &mut self,
        wd: &mut Watchdog,
        run_for: Duration,
        hasvrd: impl Fn(Duration) -> bool,
        leases: impl Fn(Duration) -> Option<Duration>,
        done: impl Fn() -> bool,
    ) {
        let start = self.now();
        let mut next = start;
        while self.now() < start + run_for && !done() {
            let now = self.now();
            if now < next {
                std::thread::sleep(next - now);
            }
            let now = self.now();
            let lateness = now.saturating_sub(next);
            next += pet_interval(W);
            if hasvrd(now) {
                self.gate.other_daemon_ok(now);
            }
            let check = Check {
                now,
                timer_lateness: lateness,
                leases_valid_until: leases(now),
            };
            match self.gate.check(check) {
                Verdict::Pet => {
                    wd.pet().expect("pet");
                    self.pets.push(now);
                }
                Verdict::Withhold(why) => self.withheld.push((now, why.to_string())),
            }
        }
    }

    fn instant(&self, t: Duration) -> Instant {
        self.t0 + t
    }
}

fn open(hw: &FifoWatchdog) -> Watchdog {
    let wd = Watchdog::open(hw.path(), W).unwrap();
    assert_eq!(wd.timeout(), W);
    assert!(!wd.is_reliable(), "a stand-in is never advertised");
    wd
}

fn expect_reset(hw: &FifoWatchdog) -> (Instant, Instant, Instant) {
    match hw.wait_outcome(W + MARGIN + Duration::from_secs(10)) {
        Some(Outcome::Reset {
            fired,
            at,
            last_pet,
        }) => (fired, at, last_pet),
        other => panic!("expected a reset, got {other:?}"),
    }
}

#[test]
fn petting_keeps_the_node_up_and_the_magic_close_disarms() {
    if !require_root() {
        return;
    }
    let dir = ScratchDir::new("wd_keepalive");
    let mut node = Node::new(&dir, "keep");
    let hw = node.watchdog(&dir);
    let mut wd = open(&hw);
    let mut d = Daemon::new();
    // Leases renewed all along (always valid 5s ahead), hasvrd healthy.
    d.run(
        &mut wd,
        2 * W + W / 2,
        |_| true,
        |now| Some(now + Duration::from_secs(5)),
        || false,
    );
    assert_eq!(hw.outcome(), None, "withheld: {:?}", d.withheld);
    assert!(d.pets.len() >= 8, "pets: {:?}", d.pets);
    // Every pet reached the hardware, and the open pets too.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(hw.pets(), d.pets.len() as u64 + 1);
    node.assert_up();

    wd.close_cleanly().unwrap();
    match hw.wait_outcome(MARGIN) {
        Some(Outcome::Disarmed { .. }) => {}
        other => panic!("expected the magic close to disarm it, got {other:?}"),
    }
    std::thread::sleep(W + MARGIN);
    node.assert_up();
}

#[test]
fn an_expired_lease_stops_the_pets_and_the_node_resets() {
    if !require_root() {
        return;
    }
    let dir = ScratchDir::new("wd_lease");
    let mut node = Node::new(&dir, "lease");
    let hw = node.watchdog(&dir);
    let mut wd = open(&hw);
    let mut d = Daemon::new();
    // One lease, never renewed, valid until t0 + 2.5s.
    let until = Duration::from_millis(2500);
    d.run(
        &mut wd,
        until + W + MARGIN + Duration::from_secs(10),
        |_| true,
        |_| Some(until),
        || hw.outcome().is_some(),
    );
    let (fired, _, last_pet) = expect_reset(&hw);
    node.assert_reset();

    let last = *d.pets.last().expect("it petted while the lease was valid");
    assert!(d.pets.iter().all(|&t| t < until), "pets: {:?}", d.pets);
    assert!(d.pets.len() >= 3, "pets: {:?}", d.pets);
    // Withheld for the lease only once it ran out (a late tick on a busy
    // machine may withhold a pet earlier, for its own reason).
    let for_lease: Vec<_> = d
        .withheld
        .iter()
        .filter(|(_, why)| why.contains("lease"))
        .collect();
    assert!(!for_lease.is_empty(), "withheld: {:?}", d.withheld);
    assert!(
        for_lease.iter().all(|(t, _)| *t >= until),
        "withheld: {:?}",
        d.withheld
    );
    // Not before W after the last pet the hardware saw, and within W (+
    // the margin) of the lease deadline.
    assert!(fired >= last_pet + W);
    assert!(last_pet >= d.instant(last));
    let lease_end = d.instant(until);
    assert!(
        fired <= lease_end + W + MARGIN,
        "reset {:?} after the lease deadline",
        fired - lease_end
    );
    drop(wd);
}

#[test]
fn a_silent_hasvrd_stops_the_pets_and_the_node_resets() {
    if !require_root() {
        return;
    }
    let dir = ScratchDir::new("wd_hasvrd");
    let mut node = Node::new(&dir, "hasvrd");
    let hw = node.watchdog(&dir);
    let mut wd = open(&hw);
    let mut d = Daemon::new();
    // hasvrd reports for 2s, then hangs; no lease held.
    let silent_from = Duration::from_secs(2);
    d.run(
        &mut wd,
        silent_from + W + MARGIN + Duration::from_secs(10),
        |now| now < silent_from,
        |_| None,
        || hw.outcome().is_some(),
    );
    let (fired, _, last_pet) = expect_reset(&hw);
    node.assert_reset();

    let deadline = GateLimits::for_timeout(W).other_daemon_deadline.unwrap();
    let last_report = d.instant(silent_from);
    assert!(
        d.pets
            .iter()
            .all(|&t| d.instant(t) <= last_report + deadline),
        "pets: {:?}",
        d.pets
    );
    assert!(
        d.withheld.iter().any(|(_, why)| why.contains("hasvrd")),
        "withheld: {:?}",
        d.withheld
    );
    assert!(fired >= last_pet + W);
    assert!(
        fired <= last_report + deadline + W + MARGIN,
        "reset {:?} after hasvrd's last report",
        fired - last_report
    );
    drop(wd);
}

#[test]
fn a_dead_daemon_leaves_the_watchdog_armed() {
    if !require_root() {
        return;
    }
    let dir = ScratchDir::new("wd_dead");
    let mut node = Node::new(&dir, "dead");
    let hw = node.watchdog(&dir);
    let mut wd = open(&hw);
    let mut d = Daemon::new();
    d.run(&mut wd, W, |_| true, |_| None, || false);
    assert!(d.pets.len() >= 3, "pets: {:?}", d.pets);
    // hamond dies: its descriptor is closed without the magic `V`.
    drop(wd);
    let died = Instant::now();
    let (fired, _, last_pet) = expect_reset(&hw);
    node.assert_reset();
    assert!(fired >= last_pet + W);
    assert!(
        fired <= died + W + MARGIN,
        "reset {:?} after the daemon died",
        fired - died
    );
}

/// A restarted hamond opens the watchdog again and pets it before W runs
/// out: the node stays up (safety rule 3: it renews or stops services,
/// then pets).
#[test]
fn a_restarted_daemon_pets_again_in_time() {
    if !require_root() {
        return;
    }
    let dir = ScratchDir::new("wd_restart");
    let mut node = Node::new(&dir, "restart");
    let hw = node.watchdog(&dir);
    let mut wd = open(&hw);
    let mut d = Daemon::new();
    d.run(&mut wd, W / 2, |_| true, |_| None, || false);
    drop(wd);
    std::thread::sleep(W / 3);
    let mut wd = open(&hw);
    let mut d = Daemon::new();
    d.run(&mut wd, 2 * W, |_| true, |_| None, || false);
    assert_eq!(hw.outcome(), None, "withheld: {:?}", d.withheld);
    node.assert_up();
    wd.close_cleanly().unwrap();
    assert!(matches!(
        hw.wait_outcome(MARGIN),
        Some(Outcome::Disarmed { .. })
    ));
    node.assert_up();
}
