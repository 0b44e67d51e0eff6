//! The tie-breaker (safety rule 1: third-party ping addresses decide only
//! who releases), on the two-node web service fixture with the power
//! switch as fencing device and the client's address on the public LAN as
//! the cluster's ping address (`[cluster] ping`).
//!
//! alpha runs the service; every heartbeat path is cut and at once
//! alpha's ICMP is dropped (nftables), so it reaches no ping address (its
//! NIC fails the ping watch too, with no peer left to fail over to). alpha sees no peer
//! and reaches nothing: it is isolated, logs an emergency, does not fence
//! beta, and releases its service. beta still reaches the ping address:
//! it fences alpha (the normal rule of a lost holder), then serves.
//!
//! The ping addresses also watch each NIC of a floating IP: with alpha's
//! ICMP dropped while the heartbeats work, its NIC counts as failed (as
//! without carrier): the service fails over to beta, and alpha says it
//! cannot host it.
//!
//! Leases (safety rule 3), with watchdogs and no fencing device: alpha
//! holds the service, is isolated, and its stop hangs. It stops renewing
//! its lease; once the lease ran out its watchdog is no longer petted and
//! resets it. beta, with no way to fence alpha, never takes the service.
//!
//! The floating IP is on at most one node at every poll.

use haschema::ctl::ServiceOp;
use hatests::cluster::ClusterSpec;
use hatests::require_root;
use hatests::scratch::{ScratchDir, pidfile_script, write_script};
use hatests::watchdog::Outcome;
use hatests::web::{Commands, NODES, SERVICE, WAIT, WebService, WebSpec};
use std::time::{Duration, Instant};

/// Drops every ICMP packet `node` sends (echo requests to the ping
/// addresses among them).
#[track_caller]
fn drop_icmp(w: &WebService, node: &str) {
    let table = "table inet hatests_icmp {\n\
                 \tchain output {\n\
                 \t\ttype filter hook output priority filter - 10; policy accept;\n\
                 \t\tmeta l4proto icmp counter drop\n\
                 \t}\n}\n";
    if let Err(e) = hatests::nft::script(w.cluster().ns(node), table) {
        panic!("{e}");
    }
}

/// The fence delay: the fence of the node that hosts the service waits
/// this long (rule 4), time for an isolated holder to release first.
const FENCE_DELAY: &str = "5s";
/// The watchdog's timeout W in the lease tests.
const W: Duration = Duration::from_secs(4);
/// The nodes' lease in the lease tests (`[watchdog] lease`).
const LEASE: &str = "6s";

/// The fixture with the power switch as fencing device, restarted with
/// the client's address as the cluster's ping address and [`FENCE_DELAY`].
#[track_caller]
fn start(test: &str) -> WebService {
    start_with(
        test,
        WebSpec {
            fencing: true,
            hamond_runs_hasvrd: true,
            ..WebSpec::default()
        },
    )
}

