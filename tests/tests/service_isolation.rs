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
//! The floating IP is on at most one node at every poll.

use haschema::ctl::ServiceOp;
use hatests::require_root;
use hatests::web::{SERVICE, WAIT, WebService, WebSpec};
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

/// The fixture, restarted with the client's address as the cluster's ping
/// address (the config is written by the cluster before the LAN exists)
/// and [`FENCE_DELAY`].
#[track_caller]
fn start(test: &str) -> WebService {
    let w = WebService::start_with(
        test,
        WebSpec {
            fencing: true,
            hamond_runs_hasvrd: true,
            ..WebSpec::default()
        },
    );
    let c = w.cluster();
    // Settled first, then both stopped: the standby first.
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    for node in ["beta", "alpha"] {
        c.shutdown(node);
    }
    let path = c.config_path();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ping = format!("[cluster]\nping = [\"{}\"]\n", w.lan().host(254));
    let fence = "nodes = [\"alpha\", \"beta\"]\ntimeout = \"20s\"\n";
    assert!(text.contains(fence), "no fence table in {text}");
    let text = text.replacen("[cluster]\n", &ping, 1).replacen(
        fence,
        &format!("{fence}delay = {FENCE_DELAY:?}\n"),
        1,
    );
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
