//! The partition matrix's harder cells (issue 4, safety rules 1, 2 and 4),
//! on the web service fixture with the power switch as fencing device for
//! both nodes, a fence delay, and hamond running hasvrd. Each test runs
//! under the never-twice checker ([`watched`]: the floating IP, the volume
//! and the application on one node at most, at every look), and after the
//! dust settles exactly one node runs the service.
//!
//! * A node rebooted during a partition: every path is cut, beta fences
//!   alpha (the holder, whose own fence of beta fails: beta's device is
//!   out of its reach) and takes the service over; alpha boots again (a
//!   new boot id, `hamond --boot-id-file`) into the same partition: it
//!   waits for all, fences nobody (it has not seen beta since its boot) and
//!   takes nothing. After the heal it joins (beta sees a reboot), the
//!   service stays on beta and nobody is fenced again.
//! * An asymmetric cut: one node hears the other but is not heard by it,
//!   on every path (either way round). Liveness is two-way, so each loses
//!   the other; rule 4's delay decides who shoots: the holder, alpha,
//!   fences beta at once while beta waits the delay. Exactly one fence, the
//!   service stays on alpha, and once beta is back and the cut healed, no
//!   fence loop.
//! * A cut in the middle of a failover (the operator's FailOver from alpha
//!   to beta), while alpha stops the service (its stop paused), or while
//!   beta starts it (its start paused). The node that holds the service
//!   then shoots first (rule 4): alpha, which, its stop done, waits the
//!   start timeout for beta (off) and takes the service back; or beta,
//!   which finishes its start. After the fenced node is back and the cut
//!   healed, the service stays put.

use haschema::ctl::ServiceOp;
use haschema::ctl::State::Up;
use hatests::apps::{keeps, pid_in, wait_log_since};
use hatests::boot::{OwnAddresses, boot};
use hatests::never_twice::{Watch, one_claimant, poll_until, watched};
use hatests::scratch::ScratchDir;
use hatests::web::{NODES, PAUSED_START, PAUSED_STOP, SERVICE, WAIT, WebService, WebSpec};
use hatests::{ClusterSpec, LAN1, LAN2, PowerSwitch, require_root};
use std::time::Duration;

/// The switch's fence delay (rule 4): the fence of the node that hosts
/// the service waits this long, so that node shoots first.
const FENCE_DELAY: Duration = Duration::from_secs(5);
/// How long a state that must hold is watched: several deadtimes of the
/// harness's paths (1 s on the LANs, 2 s on the cable).
const WATCH: Duration = Duration::from_secs(10);
/// What a fencer logs once the device proved its peer off.
const FENCED: &str = " is fenced (powered off by";
/// What a node logs when it starts to fence a lost peer.
const FENCING: &str = "fencing it";

/// The fixture's switch fences both nodes, after [`FENCE_DELAY`] for the
/// node that hosts more.
fn fencing_both() -> WebSpec {
    WebSpec {
        fencing: true,
        fence_delay: Some(FENCE_DELAY),
        ..WebSpec::default()
    }
}

/// The fixture with `web`'s settings and hamond running hasvrd, settled:
/// alpha serves, beta stands by.
#[track_caller]
fn start(test: &str, web: WebSpec) -> WebService {
    let w = WebService::start_with(
        test,
        WebSpec {
            hamond_runs_hasvrd: true,
            ..web
        },
    );
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    w
}

/// The index of `node` in [`NODES`].
#[track_caller]
fn index(node: &str) -> usize {
    NODES
        .iter()
        .position(|n| *n == node)
        .unwrap_or_else(|| panic!("no node {node}"))
}

/// Waits until one node is off (fenced by the other); returns it. The
/// watcher is checked at every poll.
#[track_caller]
fn wait_fenced(w: &WebService, watch: &Watch) -> &'static str {
    let c = w.cluster();
    // The node found off, kept: asking again could race a process the
    // checks themselves start in its namespace.
    let off = std::cell::Cell::new(None);
    poll_until(
        w,
        "one node fenced",
        WAIT,
        || watch.check(),
        || {
            off.set(NODES.into_iter().find(|n| w.switch().is_off(c.ns(n))));
            off.get().is_some()
        },
    );
    off.get()
        .unwrap_or_else(|| unreachable!("the poll found it off"))
}

/// After the dust settled, for [`WATCH`]: `keeper` holds the floating IP
/// and runs the application alone, and no node is off unless `off`.
#[track_caller]
fn stays_on(w: &WebService, watch: &Watch, keeper: &str, off: Option<&str>, what: &str) {
    let c = w.cluster();
    keeps(w, WATCH, what, || {
        watch.check();
        if let Some(n) = NODES
            .into_iter()
            .find(|n| Some(*n) != off && w.switch().is_off(c.ns(n)))
        {
            return Err(format!("{n} was fenced"));
        }
        let holders = w.holders();
        if holders != [keeper] || !w.app_running(keeper) {
            return Err(format!(
                "the service left {keeper}: floating IP on {holders:?}, application running \
                 there: {}",
                w.app_running(keeper)
            ));
        }
        Ok(())
    });
}

