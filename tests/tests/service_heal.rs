//! Floating IPs through the real daemons beyond IPv4, and what a healed
//! partition does to them (issue 3, safety rules 1 and 8):
//!
//! * an IPv6 floating IP (DAD as the probe, unsolicited neighbour
//!   advertisements) is served on the active node, moves on an operator's
//!   FailOver and is served on the standby, never on both;
//! * with every heartbeat path cut and no fencing device the standby stalls
//!   and never starts the service; when the cut heals, the holder announces
//!   its floating IP again (gratuitous ARP, unsolicited neighbour
//!   advertisements), so a client whose neighbour entry went wrong
//!   comes back to it without sending anything;
//! * two claimants: `hactl fence confirm` of a peer that is cut off but
//!   alive is accepted (hamond can only check that the heartbeats show it
//!   down: the operator's oath is what rule 1 trusts). With the public LAN
//!   still joining the nodes, the false confirmation starts nothing twice:
//!   the standby's probe (ARP, or IPv6 duplicate address detection) finds
//!   the holder and refuses the address (rule 8's first line). With the
//!   nodes also cut from each other on the public LAN, both run the
//!   service; when the partition heals alpha, the higher-priority
//!   claimant, keeps it and beta stops at once with an emergency in its
//!   log (rule 8), although beta's grant is the newer one.

use haschema::ctl::{Request, Response, ServiceOp};
use hatests::never_twice::{one_claimant, poll_until};
use hatests::require_root;
use hatests::web::{NODES, SERVICE, WebService, WebSpec};
use std::time::{Duration, Instant};

/// How long a test watches a state that must hold (the standby stalled,
/// the holder unmoved): several deadtimes of the harness's paths (about
/// 2 s each).
const WATCH: Duration = Duration::from_secs(8);
/// Longest wait for what a heal brings (views merged, announcements, one
/// claimant stopped): generous for a loaded machine.
const HEAL_WAIT: Duration = Duration::from_secs(60);
/// How often the waits here look.
const POLL: Duration = Duration::from_millis(200);
/// A MAC address no node has: the client's forged neighbour entry.
const WRONG_MAC: &str = "02:00:00:00:0b:ad";
/// What hasvrd logs when it finds the service up here while another node
/// owns it (an emergency).
const STOPPED_AT_ONCE: &str = "while the service is up here: stopping it at once";

/// Watches for [`WATCH`]: the service stays on alpha alone (floating IP,
/// application) and beta stays STALLED, never starting it.
#[track_caller]
fn beta_stalls_and_alpha_keeps_it(w: &WebService) {
    let end = Instant::now() + WATCH;
    while Instant::now() < end {
        w.assert_never_twice();
        assert_eq!(w.holders(), ["alpha"], "the floating IP moved");
        assert!(w.app_running("alpha"), "alpha's application stopped");
        assert!(!w.app_running("beta"), "beta started the service");
        // A poll hasvrd does not answer in time (a loaded machine) is no
        // change of state.
        let state = w.cluster().service_state("beta", SERVICE);
        assert!(
            state.as_deref().is_none_or(|s| s == "STALLED"),
            "beta left STALLED: {state:?}\n{}",
            w.cluster().log_tails(40)
        );
        std::thread::sleep(POLL);
    }
}

/// Starts the service without fencing (its floating IP IPv6 with
/// `ipv6`), waits until alpha serves and beta stands by, then cuts every
/// heartbeat path (and, with `lan_cut`, the nodes from each other on the
/// public LAN) and waits until beta stalls.
#[track_caller]
fn partitioned(test: &str, ipv6: bool, lan_cut: bool) -> WebService {
    let w = WebService::start_with(
        test,
        WebSpec {
            ipv6,
            ..WebSpec::default()
        },
    );
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    if lan_cut {
        w.lan().isolate_nodes(true);
    }
    w.cluster().cut_all();
    w.wait_state("beta", "STALLED");
    w
}

