//! Agreed membership and quorum with three real `hamond` daemons: alpha,
//! beta and gamma, each in its own network namespace, joined by a switch on
//! two UDP networks (`lan1`, `lan2`; no serial network with three nodes).
//!
//! * Views: the three agree on one view of all three with quorum; an
//!   isolated node ends alone in a view without quorum while the other two
//!   agree on a quorate view of their own; once it rejoins all three agree
//!   again. No fencing device and no service.
//! * A holder that loses quorum stops its service itself (safety rule 3's
//!   "a node that loses quorum stops its services"), fences nobody (only
//!   the members of a view with quorum fence, once it held for the
//!   deadtime: a node being cut off that still sees one peer for a moment
//!   never shoots the majority), and the majority fences it (after the
//!   fence delay: it hosts the service) and takes over; once the cut heals
//!   and alpha boots again, it joins, nobody is fenced again and the
//!   service stays where it is.
//! * A holder that loses quorum while its stop hangs is reset by its
//!   watchdog once its lease runs out, also when its hamond is SIGKILLed
//!   meanwhile (the new one keeps the deadline); without a fencing device
//!   the majority never takes the service.
//!
//! The service `app` is a `sleep` started by a script with a pid file per
//! node; at every poll of the service tests it runs on at most one node.

use haschema::ctl::{ServiceOp, ViewStatus};
use hatests::boot::{OwnAddresses, boot_node};
use hatests::scratch::{ScratchDir, pidfile_script, script_service, write_script};
use hatests::watchdog::Outcome;
use hatests::{ClusterSpec, PowerSwitch, Snapshot, TestCluster, require_root};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Longest wait for any view change (robust on a loaded 2-core machine).
const WAIT: Duration = Duration::from_secs(30);
/// The cluster's nodes, in config order.
const NODES: [&str; 3] = ["alpha", "beta", "gamma"];

/// `node`'s installed view, if it answered and has one.
fn view<'a>(s: &'a Snapshot, node: &str) -> Option<&'a ViewStatus> {
    s.get(node)?.view.as_ref()
}

/// Every node of `group` has installed the same view (epoch and
/// coordinator), whose members are exactly `group` and whose quorum is
/// `quorum`.
fn group_agrees(s: &Snapshot, group: &[&str], quorum: bool) -> bool {
    let views: Option<Vec<&ViewStatus>> = group.iter().map(|n| view(s, n)).collect();
    let Some(views) = views else {
        return false;
    };
    let mut members: Vec<&str> = views[0].members.iter().map(String::as_str).collect();
    members.sort_unstable();
    let mut expected = group.to_vec();
    expected.sort_unstable();
    members == expected
        && views[0].quorum == quorum
        && views
            .iter()
            .all(|v| v.epoch == views[0].epoch && v.coordinator == views[0].coordinator)
}