/// Heals every cut and, with `own`, boots that powered-off node again;
/// waits until both hasvrds name `keeper` the owner, then checks for
/// [`WATCH`] that the service stays there, the application unrestarted,
/// that `keeper` saw `rebooted` come back on a new boot, and that nobody
/// fenced anybody since the heal (no fence loop).
#[track_caller]
fn heal(w: &WebService, watch: &Watch, keeper: &str, rebooted: &str, own: Option<&OwnAddresses>) {
    let c = w.cluster();
    let offsets = NODES.map(|n| c.log_len(n));
    let pid = w.app_pid(keeper);
    c.restore_all();
    if let Some(own) = own {
        boot(w, own);
    }
    c.wait_until("alpha and beta see each other", WAIT, |s| {
        s.peer_state("alpha", "beta") == Some(Up) && s.peer_state("beta", "alpha") == Some(Up)
    });
    assert_eq!(one_claimant(w, &NODES, || watch.check()), keeper);
    stays_on(w, watch, keeper, None, "after the heal");
    assert_eq!(w.app_pid(keeper), pid, "the application was restarted");
    let log = c.log_since(keeper, offsets[index(keeper)]);
    assert!(
        log.contains(&format!("{rebooted} restarted")) && log.contains("after an OS reboot"),
        "{keeper} did not see {rebooted}'s reboot (a new boot id):\n{log}"
    );
    for (n, offset) in NODES.into_iter().zip(offsets) {
        let log = c.log_since(n, offset);
        assert!(
            !log.contains(FENCING) && !log.contains(FENCED),
            "a fence after the heal (a fence loop) on {n}:\n{log}"
        );
    }
}

#[test]
fn a_node_rebooted_during_a_partition_waits_for_all_and_fences_nobody() {
    if !require_root() {
        return;
    }
    // A switch of the test's own covers both nodes, but only alpha's plug
    // is connected at first: beta's device is out of alpha's reach (its
    // fence of beta fails), so beta, although it waits the fence delay,
    // wins the fence race.
    let dir = ScratchDir::new("part_reboot_switch");
    let switch = PowerSwitch::install(dir.path());
    let cluster = ClusterSpec {
        extra_config: format!(
            "[[fence]]\nname = \"switch\"\nagent = [\"{}\"]\nnodes = [\"alpha\", \"beta\"]\n\
             timeout = \"20s\"\ndelay = \"{}s\"\n",
            switch.agent().display(),
            FENCE_DELAY.as_secs()
        ),
        ..ClusterSpec::with_nodes(&NODES)
    };
    let w = start(
        "part_reboot",
        WebSpec {
            cluster: Some(cluster),
            ..WebSpec::default()
        },
    );
    let c = w.cluster();
    switch.connect("alpha", c.ns("alpha"), &[]);
    let alpha = OwnAddresses::of(&w, "alpha");
    watched(&w, |watch| {
        let ((), outage) = w.outage_during("alpha", "beta", || c.cut_all());
        eprintln!("every path cut, alpha fenced and its service on beta: {outage:?}");
        assert!(
            w.switch().is_off(c.ns("alpha")),
            "beta serves, and alpha is not off\n{}",
            c.log_tails(60)
        );
        assert!(c.log("beta").contains(&format!("alpha{FENCED}")));

        // alpha boots again, into the partition; beta's device is in its
        // reach now: a fence of beta would power it off.
        switch.connect("beta", c.ns("beta"), &[]);
        let offset = c.log_len("alpha");
        boot(&w, &alpha);
        c.wait_until("alpha's new hamond answers", WAIT, |s| {
            s.get("alpha").is_some()
        });
        stays_on(&w, watch, "beta", None, "alpha booted into the partition");
        let log = c.log_since("alpha", offset);
        assert!(
            !log.contains(FENCING) && !log.contains(FENCED),
            "alpha fenced beta, which it has not seen since its boot:\n{log}"
        );
        assert!(!w.app_running("alpha"), "alpha started the service");

        heal(&w, watch, "beta", "alpha", None);
    });
}

#[test]
fn an_asymmetric_cut_the_standby_cannot_hear_fences_once() {
    if !require_root() {
        return;
    }
    one_way_cut("part_oneway_b", "alpha");
}

#[test]
fn an_asymmetric_cut_the_holder_cannot_hear_fences_once() {
    if !require_root() {
        return;
    }
    one_way_cut("part_oneway_a", "beta");
}