/// The operator's false oath on beta: alpha, cut off but running, is
/// "confirmed off". Confirming beta itself is refused; the confirmation of
/// alpha is accepted, since the heartbeats show it down.
#[track_caller]
fn confirm_alpha_off_on_beta(w: &WebService) {
    let c = w.cluster();
    let me = Request::FenceConfirm {
        node: "beta".into(),
    };
    assert!(
        matches!(c.ask("beta", &me), Ok(Response::Error { .. })),
        "beta confirmed itself off"
    );
    let alpha = Request::FenceConfirm {
        node: "alpha".into(),
    };
    match c.ask("beta", &alpha) {
        Ok(Response::Done { .. }) => {}
        other => panic!(
            "fence confirm of the cut-off alpha: {other:?}\n{}",
            c.log_tails(40)
        ),
    }
}

#[test]
fn an_ipv6_floating_ip_is_served_on_the_active_node_and_moves_on_failover() {
    if !require_root() {
        return;
    }
    let w = WebService::start_with(
        "svc_ipv6",
        WebSpec {
            fencing: true,
            ipv6: true,
            ..WebSpec::default()
        },
    );
    assert!(w.fip().is_ipv6(), "{}", w.fip());
    w.wait_served_by("alpha");
    w.wait_state("alpha", "ACTIVE");
    w.wait_state("beta", "STANDBY");
    assert_eq!(w.holders(), ["alpha"]);
    assert_eq!(w.lan().neighbour(w.fip()), Some(w.mac("alpha")));

    let (done, _outage) = w.outage_during("alpha", "beta", || {
        w.cluster().service_op("beta", ServiceOp::FailOver, SERVICE)
    });
    assert!(done.is_ok(), "{done:?}");
    w.wait_state("beta", "ACTIVESTB");
    assert_eq!(w.holders(), ["beta"]);
    assert!(!w.app_running("alpha"), "alpha's application still runs");
    // The client follows beta's link-layer address.
    assert_eq!(w.lan().neighbour(w.fip()), Some(w.mac("beta")));
}

#[test]
fn after_a_heal_the_holder_announces_its_floating_ip_again() {
    if !require_root() {
        return;
    }
    reannounced_after_a_heal("svc_reannounce", false);
}

#[test]
fn after_a_heal_the_holder_advertises_its_ipv6_floating_ip_again() {
    if !require_root() {
        return;
    }
    reannounced_after_a_heal("svc_reannounce6", true);
}

/// The holder's announcements (gratuitous ARP, or unsolicited neighbour
/// advertisements with `ipv6`) after a heal of every heartbeat path: the
/// client's wrong neighbour entry comes back to alpha without the client
/// sending anything; beta never starts the service.
#[track_caller]
fn reannounced_after_a_heal(test: &str, ipv6: bool) {
    let w = partitioned(test, ipv6, false);
    let c = w.cluster();
    let fip = w.fip();
    let pid = w.app_pid("alpha");
    let alpha_mac = w.mac("alpha");
    beta_stalls_and_alpha_keeps_it(&w);

    // The client's entry for the floating IP goes wrong (as after another
    // claimant's announcement) and stays so while the cut lasts: nothing
    // announces it meanwhile, and the client sends nothing from now on.
    w.lan().forge_neighbour(fip, WRONG_MAC);
    beta_stalls_and_alpha_keeps_it(&w);
    assert_eq!(
        w.lan().neighbour(fip).as_deref(),
        Some(WRONG_MAC),
        "the client's entry changed before the heal"
    );

    c.restore_all();
    poll_until(
        &w,
        "the client's neighbour entry back at alpha's MAC after the heal",
        HEAL_WAIT,
        || {
            w.assert_never_twice();
            assert!(!w.app_running("beta"), "beta started the service");
        },
        || w.lan().neighbour(fip).as_deref() == Some(alpha_mac.as_str()),
    );
    w.wait_state("beta", "STANDBY");
    w.wait_served_by("alpha");
    assert_eq!(w.app_pid("alpha"), pid, "alpha's application was restarted");
    assert!(!w.app_running("beta"), "beta started the service");
}

