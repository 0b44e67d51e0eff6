//! The watchdog end to end with its stand-in: `hamond::watchdog::Watchdog`
//! writes its pets into a FIFO read by a simulated watchdog
//! (`hatests::watchdog::FifoWatchdog`) that powers a namespaced node off
//! (`hatests::PowerSwitch`) when no pet came for W.
//!
//! With a small pet loop playing hamond (every W/4 it asks the `PetGate`
//! and pets only when it says so):
//!
//! * petting keeps the node up, and the magic close disarms the watchdog;
//! * a lease running out closes the gate: the node is reset within W (+ a
//!   margin) of the lease deadline, and no pet came at or after it;
//! * hasvrd going silent closes the gate: reset within its deadline + W;
//! * hamond dying (the watchdog dropped without the magic close) leaves it
//!   armed: reset within W of the last pet.
//!
//! With real daemons (`TestCluster` with `ClusterSpec::watchdog`: hamond
//! opens the node's FIFO from `[watchdog]` and supervises hasvrd):
//!
//! * a watchdog that cannot be opened stops hamond's start, saying what to
//!   check;
//! * a node runs for a while with no reset, its peer shows the watchdog
//!   it advertised (W read back, its lease), and a clean stop of hamond
//!   disarms its watchdog (magic close);
//! * hamond SIGSTOPped beyond W: the node is powered off;
//! * hasvrd SIGSTOPped: its answers to hamond's pings stop, the gate closes
//!   and the node is powered off;
//! * hasvrd SIGKILLed: hamond restarts it within the gate's deadline and the
//!   node is not reset;
//! * a service whose stop fails, with `force_reboot = true`: hasvrd asks
//!   hamond to self-fence, the pets stop and the node is powered off.
//!
//! The real device's ioctl path is not exercised here (no watchdog device
//! on the test machines).

use hamond::watchdog::{Check, GateLimits, PetGate, Verdict, Watchdog, pet_interval};
use haschema::ctl::PeerWatchdog;
use hatests::scratch::ScratchDir;
use hatests::watchdog::{FifoWatchdog, Outcome};
use hatests::{ClusterSpec, Netns, PowerSwitch, TestCluster, Veth, require_root};
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

// ---- real daemons ------------------------------------------------------

/// The watchdog timeout of the clusters below: hasvrd must answer hamond's
/// pings within W/2.
const CLUSTER_W: Duration = Duration::from_secs(4);

/// Longest wait for a reset that should come.
const RESET_WAIT: Duration = Duration::from_secs(30);

/// alpha and beta, each with a simulated watchdog; hamond runs hasvrd
/// (with no service) unless `hasvrd` is false.
#[track_caller]
fn watched_cluster(test: &str, hasvrd: bool) -> TestCluster {
    TestCluster::start(
        test,
        ClusterSpec {
            watchdog: Some(CLUSTER_W),
            hamond_runs_hasvrd: hasvrd,
            ..ClusterSpec::with_nodes(&["alpha", "beta"])
        },
    )
}

/// Waits until `node`'s simulated watchdog reset it, and checks it is off.
#[track_caller]
fn expect_node_reset(c: &TestCluster, node: &str) {
    match c.watchdog(node).wait_outcome(RESET_WAIT) {
        Some(Outcome::Reset { .. }) => {}
        other => panic!(
            "expected {node} to be reset, got {other:?}\n{}",
            c.log_tails(40)
        ),
    }
    assert!(c.is_off(node), "{node} was reset but is not off");
}

