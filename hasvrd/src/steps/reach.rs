//! The ping watch of the public network ([`super::Steps::set_ping`]):
//! every `check_interval`, for as long as the service's steps exist and
//! the cluster has ping addresses (`[cluster] ping`), each NIC listed for
//! this node for the service's floating IPs asks every ping address once
//! through that NIC (`ping -I NIC`, the storage check's
//! [`super::storage::ping`]). A NIC through which none answers
//! `check_tko` times in a row counts as failed, as a NIC without carrier
//! does (its IPs move to the next listed NIC, or the public network is
//! lost: [`super::StepEvent::PublicNetworkLost`]); it counts again after
//! one check passes.

use super::Ctx;
use super::storage::{Tally, Tell, ping};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::time::MissedTickBehavior;

/// The watch: checks every `check_interval`, and tells the public network
/// watch and the IP keeper when a NIC fails or counts again.
pub(super) async fn watch(ctx: Arc<Ctx>) {
    let service = ctx.name().to_owned();
    let mut nics: Vec<String> = ctx
        .cfg
        .ips
        .iter()
        .flat_map(|ip| ctx.nics(ip).iter().cloned())
        .collect();
    nics.sort();
    nics.dedup();
    let mut tallies: BTreeMap<String, Tally> = nics
        .iter()
        .map(|n| (n.clone(), Tally::new(ctx.settings.check_tko)))
        .collect();
    // ping waits whole seconds, at least one.
    let timeout = ctx.settings.check_interval;
    let mut ticks = tokio::time::interval(ctx.settings.check_interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let addrs = ctx.ping_addresses();
        if addrs.is_empty() {
            continue;
        }
        let checks = nics.iter().map(|nic| {
            let addrs = addrs.clone();
            async move {
                let mut errors = Vec::new();
                for addr in addrs {
                    match ping(addr, Some(nic), timeout, "the ping address").await {
                        Ok(()) => return (nic, Ok(())),
                        Err(e) => errors.push(e),
                    }
                }
                (nic, Err(errors.join("; ")))
            }
        });
        for (nic, result) in futures_util::future::join_all(checks).await {
            let Some(tally) = tallies.get_mut(nic) else {
                continue;
            };
            let changed = match tally.record(result) {
                Tell::Lost { errors } => {
                    tracing::error!(
                        "service {service}: no ping address answers through {nic} ({} checks \
                         in a row): {errors}; it counts as failed, as without carrier. Check \
                         that NIC's cable, switch port and VLAN",
                        tally.tko
                    );
                    ctx.set_unreachable(nic, true)
                }
                Tell::Back { after_loss: true } => {
                    tracing::info!("service {service}: a ping address answers through {nic} again");
                    ctx.set_unreachable(nic, false)
                }
                Tell::Failed { count, errors } => {
                    tracing::warn!(
                        "service {service}: no ping address answered through {nic} ({count} of \
                         {} in a row): {errors}",
                        tally.tko
                    );
                    false
                }
                Tell::Back { .. } | Tell::Nothing | Tell::StillLost { .. } => false,
            };
            if changed {
                ctx.recheck.notify_one();
                ctx.nics_changed.notify_one();
            }
        }
    }
}