/// Cuts everything `unheard` sends to its peer, on every path (the LANs
/// and the cable), while it still hears its peer. Liveness is two-way, so
/// both lose each other: exactly one fence, by the holder alpha (rule 4:
/// its own fence waits the delay), the service stays on alpha, and after
/// the fenced beta is back and the cut healed, no fence loop.
#[track_caller]
fn one_way_cut(test: &str, unheard: &str) {
    let w = start(test, fencing_both());
    let c = w.cluster();
    let own = NODES.map(|n| OwnAddresses::of(&w, n));
    watched(&w, |watch| {
        for net in [LAN1, LAN2] {
            c.cut_udp_one_way(net, unheard, c.peer_of(unheard));
        }
        c.cut_serial_one_way(unheard);
        let fenced = wait_fenced(&w, watch);
        let keeper = c.peer_of(fenced);
        assert_eq!(
            keeper,
            "alpha",
            "rule 4: the holder's fence waits the delay, so the holder shoots first\n{}",
            c.log_tails(60)
        );
        w.wait_served_by(keeper);
        stays_on(&w, watch, keeper, Some(fenced), "after the fence");
        assert_eq!(c.log_count(keeper, FENCED), 1, "{}", c.log(keeper));
        assert_eq!(c.log_count(fenced, FENCED), 0, "{}", c.log(fenced));
        heal(&w, watch, keeper, fenced, Some(&own[index(fenced)]));
    });
}

/// How long the paused start or stop of the failover tests waits: ample
/// time for the test to see it begin and to cut.
const PAUSE: Duration = Duration::from_secs(5);

/// Starts the operator's FailOver of the service (from alpha to beta) and
/// cuts every path once `node` runs the paused `phase` shell
/// ([`PAUSED_STOP`] or [`PAUSED_START`]); checks that it still runs after
/// the cut: the failover is mid-way. Returns the length of each node's
/// log before the FailOver.
#[track_caller]
fn cut_mid_failover(w: &WebService, watch: &Watch, node: &str, phase: &str) -> [u64; 2] {
    let c = w.cluster();
    let offsets = NODES.map(|n| c.log_len(n));
    let done = c.service_op("alpha", ServiceOp::FailOver, SERVICE);
    assert!(done.is_ok(), "{done:?}");
    poll_until(
        w,
        &format!("{node} running its {phase}"),
        WAIT,
        || watch.check(),
        || pid_in(c.ns(node), phase).is_some(),
    );
    c.cut_all();
    assert!(
        pid_in(c.ns(node), phase).is_some(),
        "the cut came after {node}'s {phase}: not in the middle of the failover"
    );
    offsets
}

/// The end of a cut mid-failover: one node fences the other (it must be
/// `keeper`, `why`); once `keeper` logged `settled` after `offsets` (the
/// failover's step it was in is over), the service settles on `keeper`
/// alone (its hasvrd names itself owner) and stays there, and after the
/// heal and the fenced node's boot (`own`: the addresses of each node) it
/// stays put.
#[track_caller]
fn settles_after_the_fence(
    w: &WebService,
    watch: &Watch,
    own: &[OwnAddresses; 2],
    offsets: [u64; 2],
    (keeper, why): (&str, &str),
    settled: &str,
) {
    let c = w.cluster();
    let fenced = wait_fenced(w, watch);
    assert_eq!(c.peer_of(fenced), keeper, "{why}\n{}", c.log_tails(60));
    wait_log_since(w, keeper, offsets[index(keeper)], settled);
    assert_eq!(one_claimant(w, &[keeper], || watch.check()), keeper);
    w.wait_served_by(keeper);
    stays_on(w, watch, keeper, Some(fenced), "after the fence");
    assert_eq!(c.log_count(fenced, FENCED), 0, "{}", c.log(fenced));
    assert_eq!(c.log_count(keeper, FENCED), 1, "{}", c.log(keeper));
    heal(w, watch, keeper, fenced, Some(&own[index(fenced)]));
}

#[test]
fn a_cut_while_the_holder_stops_for_a_failover_leaves_the_service_on_it() {
    if !require_root() {
        return;
    }
    let w = start(
        "part_midstop",
        WebSpec {
            stop_pause: Some(PAUSE),
            ..fencing_both()
        },
    );
    let own = NODES.map(|n| OwnAddresses::of(&w, n));
    watched(&w, |watch| {
        let offsets = cut_mid_failover(&w, watch, "alpha", PAUSED_STOP);
        // alpha still holds the service while it stops: it shoots first.
        // Its stop done, it releases the service for beta, which is off:
        // once it waited the start timeout for beta, it takes it back.
        settles_after_the_fence(
            &w,
            watch,
            &own,
            offsets,
            (
                "alpha",
                "rule 4: alpha, the holder while it stops, shoots first",
            ),
            "released, and no other node is up and able to take it over",
        );
    });
}

#[test]
fn a_cut_while_the_standby_starts_after_a_failover_leaves_the_service_on_it() {
    if !require_root() {
        return;
    }
    let w = start(
        "part_midstart",
        WebSpec {
            start_pause: Some(PAUSE),
            ..fencing_both()
        },
    );
    let own = NODES.map(|n| OwnAddresses::of(&w, n));
    watched(&w, |watch| {
        let offsets = cut_mid_failover(&w, watch, "beta", PAUSED_START);
        assert!(!w.app_running("beta"), "beta's start was not paused");
        settles_after_the_fence(
            &w,
            watch,
            &own,
            offsets,
            (
                "beta",
                "rule 4: beta, granted the service and starting it, shoots first",
            ),
            "start of application done",
        );
    });
}