#[test]
fn a_false_fence_confirm_with_the_public_lan_joined_is_stopped_by_the_arp_probe() {
    if !require_root() {
        return;
    }
    false_confirm_stopped_by_the_probe("svc_falseconf", false);
}

#[test]
fn a_false_fence_confirm_with_the_public_lan_joined_is_stopped_by_ipv6_dad() {
    if !require_root() {
        return;
    }
    false_confirm_stopped_by_the_probe("svc_falseconf6", true);
}

/// The operator's false confirmation of alpha on beta while the public LAN
/// still joins them (the floating IP IPv6 with `ipv6`): beta is granted the
/// service and tries to start it, but its probe of the floating IP (ARP,
/// or duplicate address detection) is answered by alpha, so the address is
/// never added; after the heal one node serves, never two at any poll.
#[track_caller]
fn false_confirm_stopped_by_the_probe(test: &str, ipv6: bool) {
    let w = partitioned(test, ipv6, false);
    let c = w.cluster();
    let offset = c.log_len("beta");
    confirm_alpha_off_on_beta(&w);
    poll_until(
        &w,
        "beta's probe refusing the floating IP alpha answers",
        HEAL_WAIT,
        || {
            w.assert_never_twice();
            assert!(w.app_running("alpha"), "alpha's application stopped");
        },
        || {
            c.log_since("beta", offset)
                .contains(&format!("address {} is already answered by", w.fip()))
        },
    );
    beta_keeps_off_the_ip(&w);

    c.restore_all();
    let keeper = one_claimant(&w, &NODES, || w.assert_never_twice());
    w.wait_served_by(keeper);
}

/// Watches for [`WATCH`]: the floating IP stays on alpha alone (beta's
/// retries are refused by the probe, never added).
#[track_caller]
fn beta_keeps_off_the_ip(w: &WebService) {
    let end = Instant::now() + WATCH;
    while Instant::now() < end {
        w.assert_never_twice();
        assert_eq!(w.holders(), ["alpha"], "the floating IP moved");
        std::thread::sleep(POLL);
    }
}

#[test]
fn two_claimants_after_a_heal_leave_one_and_the_other_stops_with_an_emergency() {
    if !require_root() {
        return;
    }
    let w = partitioned("svc_claimants", false, true);
    let c = w.cluster();
    confirm_alpha_off_on_beta(&w);
    // Cut off from alpha on the public LAN too, beta's probe hears nobody:
    // both nodes run the service (the false oath's damage, staged).
    poll_until(
        &w,
        "both nodes running the service",
        HEAL_WAIT,
        || {},
        || w.holders().len() == 2 && NODES.into_iter().all(|n| w.app_running(n)),
    );
    let offsets = NODES.map(|n| c.log_len(n));

    c.restore_all();
    w.lan().isolate_nodes(false);
    let keeper = one_claimant(&w, &NODES, || {});
    assert_eq!(
        keeper, "alpha",
        "rule 8: the lower-priority claimant (beta, the standby) stops"
    );
    let stopped = c.peer_of(keeper);
    let since = |node: &str| {
        let i = NODES.iter().position(|n| *n == node).unwrap_or_default();
        c.log_since(node, offsets[i])
    };
    let (kept_log, stopped_log) = (since(keeper), since(stopped));
    assert!(
        stopped_log
            .lines()
            .any(|l| l.contains(STOPPED_AT_ONCE) && l.contains("severity=\"emerg\"")),
        "{stopped} stopped without an emergency:\n{stopped_log}"
    );
    assert!(
        !kept_log.contains(STOPPED_AT_ONCE),
        "{keeper} stopped too:\n{kept_log}"
    );
    w.wait_served_by(keeper);
    eprintln!("after the heal {keeper} kept the service, {stopped} stopped it");
}