/// Checks for `span` that neither node is reset.
#[track_caller]
fn expect_no_reset(c: &TestCluster, span: Duration) {
    let end = Instant::now() + span;
    while Instant::now() < end {
        for node in ["alpha", "beta"] {
            let outcome = c.watchdog(node).outcome();
            assert_eq!(outcome, None, "{node}'s watchdog\n{}", c.log_tails(40));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits (bounded) until hamond's status says it pets its watchdog.
#[track_caller]
fn wait_petting(c: &TestCluster, node: &str) {
    let node_owned = node.to_owned();
    c.wait_until(
        &format!("{node} pets its watchdog"),
        Duration::from_secs(20),
        |s| {
            s.get(&node_owned)
                .and_then(|r| r.watchdog.as_ref())
                .is_some_and(|w| w.petting)
        },
    );
}

/// The pid of `node`'s hasvrd, waiting (bounded) for it to run and be
/// other than `not`.
#[track_caller]
fn hasvrd_pid(c: &TestCluster, node: &str, not: Option<i32>) -> i32 {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(pid) = c.daemon_pid(node, "hasvrd").filter(|&p| Some(p) != not) {
            return pid;
        }
        assert!(
            Instant::now() < end,
            "no (new) hasvrd on {node}\n{}",
            c.log_tails(40)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(pid: i32, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)
        .unwrap_or_else(|e| panic!("kill -{signal} {pid}: {e}"));
}

#[test]
fn hamond_pets_its_watchdog_and_a_clean_stop_disarms_it() {
    if !require_root() {
        return;
    }
    let c = watched_cluster("wdc_clean", true);
    wait_petting(&c, "alpha");
    let w = c
        .status("alpha")
        .watchdog
        .expect("a watchdog in the status");
    assert_eq!(w.timeout_s, CLUSTER_W.as_secs());
    assert!(
        !w.armed_device,
        "a stand-in is not a reliable device: {w:?}"
    );
    assert!(w.kind.contains("stand-in"), "{w:?}");
    assert!(w.device.ends_with("alpha.wd/watchdog"), "{w:?}");
    assert_eq!(w.self_fence, None);
    let pets = c.watchdog("alpha").pets();
    expect_no_reset(&c, Duration::from_secs(12));
    assert!(c.watchdog("alpha").pets() > pets, "no pet in 12 s");
    assert!(c.log("alpha").contains("timeout W = 4s (read back)"));
    // beta sees what alpha advertised: its W read back and its lease.
    let alpha = c
        .status("beta")
        .peers
        .into_iter()
        .find(|p| p.name == "alpha");
    assert_eq!(
        alpha.map(|p| p.watchdog),
        Some(PeerWatchdog::Enabled {
            armed_device: false,
            timeout_s: CLUSTER_W.as_secs(),
            lease_s: haschema::config::DEFAULT_LEASE.as_secs(),
        })
    );

    // A clean stop: hasvrd stopped, the leave, then the magic close.
    c.shutdown("alpha").expect("hamond stops within 5 s");
    match c.watchdog("alpha").wait_outcome(Duration::from_secs(5)) {
        Some(Outcome::Disarmed { .. }) => {}
        other => panic!(
            "expected the magic close, got {other:?}\n{}",
            c.log_tails(40)
        ),
    }
    std::thread::sleep(CLUSTER_W + MARGIN);
    assert!(matches!(
        c.watchdog("alpha").outcome(),
        Some(Outcome::Disarmed { .. })
    ));
    assert!(!c.is_off("beta"));
    assert_eq!(c.watchdog("beta").outcome(), None);
}

#[test]
fn a_stopped_hamond_is_reset_by_its_watchdog() {
    if !require_root() {
        return;
    }
    let c = watched_cluster("wdc_hamond", true);
    wait_petting(&c, "alpha");
    c.stop("alpha");
    expect_node_reset(&c, "alpha");
    assert_eq!(c.watchdog("beta").outcome(), None, "beta was not stopped");
}

#[test]
fn a_stopped_hasvrd_closes_the_gate_and_the_node_is_reset() {
    if !require_root() {
        return;
    }
    let c = watched_cluster("wdc_hasvrd_stop", true);
    wait_petting(&c, "alpha");
    let pid = hasvrd_pid(&c, "alpha", None);
    signal(pid, nix::sys::signal::Signal::SIGSTOP);
    expect_node_reset(&c, "alpha");
    let log = c.log("alpha");
    assert!(
        log.contains("watchdog: not petted: hasvrd's last healthy report"),
        "{}",
        c.log_tails(40)
    );
    assert_eq!(c.watchdog("beta").outcome(), None);
}

#[test]
fn a_killed_hasvrd_restarted_in_time_does_not_reset_the_node() {
    if !require_root() {
        return;
    }
    let c = watched_cluster("wdc_hasvrd_kill", true);
    wait_petting(&c, "alpha");
    let pid = hasvrd_pid(&c, "alpha", None);
    let before = c.log_len("alpha");
    signal(pid, nix::sys::signal::Signal::SIGKILL);
    let new = hasvrd_pid(&c, "alpha", Some(pid));
    assert_ne!(new, pid);
    expect_no_reset(&c, 2 * CLUSTER_W);
    wait_petting(&c, "alpha");
    let log = c.log_since("alpha", before);
    assert!(log.contains("hasvrd died"), "{log}");
    // Restarted well within the gate's deadline: not one pet withheld.
    assert!(!log.contains("not petted"), "{log}");
}

/// A service with scripts only, whose stop always fails: `DIR/NS.running`
/// marks it running in the namespace NS that started it.
fn failing_stop_service(c: &TestCluster) {
    let dir = c.dir().display().to_string();
    let script = hatests::scratch::write_script(
        c.dir(),
        "sf",
        &format!(
            r#"marker="{dir}/$(ip netns identify $$).running"
case "$1" in
start) touch "$marker"; exit 0 ;;
stop) exit 1 ;;
status) [ -f "$marker" ] && exit 0; exit 3 ;;
esac
exit 2"#
        ),
    );
    let file = format!(
        r#"name = "sf"
active = "alpha"
standby = ["beta"]
start = ["{script}", "start"]
stop = ["{script}", "stop"]
status = ["{script}", "status"]
check_interval = "1s"
onstart = true
force_reboot = true
"#
    );
    let path = c.services_dir().join("sf.toml");
    std::fs::write(&path, file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

#[test]
fn a_failed_stop_with_force_reboot_resets_the_node() {
    if !require_root() {
        return;
    }
    // The test starts hasvrd (with the service) itself: hamond does not
    // supervise it, and its self-fence request still stops the pets.
    let c = watched_cluster("wdc_force_reboot", false);
    failing_stop_service(&c);
    for node in ["alpha", "beta"] {
        c.start_hasvrd(node);
    }
    wait_petting(&c, "alpha");
    c.wait_until("sf runs on alpha", Duration::from_secs(30), |_| {
        c.service_state("alpha", "sf").as_deref() == Some("ACTIVE")
    });
    let answer = c.service_op("alpha", haschema::ctl::ServiceOp::FailOver, "sf");
    assert!(answer.is_ok(), "fail-over: {answer:?}");
    expect_node_reset(&c, "alpha");
    let log = c.log("alpha");
    assert!(
        log.contains("SELF-FENCE: service sf"),
        "{}",
        c.log_tails(40)
    );
    assert_eq!(c.watchdog("beta").outcome(), None, "beta's stop never ran");
}

#[test]
fn a_watchdog_that_cannot_be_opened_stops_the_start() {
    if !require_root() {
        return;
    }
    let c = TestCluster::new("wdc_missing", &["alpha", "beta"]);
    let missing = c.dir().join("no-such-watchdog");
    let config = c.dir().join("missing-watchdog.toml");
    let text = format!(
        "{}\n[watchdog]\nenabled = true\ndevice = \"{}\"\n",
        c.config_text(),
        missing.display()
    );
    std::fs::write(&config, text).unwrap_or_else(|e| panic!("{}: {e}", config.display()));
    let state = c.dir().join("missing.state");
    std::fs::create_dir_all(&state).unwrap_or_else(|e| panic!("{}: {e}", state.display()));
    let mut cmd = c.ns("alpha").command(hatests::bins::hamond());
    cmd.arg("--config")
        .arg(&config)
        .args(["--node", "alpha", "--no-syslog"])
        .arg("--state-dir")
        .arg(&state)
        .arg("--socket")
        .arg(c.dir().join("missing.sock"))
        .arg("--link")
        .arg(c.dir().join("missing.link"))
        .env("NO_COLOR", "1");
    let done = hatests::command::run_for(&mut cmd, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!done.status.success(), "hamond started: {done:?}");
    let said = format!("{}{}", done.stdout, done.stderr);
    let path = missing.display().to_string();
    for needle in [
        path.as_str(),
        "cannot open",
        "check that the device exists",
        "enabled = false",
    ] {
        assert!(said.contains(needle), "no `{needle}` in: {said}");
    }
}
