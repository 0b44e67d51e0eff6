//! A namespaced node booted again after a power-off (a fence, a watchdog
//! reset): what the power switch's `on` and the node's boot would do. The
//! switch flushed the node's addresses and killed its daemons; [`boot`]
//! (for the [`WebService`] fixture) and [`boot_node`] (any
//! [`TestCluster`]) give it back its own addresses (those saved with
//! [`OwnAddresses`] while it ran, never a service's floating IP), a new
//! boot id ([`TestCluster::new_boot`]: nothing it ran survived) and start
//! its hamond (which starts its hasvrd when the cluster's spec says so).
//! The nftables cuts of the test stay as they are: a node may boot into a
//! partition.

use crate::cluster::TestCluster;
use crate::power::PowerSwitch;
use crate::web::WebService;

/// A node's own global addresses: (interface, address/prefix, IPv6).
#[derive(Clone, Debug)]
pub struct OwnAddresses {
    node: String,
    addrs: Vec<(String, String, bool)>,
}

impl OwnAddresses {
    /// `node`'s global addresses now, but the web service's floating IP.
    #[track_caller]
    pub fn of(w: &WebService, node: &str) -> OwnAddresses {
        OwnAddresses::in_cluster(w.cluster(), node, Some(&w.fip().to_string()))
    }

    /// `node`'s global addresses now in cluster `c`, but `floating` (an
    /// address without its prefix) if given.
    #[track_caller]
    pub fn in_cluster(c: &TestCluster, node: &str, floating: Option<&str>) -> OwnAddresses {
        let fip = floating.map(|f| format!("{f}/"));
        let shown = c.ns(node).ip(&["-o", "addr", "show", "scope", "global"]);
        let addrs: Vec<(String, String, bool)> = shown
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                let dev = f.get(1)?.split('@').next()?;
                let (family, cidr) = (*f.get(2)?, *f.get(3)?);
                let floating = fip.as_ref().is_some_and(|fip| cidr.starts_with(fip));
                (matches!(family, "inet" | "inet6") && !floating)
                    .then(|| (dev.to_owned(), cidr.to_owned(), family == "inet6"))
            })
            .collect();
        assert!(!addrs.is_empty(), "{node} has no address: {shown:?}");
        OwnAddresses {
            node: node.to_owned(),
            addrs,
        }
    }
}

/// Boots the powered-off node of `own` again: its addresses back, a new
/// boot id, its hamond started. Panics if the node is not off.
#[track_caller]
pub fn boot(w: &WebService, own: &OwnAddresses) {
    boot_node(w.cluster(), w.switch(), own);
}

/// [`boot`] for a node of `c` that `switch` powered off.
#[track_caller]
pub fn boot_node(c: &TestCluster, switch: &PowerSwitch, own: &OwnAddresses) {
    let node = own.node.as_str();
    let ns = c.ns(node);
    assert!(
        switch.is_off(ns),
        "{node} is not off: a boot follows a power-off\n{}",
        c.log_tails(40)
    );
    // The switch killed the daemons: reap them, so the harness knows.
    c.crash_hasvrd(node);
    c.crash(node);
    for (dev, cidr, v6) in &own.addrs {
        let mut args = vec!["addr", "add", cidr.as_str(), "dev", dev.as_str()];
        if *v6 {
            args.push("nodad");
        }
        ns.ip(&args);
    }
    c.new_boot(node);
    c.start_node(node);
}
