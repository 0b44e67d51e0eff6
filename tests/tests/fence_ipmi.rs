//! IPMI fencing end to end, through Debian's `fence_ipmilan` (and the
//! `ipmitool` it runs) against simulated BMCs (`hatests::ipmi::Bmc`:
//! OpenIPMI's `ipmi_sim`, whose chassis power is the node's power switch):
//!
//! * `ipmitool chassis power cycle` powers the node off, and the BMC then
//!   reports it off and refuses to power it on;
//! * `fence_ipmilan` run by hand: status on, a wrong password refused, off
//!   powers the node off (its hamond is gone), status off;
//! * a two-node cluster with one `fence_ipmilan` `[[fence]]` device per
//!   node: the active node's hamond freezes (SIGSTOP), its peer fences it
//!   through its BMC once and takes its web service over, never running
//!   it twice.
//!
//! The time a fence took is printed (informational, never asserted).

use haschema::ctl::State::{Down, Up};
use hatests::command::Finished;
use hatests::ipmi::Bmc;
use hatests::web::{NODES, WebService, WebSpec};
use hatests::{ClusterSpec, Netns, TestCluster, require_root};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

/// Longest wait for a state change (robust on a loaded 2-core machine).
const WAIT: Duration = Duration::from_secs(20);

/// Panics, with the BMC's logs, unless `run` exited with `code`.
#[track_caller]
fn expect_code(bmc: &Bmc, run: &Finished, code: i32, what: &str) {
    assert_eq!(run.code(), Some(code), "{what}: {run:?}\n{}", bmc.logs());
}

/// How long after `since` the BMC's hook powered the node off, and how
/// long that took from the first request it got after `since` (the fence
/// agent's IPMI conversation). For the log only.
fn fence_timing(bmc: &Bmc, since: SystemTime) -> String {
    let after = |at: SystemTime| at.duration_since(since).unwrap_or_default();
    let Some(off) = bmc.power_offs().first().map(|c| c.at) else {
        return "no power-off".into();
    };
    let first = bmc
        .calls()
        .into_iter()
        .find(|c| c.at >= since)
        .map_or(off, |c| c.at);
    format!(
        "powered off {:?} after the start, {:?} after the BMC's first request",
        after(off),
        off.duration_since(first).unwrap_or_default()
    )
}

#[test]
fn ipmitool_power_cycle_powers_the_node_off_and_it_stays_off() {
    if !require_root() {
        return;
    }
    let node = Netns::new("ipmi-node");
    let admin = Netns::new("ipmi-admin");
    let mut bmc = Bmc::start("cycle");
    bmc.power(&node, &[]);
    bmc.reach_from(&admin);
    let mut sleeper = node
        .command("sleep")
        .arg("600")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();

    let status = bmc.ipmitool(&admin, &["chassis", "power", "status"]);
    expect_code(&bmc, &status, 0, "power status");
    assert!(status.stdout.contains("Chassis Power is on"), "{status:?}");

    let cycle = bmc.ipmitool(&admin, &["chassis", "power", "cycle"]);
    expect_code(&bmc, &cycle, 0, "power cycle");

    let killed = sleeper.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&killed),
        Some(9)
    );
    assert!(node.pids().is_empty());
    let status = bmc.ipmitool(&admin, &["chassis", "power", "status"]);
    assert!(status.stdout.contains("Chassis Power is off"), "{status:?}");
    // A test node comes back only when the test starts it again.
    let on = bmc.ipmitool(&admin, &["chassis", "power", "on"]);
    assert_ne!(on.code(), Some(0), "power on: {on:?}");
    let offs = bmc.power_offs();
    assert_eq!(offs.len(), 1, "{}", bmc.logs());
    assert_eq!(offs[0].request, "power");
}

