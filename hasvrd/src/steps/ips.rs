//! The floating-IPs step, and the task that keeps the IPs while the step
//! is up.
//!
//! Each IP goes on the first NIC listed for this node (`nics[node]`, in
//! order of preference) that has carrier, claimed with [`Fip::claim`]
//! (ARP probe for IPv4, DAD for IPv6: another host answering refuses it,
//! rule 8, and no other NIC is tried), labelled with the service's name.
//! An IP already on a listed NIC with carrier stays there.
//!
//! The keeper (started by the step, stopped before IPs are removed)
//! announces once more after the step's own announcement, then follows
//! carrier ([`Fip::watch_carrier`], subscribed before the IPs are claimed
//! so that no change is missed): when the NIC that holds an IP loses
//! carrier, the IP is removed from it and claimed on the next listed NIC
//! with carrier ([`StepEvent::IpMoved`]); the address must leave the old
//! NIC first, as [`Fip::claim`] refuses an address another NIC of this
//! node has (it cannot be reached there anyway). With no NIC to go to, the
//! IP stays where it is and [`StepEvent::PublicNetworkLost`] is sent; when
//! a listed NIC comes back, it is placed there again.
//!
//! The public network watch ([`watch_network`]) runs for as long as the
//! service's steps exist, whether the IPs are up here or not: it follows
//! the carrier of the NICs listed for this node and reports whether every
//! IP has one with carrier ([`StepEvent::PublicNetworkLost`],
//! [`StepEvent::PublicNetworkBack`]): at its start, on each change, and
//! whenever the keeper reported a loss (which may have had another cause,
//! such as a claim refused on a NIC with carrier).
//!
//! [`Fip::claim`]: crate::fip::Fip::claim
//! [`Fip::watch_carrier`]: crate::fip::Fip::watch_carrier

use super::{Ctx, Held, StepEvent, joined};
use crate::fip::CarrierWatch;
use futures_util::future::join_all;
use haschema::service::FloatingIp;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

/// Announcements of an IP when it is taken, and by
/// [`super::Steps::reannounce`] (RFC 5227's ANNOUNCE_NUM), the
/// `announce_interval` of the [`crate::fip::FipConfig`] apart.
pub const ANNOUNCE_COUNT: u32 = 2;

/// Where [`place`] left an IP.
enum Placed {
    /// It was on a listed NIC with carrier already.
    Kept(String),
    /// It was claimed on `to` (and removed from `from`, if it was on a NIC).
    Moved { from: Option<String>, to: String },
}