/// The fixture of `web`, restarted with the client's address as the
/// cluster's ping address (the config is written by the cluster before the
/// LAN exists), and with [`FENCE_DELAY`] when it fences and [`LEASE`] when
/// it has watchdogs; alpha holds the service.
#[track_caller]
fn start_with(test: &str, web: WebSpec) -> WebService {
    let fencing = web.fencing;
    let watchdog = web.cluster.as_ref().is_some_and(|c| c.watchdog.is_some());
    let w = WebService::start_with(test, web);
    let c = w.cluster();
    // Settled first, then both stopped: the standby first.
    w.wait_for("alpha holds the floating IP", || w.holders() == ["alpha"]);
    w.wait_state("beta", "STANDBY");
    for node in ["beta", "alpha"] {
        c.shutdown(node);
    }
    let path = c.config_path();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ping = format!("[cluster]\nping = [\"{}\"]\n", w.lan().host(254));
    let mut text = text.replacen("[cluster]\n", &ping, 1);
    if fencing {
        let fence = "nodes = [\"alpha\", \"beta\"]\ntimeout = \"20s\"\n";
        assert!(text.contains(fence), "no fence table in {text}");
        text = text.replacen(fence, &format!("{fence}delay = {FENCE_DELAY:?}\n"), 1);
    }
    if watchdog {
        let section = "[watchdog]\nenabled = true\n";
        assert!(text.contains(section), "no watchdog section in {text}");
        text = text.replacen(section, &format!("{section}lease = {LEASE:?}\n"), 1);
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // alpha first, so that it takes the service again; should beta get
    // it all the same, the operator's TakeOver brings it back.
    c.restart("alpha");
    c.start_node("beta");
    let end = Instant::now() + WAIT;
    while w.holders().is_empty() {
        assert!(
            Instant::now() < end,
            "nobody took the service\n{}",
            c.log_tails(40)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    if w.holders() != ["alpha"] {
        let done = c.service_op("alpha", ServiceOp::TakeOver, SERVICE);
        assert!(done.is_ok(), "{done:?}");
    }
    w
}

#[test]
fn an_isolated_holder_releases_and_the_peer_that_reaches_the_ping_address_fences_it() {
    if !require_root() {
        return;
    }
    let w = start("iso_holder");
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");

    let ((), outage) = w.outage_during("alpha", "beta", || {
        w.cluster().cut_all();
        drop_icmp(&w, "alpha");
    });
    eprintln!("isolated holder to the peer that reaches the ping address: {outage:?}");
    assert!(
        w.switch().is_off(w.cluster().ns("alpha")),
        "beta serves, and alpha is not off\n{}",
        w.cluster().log_tails(60)
    );
    let alpha = w.cluster().log("alpha");
    assert!(alpha.contains("ISOLATED: no other node is up"), "{alpha}");
    assert!(alpha.contains("not fencing beta"), "{alpha}");
    assert!(alpha.contains("this node is isolated"), "{alpha}");
    assert!(
        alpha.contains("released, and no other node is up"),
        "{alpha}"
    );
    assert!(!alpha.contains("beta is fenced"), "{alpha}");
    let beta = w.cluster().log("beta");
    assert!(beta.contains("alpha is fenced (powered off by"), "{beta}");
    assert!(!beta.contains("ISOLATED"), "{beta}");
    assert!(
        !beta.contains("none of the ping addresses answers"),
        "{beta}"
    );
    w.wait_state("beta", "ACTIVEACT");
    assert_eq!(w.holders(), ["beta"]);
}

#[test]
fn a_nic_through_which_no_ping_address_answers_fails_the_service_over() {
    if !require_root() {
        return;
    }
    let w = start("iso_nic");
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");

    let ((), outage) = w.outage_during("alpha", "beta", || drop_icmp(&w, "alpha"));
    eprintln!("fail-over after the ping addresses went silent through alpha's NIC: {outage:?}");
    let alpha = w.cluster().log("alpha");
    assert!(
        alpha.contains("no ping address answers through pub"),
        "{alpha}"
    );
    assert!(alpha.contains("public network lost"), "{alpha}");
    assert!(!alpha.contains("ISOLATED"), "{alpha}");
    // alpha cannot host it; nobody was fenced.
    w.wait_state("beta", "ACTIVEACT");
    assert_eq!(w.holders(), ["beta"]);
    assert!(!w.switch().is_off(w.cluster().ns("alpha")));
}

/// The lease test's fixture: watchdogs ([`W`], [`LEASE`]), no fencing
/// device, and instead of the web server a `sleep` whose stop hangs for a
/// minute once the file `hang` exists in the returned directory.
#[track_caller]
fn start_hanging(test: &str) -> (WebService, ScratchDir) {
    let dir = ScratchDir::new(&format!("{test}-app"));
    let hang = dir.join("hang");
    let body = pidfile_script(
        "",
        &format!("{}/app-$HA_NODE.pid", dir.path().display()),
        "sleep 100000",
        "",
        &format!("if [ -e \"{}\" ]; then sleep 60; fi", hang.display()),
    );
    let script = write_script(dir.path(), "app", &body);
    let w = start_with(
        test,
        WebSpec {
            hamond_runs_hasvrd: true,
            commands: Some(Commands::script(&script)),
            cluster: Some(ClusterSpec {
                watchdog: Some(W),
                ..ClusterSpec::with_nodes(&NODES)
            }),
            ..WebSpec::default()
        },
    );
    (w, dir)
}

#[test]
fn an_isolated_holder_whose_stop_hangs_is_reset_when_its_lease_runs_out() {
    if !require_root() {
        return;
    }
    // alpha holds the service and is cut off (no peer, no ping address)
    // while its stop hangs: isolated, it stops renewing its lease, and its
    // watchdog resets it once the lease ran out (safety rule 3). beta,
    // without a fencing device, never takes the service.
    let (w, dir) = start_hanging("iso_lease");
    let c = w.cluster();
    w.wait_for("alpha holds the floating IP", || w.holders() == ["alpha"]);
    w.wait_state("beta", "STANDBY");
    let from = c.log_len("alpha");
    std::fs::write(dir.join("hang"), "").unwrap_or_else(|e| panic!("hang: {e}"));
    c.cut_all();
    drop_icmp(&w, "alpha");
    match c.watchdog("alpha").wait_reset(WAIT) {
        Some(Outcome::Reset { .. }) => {}
        other => panic!(
            "alpha's watchdog did not reset it: {other:?}\n{}",
            c.log_tails(60)
        ),
    }
    let alpha = c.log_since("alpha", from);
    assert!(alpha.contains("this node is isolated"), "{alpha}");
    assert!(alpha.contains("lease: no longer renewed"), "{alpha}");
    assert!(
        alpha.contains("watchdog: not petted: a held lease ran out"),
        "{alpha}"
    );
    assert!(c.is_off("alpha"), "the watchdog's reset powers alpha off");
    assert_eq!(
        w.holders(),
        Vec::<&str>::new(),
        "beta has no fencing device"
    );
    assert_ne!(
        c.service_state("beta", SERVICE).as_deref(),
        Some("ACTIVEACT")
    );
}