#[test]
fn fence_ipmilan_by_hand_powers_a_node_off() {
    if !require_root() {
        return;
    }
    let c = TestCluster::new("ipmi_hand", &["alpha", "beta"]);
    let mut bmc = Bmc::start("alpha");
    bmc.power(c.ns("alpha"), &[]);
    bmc.reach_from(c.ns("beta"));
    c.wait_until("alpha and beta see each other", WAIT, |s| {
        s.peer_state("alpha", "beta") == Some(Up) && s.peer_state("beta", "alpha") == Some(Up)
    });
    let beta = c.ns("beta");

    let status = bmc.fence_ipmilan(beta, "status", bmc.password());
    expect_code(&bmc, &status, 0, "status");
    assert!(status.stdout.contains("Status: ON"), "{status:?}");
    let refused = bmc.fence_ipmilan(beta, "status", "not-the-password");
    expect_code(&bmc, &refused, 1, "status with a wrong password");
    let refused = bmc.fence_ipmilan(beta, "off", "not-the-password");
    expect_code(&bmc, &refused, 1, "off with a wrong password");
    assert!(c.pid("alpha").is_some() && !c.ns("alpha").pids().is_empty());

    let began = SystemTime::now();
    let run = Instant::now();
    let off = bmc.fence_ipmilan(beta, "off", bmc.password());
    let ran = run.elapsed();
    expect_code(&bmc, &off, 0, "off");
    eprintln!(
        "fence_ipmilan off: {}; the agent ran {ran:?}",
        fence_timing(&bmc, began)
    );

    // Every process of alpha is gone, its hamond with them.
    assert!(c.ns("alpha").pids().is_empty());
    c.crash("alpha"); // reap the killed daemon
    let status = bmc.fence_ipmilan(beta, "status", bmc.password());
    expect_code(&bmc, &status, 2, "status after off");
    assert!(status.stdout.contains("Status: OFF"), "{status:?}");
    c.wait_until("beta sees alpha down", WAIT, |s| {
        s.peer_state("beta", "alpha") == Some(Down)
    });
    assert_eq!(bmc.power_offs().len(), 1, "{}", bmc.logs());
}

#[test]
fn a_frozen_owner_is_fenced_through_its_bmc_and_its_service_taken_over() {
    if !require_root() {
        return;
    }
    let mut bmcs = NODES.map(Bmc::start);
    let mut cluster = ClusterSpec::with_nodes(&NODES);
    for (node, bmc) in NODES.iter().zip(&bmcs) {
        cluster
            .extra_config
            .push_str(&bmc.fence_table(&format!("ipmi-{node}"), node));
    }
    let w = WebService::start_with(
        "ipmi_fence",
        WebSpec {
            cluster: Some(cluster),
            ..WebSpec::default()
        },
    );
    let c = w.cluster();
    for (node, bmc) in NODES.iter().zip(&mut bmcs) {
        bmc.power(c.ns(node), &[]);
        for from in NODES {
            bmc.reach_from(c.ns(from));
        }
    }
    let [alpha_bmc, beta_bmc] = &bmcs;
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");

    // alpha's hamond freezes while its service runs: beta must power alpha
    // off through alpha's BMC before it starts the service.
    let (began, outage) = w.outage_during("alpha", "beta", || {
        let began = SystemTime::now();
        c.stop("alpha");
        began
    });
    let log = c.log("beta");
    eprintln!(
        "IPMI fence of alpha: {}; client outage {:?}; beta's hamond: {}",
        fence_timing(alpha_bmc, began),
        outage.gap,
        log.lines()
            .find(|l| l.contains("fenced alpha (off) in"))
            .unwrap_or("no fence logged")
    );
    assert!(c.ns("alpha").pids().is_empty(), "alpha is not off");
    c.crash("alpha"); // reap the killed daemon
    let offs = alpha_bmc.power_offs();
    assert_eq!(offs.len(), 1, "{}", alpha_bmc.logs());
    assert!(offs[0].at >= began, "{offs:?}");
    assert!(
        beta_bmc.power_offs().is_empty(),
        "beta was powered off: {}",
        beta_bmc.logs()
    );
    assert_eq!(
        c.log_count("beta", "alpha is fenced (powered off by ipmi-alpha)"),
        1,
        "{log}"
    );
    assert!(
        !log.contains(alpha_bmc.password()),
        "the BMC's password reached beta's log"
    );
    // The service stays on beta alone.
    w.wait_served_by("beta");
    assert_eq!(w.holders(), ["beta"]);
}