/// One line per node with its view, for the test's output.
fn views_line(s: &Snapshot) -> String {
    NODES
        .iter()
        .map(|n| match view(s, n) {
            Some(v) => format!(
                "{n}: epoch {} by {} {:?} quorum {}",
                v.epoch, v.coordinator, v.members, v.quorum
            ),
            None => format!("{n}: no view"),
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Waits (at most [`WAIT`]) until `cond` holds, printing every change of
/// the nodes' views on the way (shown with the output of a failing test).
#[track_caller]
fn wait_views(c: &TestCluster, desc: &str, cond: impl Fn(&Snapshot) -> bool) -> Snapshot {
    let mut last = String::new();
    let s = c.wait_until(desc, WAIT, |s| {
        let line = views_line(s);
        if line != last {
            eprintln!("views: {line}");
            last = line;
        }
        cond(s)
    });
    eprintln!("reached `{desc}`: {}", views_line(&s));
    s
}

#[test]
fn three_nodes_agree_on_a_view_and_a_cut_node_loses_quorum() {
    if !require_root() {
        return;
    }
    let c = TestCluster::new("quorum_three", &NODES);
    let first = wait_views(&c, "all three agree on a quorate view", |s| {
        group_agrees(s, &NODES, true)
    });

    c.isolate("gamma");
    let split = wait_views(
        &c,
        "alpha and beta agree on a quorate view, gamma is alone without quorum",
        |s| group_agrees(s, &["alpha", "beta"], true) && group_agrees(s, &["gamma"], false),
    );
    let pair = view(&split, "alpha").expect("alpha's view");
    let before = view(&first, "alpha").expect("alpha's first view");
    assert!(
        pair.epoch > before.epoch,
        "the pair's view {pair:?} comes after the first {before:?}"
    );

    c.rejoin("gamma");
    let again = wait_views(&c, "all three agree again on a quorate view", |s| {
        group_agrees(s, &NODES, true)
    });
    let joined = view(&again, "alpha").expect("alpha's view");
    assert!(
        joined.epoch > pair.epoch,
        "the view after the rejoin {joined:?} comes after the pair's {pair:?}"
    );
}

/// The service's name.
const SERVICE: &str = "app";
/// The fence delay (rule 4: the fence of the node that hosts the service
/// waits this long): time to see the holder stop its service itself first.
const FENCE_DELAY: &str = "8s";
/// Longest wait for a service change.
const SERVICE_WAIT: Duration = Duration::from_secs(60);

/// Three nodes running [`SERVICE`] on alpha (beta, then gamma, its
/// standbys); with a power switch as fencing device, or with watchdogs.
struct ServiceCluster {
    // Dropped first: the daemons, then the switch and the directory.
    c: TestCluster,
    switch: Option<PowerSwitch>,
    dir: ScratchDir,
}

impl ServiceCluster {
    /// Starts it: `fencing` (the switch, [`FENCE_DELAY`]) or else
    /// watchdogs of W = 4 s and a 6 s lease; waits until alpha runs the
    /// service.
    #[track_caller]
    fn start(test: &str, fencing: bool) -> ServiceCluster {
        let dir = ScratchDir::new(&format!("{test}-app"));
        let mut spec = ClusterSpec::with_nodes(&NODES);
        spec.hamond_runs_hasvrd = true;
        let switch = fencing.then(|| PowerSwitch::install(dir.path()));
        match &switch {
            Some(switch) => {
                spec.extra_config = format!(
                    "[[fence]]\nname = \"switch\"\nagent = [\"{}\"]\n\
                     nodes = [\"alpha\", \"beta\", \"gamma\"]\ntimeout = \"20s\"\n\
                     delay = \"{FENCE_DELAY}\"\n",
                    switch.agent().display()
                )
            }
            None => {
                spec.watchdog = Some(Duration::from_secs(4));
                spec.watchdog_lease = Some(Duration::from_secs(6));
            }
        }
        let c = TestCluster::start(test, spec);
        if let Some(switch) = &switch {
            for node in NODES {
                switch.connect(node, c.ns(node), &[]);
            }
        }
        let sc = ServiceCluster { c, switch, dir };
        let file = sc.c.services_dir().join(format!("{SERVICE}.toml"));
        std::fs::write(&file, sc.service_file())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        // Each hasvrd started without the service: a restart of hamond
        // (and so of its hasvrd) reads it. alpha first, so that it takes
        // the service; should another get it, a TakeOver brings it back.
        for node in NODES {
            sc.c.restart(node);
        }
        sc.wait("some node runs the service", || sc.runners().len() == 1);
        if sc.runners() != ["alpha"] {
            let done = sc.c.service_op("alpha", ServiceOp::TakeOver, SERVICE);
            assert!(done.is_ok(), "{done:?}");
        }
        sc.wait("alpha runs the service", || sc.runners() == ["alpha"]);
        sc
    }

    /// The service file: the script's start, stop and status; a stop that
    /// hangs for a minute while the file `hang` exists.
    fn service_file(&self) -> String {
        let body = pidfile_script(
            "",
            &format!("{}/app-$HA_NODE.pid", self.dir.path().display()),
            "sleep 100000",
            "",
            &format!("if [ -e \"{}\" ]; then sleep 60; fi", self.hang().display()),
        );
        let script = write_script(self.dir.path(), "app", &body);
        script_service(SERVICE, &script, &NODES, "restart_times = 1")
    }

    /// The file whose presence makes the service's stop hang.
    fn hang(&self) -> PathBuf {
        self.dir.join("hang")
    }

    /// The nodes whose application runs (pid file and live process).
    fn runners(&self) -> Vec<&'static str> {
        NODES
            .into_iter()
            .filter(|n| self.app_pid(n).is_some())
            .collect()
    }

    /// The pid of the application running on `node`, if it runs.
    fn app_pid(&self, node: &str) -> Option<i32> {
        let file = self.dir.join(format!("app-{node}.pid"));
        std::fs::read_to_string(file)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
            .filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
    }

    /// Waits (at most [`SERVICE_WAIT`]) until `ok`, checking at every poll
    /// that the application runs on at most one node.
    #[track_caller]
    fn wait(&self, what: &str, ok: impl Fn() -> bool) {
        let end = Instant::now() + SERVICE_WAIT;
        loop {
            let runners = self.runners();
            assert!(
                runners.len() <= 1,
                "the service runs on {runners:?} at once\n{}",
                self.c.log_tails(60)
            );
            if ok() {
                return;
            }
            assert!(
                Instant::now() < end,
                "not within {SERVICE_WAIT:?}: {what}\n{}",
                self.c.log_tails(60)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn a_holder_that_loses_quorum_stops_its_service_and_the_majority_fences_it() {
    if !require_root() {
        return;
    }
    let sc = ServiceCluster::start("quorum_holder", true);
    let (c, switch) = (&sc.c, sc.switch.as_ref().expect("fencing"));
    let own = OwnAddresses::in_cluster(c, "alpha", None);
    let from = NODES.map(|n| c.log_len(n));
    c.isolate("alpha");
    sc.wait("alpha stops the service itself", || sc.runners().is_empty());
    assert!(
        !switch.is_off(c.ns("alpha")),
        "alpha was fenced before it stopped the service itself"
    );
    let alpha = c.log_since("alpha", from[0]);
    assert!(
        alpha.contains("QUORUM LOST: this node lost quorum"),
        "{alpha}"
    );
    let withdrawn = c.status("alpha").withdrawn.unwrap_or_default();
    assert!(withdrawn.contains("lost quorum"), "{withdrawn:?}");
    assert_eq!(c.status("beta").withdrawn, None);
    sc.wait(
        "alpha is fenced, and beta or gamma runs the service",
        || switch.is_off(c.ns("alpha")) && sc.runners().len() == 1,
    );
    let taker = sc.runners()[0];
    assert_ne!(taker, "alpha");
    let alpha = c.log_since("alpha", from[0]);
    assert!(
        !alpha.contains(": fencing it"),
        "alpha, cut off from the majority, must fence nobody:\n{alpha}"
    );
    let fenced: usize = ["beta", "gamma"]
        .iter()
        .map(|n| c.log_since(n, from[index(n)]))
        .filter(|log| log.contains("alpha is fenced (powered off by"))
        .count();
    assert!(fenced >= 1, "nobody fenced alpha\n{}", c.log_tails(60));
    // It stays on the taker.
    let until = Instant::now() + Duration::from_secs(5);
    sc.wait("the service stays put", || Instant::now() >= until);
    assert_eq!(sc.runners(), [taker]);

    // The cut heals and alpha boots again: it joins, nobody is fenced
    // again, and the service stays where it is (no bounce).
    let pid = sc.app_pid(taker);
    let healed = NODES.map(|n| c.log_len(n));
    c.rejoin("alpha");
    boot_node(c, switch, &own);
    wait_views(c, "all three agree again on a quorate view", |s| {
        group_agrees(s, &NODES, true)
    });
    let until = Instant::now() + Duration::from_secs(5);
    sc.wait("the service stays put after the heal", || {
        Instant::now() >= until
    });
    assert_eq!(sc.runners(), [taker]);
    assert_eq!(sc.app_pid(taker), pid, "the application was restarted");
    assert_eq!(c.status("alpha").withdrawn, None);
    for (n, offset) in NODES.into_iter().zip(healed) {
        let log = c.log_since(n, offset);
        assert!(
            !log.contains(": fencing it") && !log.contains(" is fenced (powered off by"),
            "a fence after the heal on {n}:\n{log}"
        );
    }
}

#[test]
fn a_holder_without_quorum_whose_stop_hangs_is_reset_by_its_watchdog() {
    if !require_root() {
        return;
    }
    lease_runs_out("quorum_lease", false);
}

#[test]
fn a_restarted_hamond_without_quorum_keeps_the_lease_deadline() {
    if !require_root() {
        return;
    }
    lease_runs_out("quorum_lease_restart", true);
}

/// alpha holds the service, is cut off from the other two and its stop
/// hangs: it loses quorum, stops renewing its lease, and its watchdog
/// resets it once the lease ran out. With `restart_hamond` its hamond is
/// SIGKILLed meanwhile: the one its hasvrd starts again keeps the deadline
/// (written in the state directory) instead of petting on. Without a
/// fencing device the majority never takes the service.
fn lease_runs_out(test: &str, restart_hamond: bool) {
    let sc = ServiceCluster::start(test, false);
    let c = &sc.c;
    let from = c.log_len("alpha");
    std::fs::write(sc.hang(), "").unwrap_or_else(|e| panic!("hang: {e}"));
    c.isolate("alpha");
    let logged = |needle: &str| c.log_since("alpha", from).contains(needle);
    if restart_hamond {
        sc.wait("alpha's lease is no longer renewed", || {
            logged("lease: no longer renewed")
        });
        let old = c.hamond_pid("alpha").expect("alpha's hamond");
        kill(Pid::from_raw(old), Signal::SIGKILL).unwrap_or_else(|e| panic!("kill {old}: {e}"));
        sc.wait("alpha's new hamond keeps the deadline", || {
            logged("lease: the deadline kept from before this start")
        });
    }
    let reset = std::thread::scope(|s| {
        let waiter = s.spawn(|| c.watchdog("alpha").wait_reset(SERVICE_WAIT));
        sc.wait("alpha's watchdog ends its wait", || waiter.is_finished());
        waiter.join().expect("the waiter")
    });
    assert!(
        matches!(reset, Some(Outcome::Reset { .. })),
        "alpha's watchdog did not reset it: {reset:?}\n{}",
        c.log_tails(60)
    );
    assert!(c.is_off("alpha"), "the watchdog's reset powers alpha off");
    let alpha = c.log_since("alpha", from);
    assert!(
        alpha.contains("QUORUM LOST: this node lost quorum"),
        "{alpha}"
    );
    assert!(alpha.contains("lease: no longer renewed"), "{alpha}");
    assert!(
        alpha.contains("watchdog: not petted: a held lease ran out"),
        "{alpha}"
    );
    // No fencing device: the majority never takes it.
    let until = Instant::now() + Duration::from_secs(3);
    sc.wait("nobody else runs it", || Instant::now() >= until);
    assert_eq!(sc.runners(), Vec::<&str>::new());
}

/// `node`'s index in [`NODES`].
fn index(node: &str) -> usize {
    NODES
        .iter()
        .position(|n| *n == node)
        .unwrap_or_else(|| panic!("{node} is not one of {NODES:?}"))
}
