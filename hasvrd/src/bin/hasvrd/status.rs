//! `hactl service status`: every service of this node with its owner and
//! its state on each of its nodes (this node's from its machine, the
//! others' as they advertised them) and its fail count on each of them
//! (failures since the last cleanup, expired ones left out: this node's
//! from its machine, the others' as advertised), and here; its fault, or
//! `standby` while this node is in node standby.

use crate::daemon::Daemon;
use haschema::ctl::{ServiceNode, ServiceStatus};

/// The report for every service of this node.
pub(crate) fn services(d: &Daemon) -> Vec<ServiceStatus> {
    d.units
        .iter()
        .map(|(name, unit)| ServiceStatus {
            name: name.clone(),
            owner: d.owners.get(name).cloned().flatten(),
            nodes: unit
                .cfg
                .nodes()
                .into_iter()
                .map(|node| {
                    if node == d.me {
                        ServiceNode {
                            node: node.to_owned(),
                            state: unit.svc.state().to_string(),
                            can_host: unit.svc.can_host(),
                            failures: unit.svc.fail_count(),
                        }
                    } else {
                        let (state, can_host, failures) = d
                            .peer_services
                            .get(&(node.to_owned(), name.clone()))
                            .cloned()
                            .unwrap_or_else(|| ("unknown".into(), false, 0));
                        ServiceNode {
                            node: node.to_owned(),
                            state,
                            can_host,
                            failures,
                        }
                    }
                })
                .collect(),
            failures: unit.svc.fail_count(),
            fault: unit
                .svc
                .fault()
                .map(|f| {
                    format!(
                        "{} of {} failed: {}",
                        if f.was_active {
                            "stop (active)"
                        } else {
                            "stop"
                        },
                        f.step,
                        f.reason
                    )
                })
                .or_else(|| {
                    let why = unit.svc.standby()?;
                    Some(format!("standby (node standby by {why})"))
                }),
        })
        .collect()
}