impl Ctx {
    /// The NICs listed for this node for `ip`.
    pub(super) fn nics<'a>(&self, ip: &'a FloatingIp) -> &'a [String] {
        ip.nics.get(&self.node).map_or(&[], Vec::as_slice)
    }

    /// Whether `nic` can carry a floating IP: it has carrier, and the ping
    /// watch does not count it failed; else why not.
    async fn usable(&self, nic: &str) -> Result<(), String> {
        match self.fip.carrier(nic).await {
            Ok(true) if self.unreachable(nic) => {
                Err(format!("no ping address answers through {nic}"))
            }
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("{nic} has no carrier")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Makes sure `ip` is on a listed NIC with carrier: kept where it is if it
/// is on one, else removed from where it is and claimed on the first
/// listed NIC with carrier that takes it. Without any such NIC it is left
/// where it is.
async fn place(ctx: &Ctx, ip: &FloatingIp) -> Result<Placed, String> {
    let (fip, addr) = (&ctx.fip, ip.addr);
    let holder = fip.holder(addr).await.map_err(|e| e.to_string())?;
    let mut usable = Vec::new();
    let mut unusable = Vec::new();
    for nic in ctx.nics(ip) {
        match ctx.usable(nic).await {
            Ok(()) => usable.push(nic),
            Err(e) => unusable.push(e),
        }
    }
    if let Some(h) = &holder
        && usable.contains(&h)
    {
        return Ok(Placed::Kept(h.clone()));
    }
    if usable.is_empty() {
        return Err(format!(
            "floating IP {addr}: no NIC listed for node {} can carry it ({}): check their \
             cables and switch ports (`ip link` shows NO-CARRIER), or list another NIC",
            ctx.node,
            unusable.join("; ")
        ));
    }
    if let Some(h) = &holder {
        fip.remove(h, addr, ip.prefix)
            .await
            .map_err(|e| e.to_string())?;
    }
    for nic in usable {
        match fip.claim(nic, addr, ip.prefix, ctx.name()).await {
            Ok(()) => {
                return Ok(Placed::Moved {
                    from: holder,
                    to: nic.clone(),
                });
            }
            Err(e) if e.is_taken() => return Err(e.to_string()),
            Err(e) => {
                tracing::warn!(
                    "service {}: cannot claim {addr} on {nic}: {e}; trying its next NIC",
                    ctx.name()
                );
                unusable.push(e.to_string());
            }
        }
    }
    Err(format!(
        "floating IP {addr} could not be claimed on any NIC listed for node {}: {}",
        ctx.node,
        unusable.join("; ")
    ))
}

/// Announces `addr` once on `nic`; a failure is logged (the address is
/// up; neighbours with a stale cache learn it by their own ARP).
async fn announce(ctx: &Ctx, nic: &str, addr: IpAddr) {
    if let Err(e) = ctx.fip.announce(nic, addr, 1).await {
        tracing::warn!(
            "service {}: {e}; neighbours that cached another MAC for {addr} reach it only once \
             their cache expires",
            ctx.name()
        );
    }
}

/// The step: subscribes to carrier changes, places every IP (all at
/// once: each claim probes for a while), announces each once, and returns
/// the keeper to run in the background.
pub(super) async fn start(ctx: &Arc<Ctx>) -> Result<impl Future<Output = ()> + use<>, String> {
    let watch = ctx.fip.watch_carrier().await.map_err(|e| e.to_string())?;
    let _held = ctx.ip_lock.lock().await;
    let placed = join_all(ctx.cfg.ips.iter().map(|ip| place(ctx, ip))).await;
    let mut errors = Vec::new();
    let mut up = Vec::new();
    for (ip, result) in ctx.cfg.ips.iter().zip(placed) {
        match result {
            Ok(Placed::Kept(nic) | Placed::Moved { to: nic, .. }) => {
                tracing::info!(
                    "service {}: floating IP {}/{} is on {nic}",
                    ctx.name(),
                    ip.addr,
                    ip.prefix
                );
                up.push((nic, ip.addr));
            }
            Err(e) => errors.push(e),
        }
    }
    joined(errors)?;
    join_all(up.iter().map(|(nic, addr)| announce(ctx, nic, *addr))).await;
    Ok(keep(ctx.clone(), watch))
}

/// Announces, once, each IP held on this node.
pub(super) async fn announce_round(ctx: &Ctx) {
    let _held = ctx.ip_lock.lock().await;
    let mut up = Vec::new();
    for ip in &ctx.cfg.ips {
        match ctx.fip.holder(ip.addr).await {
            Ok(Some(nic)) => up.push((nic, ip.addr)),
            Ok(None) => {}
            Err(e) => tracing::warn!("service {}: cannot announce {}: {e}", ctx.name(), ip.addr),
        }
    }
    join_all(up.iter().map(|(nic, addr)| announce(ctx, nic, *addr))).await;
}

/// The keeper: the remaining announcements, and the carrier watch.
async fn keep(ctx: Arc<Ctx>, mut watch: CarrierWatch) {
    let announcing = async {
        for _ in 1..ANNOUNCE_COUNT {
            tokio::time::sleep(ctx.fip.config().announce_interval).await;
            announce_round(&ctx).await;
        }
    };
    let watching = async {
        // The IPs reported lost, until they are on a NIC with carrier.
        let mut lost = HashSet::new();
        loop {
            let ours = tokio::select! {
                event = watch.recv() => match event {
                    Some(e) => ctx.cfg.ips.iter().any(|ip| ctx.nics(ip).contains(&e.nic)),
                    None => break,
                },
                () = ctx.nics_changed.notified() => true,
            };
            if ours {
                follow(&ctx, &mut lost).await;
            }
        }
        tracing::error!(
            "service {}: NIC carrier is no longer watched (the kernel's link notifications \
             stopped): a NIC that fails will not move its floating IPs; restart hasvrd",
            ctx.name()
        );
    };
    tokio::join!(announcing, watching);
}

/// After a carrier change: places every IP again, and reports moves and
/// losses.
async fn follow(ctx: &Ctx, lost: &mut HashSet<IpAddr>) {
    let _held = ctx.ip_lock.lock().await;
    let placed = join_all(ctx.cfg.ips.iter().map(|ip| place(ctx, ip))).await;
    let service = ctx.name().to_owned();
    for (ip, result) in ctx.cfg.ips.iter().zip(placed) {
        let addr = ip.addr;
        match result {
            Ok(Placed::Kept(nic)) => {
                if lost.remove(&addr) {
                    tracing::info!("service {service}: floating IP {addr} is back on {nic}");
                }
            }
            Ok(Placed::Moved { from, to }) => {
                lost.remove(&addr);
                tracing::warn!(
                    "service {service}: floating IP {addr} moved from {} to {to}",
                    from.as_deref().unwrap_or("no NIC")
                );
                announce(ctx, &to, addr).await;
                ctx.send(StepEvent::IpMoved {
                    service: service.clone(),
                    addr,
                    from_nic: from,
                    to_nic: to,
                });
            }
            Err(reason) => {
                if lost.insert(addr) {
                    tracing::error!("service {service}: public network lost: {reason}");
                    ctx.send(StepEvent::PublicNetworkLost {
                        service: service.clone(),
                        reason,
                    });
                    // The true state follows this report.
                    ctx.recheck.notify_one();
                }
            }
        }
    }
}

/// Whether every floating IP has a NIC listed for this node with carrier;
/// else which have none, and why.
async fn network(ctx: &Ctx) -> Result<(), String> {
    let mut missing = Vec::new();
    for ip in &ctx.cfg.ips {
        let mut why = Vec::new();
        let mut ok = false;
        for nic in ctx.nics(ip) {
            match ctx.usable(nic).await {
                Ok(()) => {
                    ok = true;
                    break;
                }
                Err(e) => why.push(e),
            }
        }
        if !ok {
            if why.is_empty() {
                why.push("none is listed".to_owned());
            }
            missing.push(format!(
                "public network lost on {}: floating IP {} has no usable NIC ({})",
                ctx.node,
                ip.addr,
                why.join("; ")
            ));
        }
    }
    joined(missing)
}

/// The public network watch: reports the state at once, then each change
/// of it, and again after each `recheck`.
pub(super) async fn watch_network(ctx: Arc<Ctx>, mut watch: CarrierWatch) {
    let service = ctx.name().to_owned();
    let mut told: Option<bool> = None;
    let mut again = true;
    loop {
        let state = network(&ctx).await;
        if again || told != Some(state.is_ok()) {
            told = Some(state.is_ok());
            ctx.send(match state {
                Ok(()) => StepEvent::PublicNetworkBack {
                    service: service.clone(),
                },
                Err(reason) => StepEvent::PublicNetworkLost {
                    service: service.clone(),
                    reason,
                },
            });
        }
        again = loop {
            tokio::select! {
                event = watch.recv() => match event {
                    Some(e) if ctx.cfg.ips.iter().any(|ip| ctx.nics(ip).contains(&e.nic)) => {
                        break false;
                    }
                    Some(_) => {}
                    None => {
                        tracing::error!(
                            "service {service}: NIC carrier is no longer watched (the kernel's \
                             link notifications stopped): a lost or returning public network \
                             will not be noticed while the service is not here; restart hasvrd"
                        );
                        return;
                    }
                },
                () = ctx.recheck.notified() => break true,
            }
        };
    }
}

/// Removes `ip` from every NIC of this node that has it.
async fn remove(ctx: &Ctx, ip: &FloatingIp) -> Result<(), String> {
    let mut done = Vec::new();
    while let Some(nic) = ctx.fip.holder(ip.addr).await.map_err(|e| e.to_string())? {
        if done.contains(&nic) {
            return Err(format!(
                "floating IP {} is on {nic} again after it was removed: something adds it \
                 back (a network manager, another tool); stop that, then stop the service again",
                ip.addr
            ));
        }
        ctx.fip
            .remove(&nic, ip.addr, ip.prefix)
            .await
            .map_err(|e| e.to_string())?;
        done.push(nic);
    }
    Ok(())
}

/// The stop (the keeper is stopped already): removes every IP from
/// whichever NIC has it; one on no NIC counts as removed.
pub(super) async fn stop(ctx: &Ctx) -> Result<(), String> {
    let _held = ctx.ip_lock.lock().await;
    let removed = join_all(ctx.cfg.ips.iter().map(|ip| remove(ctx, ip))).await;
    joined(removed.into_iter().filter_map(Result::err).collect())
}

/// Adds the IPs held on this node.
pub(super) async fn held(ctx: &Ctx, held: &mut Held) {
    for ip in &ctx.cfg.ips {
        match ctx.fip.holder(ip.addr).await {
            Ok(Some(nic)) => held.ips.push((ip.addr, nic)),
            Ok(None) => {}
            Err(e) => held.unknown.push(e.to_string()),
        }
    }
}
