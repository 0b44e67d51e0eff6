//! A namespaced node of the [`WebService`] fixture booted again after a
//! power-off (a fence, a watchdog reset): what the power switch's `on`
//! and the node's boot would do. The switch flushed the node's addresses
//! and killed its daemons; [`boot`] gives it back its own addresses (those
//! saved with [`OwnAddresses::of`] while it ran, never the service's
//! floating IP), a new boot id ([`TestCluster::new_boot`]: nothing it ran
//! survived) and starts its hamond (which starts its hasvrd with
//! [`crate::web::WebSpec::hamond_runs_hasvrd`]). The nftables cuts of the
//! test stay as they are: a node may boot into a partition.
//!
//! [`TestCluster::new_boot`]: crate::TestCluster::new_boot

use crate::web::WebService;

/// A node's own global addresses: (interface, address/prefix, IPv6).
#[derive(Clone, Debug)]
pub struct OwnAddresses {
    node: String,
    addrs: Vec<(String, String, bool)>,
}

impl OwnAddresses {
    /// `node`'s global addresses now, but the service's floating IP.
    #[track_caller]
    pub fn of(w: &WebService, node: &str) -> OwnAddresses {
        let fip = format!("{}/", w.fip());
        let shown = w
            .cluster()
            .ns(node)
            .ip(&["-o", "addr", "show", "scope", "global"]);
        let addrs: Vec<(String, String, bool)> = shown
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                let dev = f.get(1)?.split('@').next()?;
                let (family, cidr) = (*f.get(2)?, *f.get(3)?);
                (matches!(family, "inet" | "inet6") && !cidr.starts_with(&fip))
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
    let c = w.cluster();
    let node = own.node.as_str();
    let ns = c.ns(node);
    assert!(
        w.switch().is_off(ns),
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
