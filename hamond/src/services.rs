//! The cluster side of the protected services, in hamond: the lock table
//! that gives each service its one owner (`litecloud::lock`), the link to
//! this node's hasvrd (`haschema::svclink`), and the messages the nodes'
//! hasvrds exchange through the cluster (advertised service states,
//! forwarded operator commands, and a holder's request to be fenced after a
//! failed stop, sent to the one peer that takes its service over: safety
//! rule 7).
//!
//! No I/O here: the daemon loop feeds views, channel messages, hasvrd's
//! lines and fence results in, sends what [`Services::poll`] returns, and
//! writes the lock replica durably before anything else goes out
//! ([`Out::Persist`]).

use haschema::ctl::{ServiceNode, ServiceOp, ServiceStatus};
use haschema::svclink::{ToHamond, ToHasvrd};
use litecloud::lock::{self, LockId, LockTable};
use litecloud::view::{NodeSet, View};
use litecloud::wire::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use tokio::sync::mpsc::UnboundedSender;

/// First byte of this protocol's messages on the channel.
pub const PROTOCOL: u8 = 3;

/// The state of a service whose stop failed while its node held the lock.
const ERRORACT: &str = "ERRORACT";

/// What one node's hasvrd tells another's (JSON after [`PROTOCOL`]).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
enum PeerMsg {
    Advertise {
        service: String,
        state: String,
        can_host: bool,
        #[serde(default)]
        failures: u32,
    },
    Command {
        service: String,
        op: ServiceOp,
        by: String,
    },
    /// The sender's stop of `service` failed and it keeps the lock: fence
    /// it, then take the service over (safety rule 7).
    FenceMe { service: String, reason: String },
    /// The sender's hasvrd no longer runs `service` (its file was
    /// removed): forget what it advertised of it.
    Forget { service: String },
}

/// What the daemon must do for the services.
#[derive(Debug, PartialEq, Eq)]
pub enum Out {
    /// Send on the channel to `to`.
    Send { to: NodeId, data: Vec<u8> },
    /// Write the lock replica durably, before anything that follows.
    Persist(Vec<u8>),
    /// Fence `node`, which is up and asked for it (`cause`).
    Fence { node: NodeId, cause: String },
}

/// The services' cluster state on this node.
pub struct Services {
    me: NodeId,
    /// Node names by domain id.
    names: BTreeMap<NodeId, String>,
    lock: LockTable,
    /// The services hasvrd runs, by lock id.
    services: BTreeMap<LockId, String>,
    hasvrd: Option<UnboundedSender<ToHasvrd>>,
    /// hasvrd's hello was answered: it may be told things.
    greeted: bool,
    view: Option<View>,
    /// Nodes fenced (or confirmed off) since they left the view.
    off: NodeSet,
    /// Nodes that were up and went down (cleanly or not) and are not back
    /// in the view: a lock they hold is orphaned. A node not seen since
    /// this daemon started is not "lost" (it may be booting).
    lost: NodeSet,
    /// What hasvrd was last told of each service's owner, and of an
    /// orphaned lock's lost holder.
    told_owner: BTreeMap<LockId, Option<NodeId>>,
    told_lost: BTreeMap<LockId, NodeId>,
    /// This node's advertisements (state, can host, fail count), sent
    /// again to every new view.
    adverts: BTreeMap<String, (String, bool, u32)>,
    /// The other nodes' advertisements, for a hasvrd that (re)connects.
    peer_adverts: BTreeMap<(NodeId, String), (String, bool, u32)>,
    /// This node's services whose failed stop made hasvrd ask a peer to
    /// fence this node ([`ToHamond::FenceMe`]), while still in ERRORACT.
    fence_asked: std::collections::BTreeSet<String>,
    /// What the daemon must do, in order, with what hasvrd is told of
    /// grants and losses between: a replica persisted before a grant or a
    /// loss is reported, so a restart never forgets what hasvrd acted on.
    out: VecDeque<Item>,
}

/// One entry of [`Services::out`].
enum Item {
    Do(Out),
    Tell(ToHasvrd),
}

impl Services {
    /// `lock` is the table restored from the replica (or a fresh one).
    pub fn new(me: NodeId, names: BTreeMap<NodeId, String>, lock: LockTable) -> Services {
        Services {
            me,
            names,
            lock,
            services: BTreeMap::new(),
            hasvrd: None,
            greeted: false,
            view: None,
            off: NodeSet::default(),
            lost: NodeSet::default(),
            told_owner: BTreeMap::new(),
            told_lost: BTreeMap::new(),
            adverts: BTreeMap::new(),
            peer_adverts: BTreeMap::new(),
            fence_asked: Default::default(),
            out: VecDeque::new(),
        }
    }

    /// Next thing for the daemon to do.
    pub fn poll(&mut self) -> Option<Out> {
        self.pump();
        loop {
            match self.out.pop_front()? {
                Item::Do(out) => return Some(out),
                Item::Tell(msg) => self.tell(msg),
            }
        }
    }

    /// Whether hasvrd is connected.
    pub fn hasvrd_connected(&self) -> bool {
        self.hasvrd.as_ref().is_some_and(|tx| !tx.is_closed())
    }

    /// Whether this node holds any lock (known to hasvrd or not: after a
    /// restart the replica is read before hasvrd says hello).
    pub fn holds_any(&self) -> bool {
        self.lock.holds_any()
    }

    /// The services whose locks `node` holds, as far as this node knows.
    pub fn held_by(&self, node: NodeId) -> usize {
        self.services
            .keys()
            .filter(|&&l| self.lock.holder(l) == Some(node))
            .count()
    }

    /// Each service's advertised state on every node this node heard from
    /// (itself included, each with its advertised fail count), with the
    /// holder of its lock; hamond knows neither this node's own fail count
    /// nor faults apart (hasvrd does), so those are 0 and None.
    pub fn advertised(&self) -> Vec<ServiceStatus> {
        let me = self.name(self.me);
        let mine = self.adverts.iter().map(|(s, a)| (s, me.clone(), a));
        let peers = self
            .peer_adverts
            .iter()
            .map(|((n, s), a)| (s, self.name(*n), a));
        let mut by_service: BTreeMap<&String, Vec<ServiceNode>> = BTreeMap::new();
        for (service, node, (state, can_host, failures)) in mine.chain(peers) {
            by_service.entry(service).or_default().push(ServiceNode {
                node,
                state: state.clone(),
                can_host: *can_host,
                failures: *failures,
            });
        }
        by_service
            .into_iter()
            .map(|(name, nodes)| ServiceStatus {
                owner: self
                    .lock
                    .holder(haschema::service::lock_id(name))
                    .map(|h| self.name(h)),
                name: name.clone(),
                nodes,
                failures: 0,
                fault: None,
            })
            .collect()
    }

    /// A view was installed.
    pub fn view_installed(&mut self, view: View) {
        let before = self.view.map(|v| v.members).unwrap_or_default();
        self.view = Some(view);
        self.off = NodeSet::of(self.off.iter().filter(|&n| !view.members.contains(n)));
        self.lost = NodeSet::of(self.lost.iter().filter(|&n| !view.members.contains(n)));
        self.lock.view_installed(view);
        // The lock table ignores a confirmation of a node still in its view:
        // tell it again those that stand now that the node is out of it.
        for node in self.off.iter() {
            self.lock.node_fenced(node);
        }
        let others: Vec<NodeId> = self
            .names
            .keys()
            .copied()
            .filter(|&n| n != self.me)
            .collect();
        for node in others {
            let (was, is) = (before.contains(node), view.members.contains(node));
            if was != is {
                let name = self.name(node);
                self.tell(ToHasvrd::Peer { node: name, up: is });
                if !is {
                    self.peer_adverts.retain(|(n, _), _| *n != node);
                }
            }
            if is && !was {
                self.peer_restarted(node);
            }
        }
    }

    /// `node` came up, or its hamond restarted without leaving the view (a
    /// new incarnation): it knows nothing of this node's services, so they
    /// are advertised to it again.
    pub fn peer_restarted(&mut self, node: NodeId) {
        let adverts: Vec<_> = self.adverts.clone().into_iter().collect();
        for (service, (state, can_host, failures)) in adverts {
            self.send_peer(
                node,
                &PeerMsg::Advertise {
                    service,
                    state,
                    can_host,
                    failures,
                },
            );
        }
    }

    /// A peer left the cluster cleanly (its Leave was authenticated).
    pub fn node_left(&mut self, node: NodeId) {
        self.lost.insert(node);
        self.lock.node_left(node);
    }

    /// A peer that was up is lost (crash, partition).
    pub fn node_lost(&mut self, node: NodeId) {
        self.lost.insert(node);
    }

    /// `node` is confirmed off: by a fence device, or by the operator.
    pub fn node_fenced(&mut self, node: NodeId, by_operator: bool) {
        self.off.insert(node);
        self.lock.node_fenced(node);
        let name = self.name(node);
        self.tell(if by_operator {
            ToHasvrd::FenceConfirmed { node: name }
        } else {
            ToHasvrd::Fenced { node: name }
        });
    }

    /// A message of the lock or this protocol from `from`.
    pub fn message(&mut self, from: NodeId, data: &[u8]) -> Result<(), String> {
        match data.first() {
            Some(&lock::PROTOCOL) => {
                tracing::debug!("lock message from {from}: {data:?}");
                self.lock
                    .handle_message(from, data)
                    .map_err(|_| "malformed lock message".to_string())
            }
            Some(&PROTOCOL) => {
                let msg: PeerMsg = serde_json::from_slice(&data[1..])
                    .map_err(|e| format!("malformed service message: {e}"))?;
                let node = self.name(from);
                match msg {
                    PeerMsg::Advertise {
                        service,
                        state,
                        can_host,
                        failures,
                    } => {
                        self.peer_adverts
                            .insert((from, service.clone()), (state.clone(), can_host, failures));
                        self.tell(ToHasvrd::PeerService {
                            node,
                            service,
                            state,
                            can_host,
                            failures,
                        });
                    }
                    PeerMsg::Command { service, op, by } => {
                        tracing::info!(
                            "{} asked for {} of {service} here (by {by})",
                            node,
                            op.as_str()
                        );
                        self.tell(ToHasvrd::Command { service, op, by });
                    }
                    PeerMsg::FenceMe { service, reason } => {
                        self.fence_asked_by(from, service, reason)
                    }
                    PeerMsg::Forget { service } => {
                        self.peer_adverts.remove(&(from, service));
                    }
                }
                Ok(())
            }
            _ => Err("not a service message".into()),
        }
    }

    /// hasvrd (re)connected: `tx` reaches it.
    /// Nothing is said to it before its hello is answered with the
    /// welcome.
    pub fn attach(&mut self, tx: UnboundedSender<ToHasvrd>) {
        self.hasvrd = Some(tx);
        self.greeted = false;
        self.services.clear();
        self.told_owner.clear();
        self.told_lost.clear();
    }

    /// hasvrd went away. Its services keep their locks: a restarted hasvrd
    /// adopts them (or a dead node is fenced).
    pub fn detach(&mut self) {
        self.hasvrd = None;
    }

    /// One line from hasvrd.
    pub fn on_hasvrd(&mut self, msg: ToHamond) {
        match msg {
            ToHamond::Hello { services } => self.hello(services),
            ToHamond::Services { services } => self.services_changed(services),
            ToHamond::Request { service, priority } => {
                if let Some(l) = self.known(&service) {
                    tracing::debug!("hasvrd requests the lock of {service} ({priority})");
                    self.lock.request(l, priority);
                }
            }
            ToHamond::Release { service } => {
                if let Some(l) = self.known(&service) {
                    self.lock.release(l);
                }
            }
            ToHamond::Advertise {
                service,
                state,
                can_host,
                failures,
            } => {
                if state != ERRORACT {
                    self.fence_asked.remove(&service);
                }
                self.adverts
                    .insert(service.clone(), (state.clone(), can_host, failures));
                let msg = PeerMsg::Advertise {
                    service,
                    state,
                    can_host,
                    failures,
                };
                let members: Vec<NodeId> = self
                    .view
                    .map(|v| v.members.iter().filter(|&n| n != self.me).collect())
                    .unwrap_or_default();
                for to in members {
                    self.send_peer(to, &msg);
                }
            }
            ToHamond::Forward {
                node,
                service,
                op,
                by,
            } => match self.names.iter().find(|(_, n)| **n == node) {
                Some((&id, _)) => self.send_peer(id, &PeerMsg::Command { service, op, by }),
                None => tracing::warn!("hasvrd forwarded a command to unknown node {node}"),
            },
            // hasvrd's health: the daemon loop hands it to the watchdog.
            ToHamond::FenceMe {
                service,
                peer,
                reason,
            } => match self.names.iter().find(|(_, n)| **n == peer) {
                Some((&id, _)) => {
                    tracing::error!(
                        severity = "emerg",
                        "service {service}: {reason}; asking {peer} to fence this node (power it \
                         off) and take the service over"
                    );
                    self.fence_asked.insert(service.clone());
                    self.send_peer(id, &PeerMsg::FenceMe { service, reason });
                }
                None => tracing::warn!(
                    "hasvrd asked unknown node {peer} to fence this node: ignored; power this \
                     node off by hand"
                ),
            },
            ToHamond::Pong { .. } | ToHamond::SelfFence { .. } | ToHamond::Event(_) => {}
        }
    }

    /// `from` asks to be fenced after a failed stop of `service`. Refused
    /// while this node asked the same (both stops failed): two nodes never
    /// shoot each other, the operator decides (rule 4).
    fn fence_asked_by(&mut self, from: NodeId, service: String, reason: String) {
        let node = self.name(from);
        if let Some(mine) = self.fence_asked.first() {
            tracing::error!(
                severity = "emerg",
                "{node} asks to be fenced (service {service}: {reason}), but this node asked the \
                 same for {mine}: neither shoots; power one of them off by hand, or fix and \
                 Cleanup the failed stops"
            );
            return;
        }
        let cause = format!("it asked for it: the stop of {service} failed there ({reason})");
        self.out
            .push_back(Item::Do(Out::Fence { node: from, cause }));
    }

    fn hello(&mut self, services: Vec<String>) {
        let mut ids = BTreeMap::new();
        for name in services {
            let id = haschema::service::lock_id(&name);
            if let Some(other) = ids.insert(id, name.clone()) {
                let reason = format!(
                    "services {other} and {name} map to one lock number; rename one of them"
                );
                tracing::error!("hasvrd refused: {reason}");
                self.greeted = false;
                self.tell(ToHasvrd::Refused { reason });
                return;
            }
        }
        self.services = ids;
        let held = self
            .services
            .iter()
            .filter(|(l, _)| self.lock.holds(**l))
            .map(|(_, n)| n.clone())
            .collect();
        let up = self
            .view
            .map(|v| {
                v.members
                    .iter()
                    .filter(|&n| n != self.me)
                    .map(|n| self.name(n))
                    .collect()
            })
            .unwrap_or_default();
        let node = self.name(self.me);
        self.greeted = true;
        self.tell(ToHasvrd::Welcome { node, held, up });
        let adverts: Vec<_> = self.peer_adverts.clone().into_iter().collect();
        for ((from, service), (state, can_host, failures)) in adverts {
            let node = self.name(from);
            self.tell(ToHasvrd::PeerService {
                node,
                service,
                state,
                can_host,
                failures,
            });
        }
    }

    /// hasvrd reread its service files: `services` replaces the list of
    /// its hello. A service left out is forgotten here and by the other
    /// nodes (hasvrd withdrew its lock request first; it never drops one
    /// it holds or runs). A new one whose lock id is another's is refused
    /// and left out; hasvrd checks the same before it adds one.
    fn services_changed(&mut self, services: Vec<String>) {
        let (kept, new): (Vec<String>, Vec<String>) = services
            .into_iter()
            .partition(|n| self.services.values().any(|s| s == n));
        let mut ids: BTreeMap<LockId, String> = BTreeMap::new();
        for name in kept.into_iter().chain(new) {
            let id = haschema::service::lock_id(&name);
            match ids.get(&id) {
                Some(other) if *other != name => tracing::error!(
                    "hasvrd added service {name}, but it maps to the lock number of {other}: \
                     refused; rename one of them in its service file on every node"
                ),
                Some(_) => {}
                None => {
                    if self.services.get(&id) != Some(&name) {
                        tracing::info!("hasvrd added service {name}: its lock is {id}");
                    }
                    ids.insert(id, name);
                }
            }
        }
        let gone: Vec<(LockId, String)> = self
            .services
            .iter()
            .filter(|(id, name)| ids.get(id) != Some(name))
            .map(|(&id, name)| (id, name.clone()))
            .collect();
        self.services = ids;
        let members: Vec<NodeId> = self
            .view
            .map(|v| v.members.iter().filter(|&n| n != self.me).collect())
            .unwrap_or_default();
        for (id, service) in gone {
            tracing::info!("hasvrd removed service {service}: forgotten");
            self.told_owner.remove(&id);
            self.told_lost.remove(&id);
            self.fence_asked.remove(&service);
            self.adverts.remove(&service);
            for &to in &members {
                self.send_peer(
                    to,
                    &PeerMsg::Forget {
                        service: service.clone(),
                    },
                );
            }
        }
    }

    fn known(&self, service: &str) -> Option<LockId> {
        let id = haschema::service::lock_id(service);
        let known = self.services.get(&id).is_some_and(|n| n == service);
        if !known {
            tracing::warn!("hasvrd named service {service}, which it did not announce: ignored");
        }
        known.then_some(id)
    }

    /// Moves the lock table's actions out, and tells hasvrd of owner
    /// changes.
    fn pump(&mut self) {
        while let Some(action) = self.lock.poll() {
            match action {
                lock::Action::Send { to, data } => {
                    tracing::debug!("lock message to {to}: {data:?}");
                    self.out.push_back(Item::Do(Out::Send { to, data }))
                }
                lock::Action::Persist(data) => self.out.push_back(Item::Do(Out::Persist(data))),
                lock::Action::Granted(l) => {
                    if let Some(service) = self.services.get(&l).cloned() {
                        tracing::info!("granted the lock of {service} to this node");
                        self.out
                            .push_back(Item::Tell(ToHasvrd::Granted { service }));
                    }
                }
                lock::Action::Lost(l) => {
                    if let Some(service) = self.services.get(&l).cloned() {
                        tracing::warn!("this node lost the lock of {service}");
                        self.out.push_back(Item::Tell(ToHasvrd::Lost { service }));
                    }
                }
                lock::Action::FalseFence(node) => tracing::error!(
                    severity = "emerg",
                    "the fence confirmation of {} was false: it kept running; its services may \
                     have run twice until now, the lower-priority claimant was stopped",
                    self.name(node)
                ),
            }
        }
        if !self.hasvrd_connected() {
            return;
        }
        let members = self.view.map(|v| v.members).unwrap_or_default();
        let services: Vec<(LockId, String)> =
            self.services.iter().map(|(&l, n)| (l, n.clone())).collect();
        for (l, service) in services {
            let holder = self.lock.holder(l);
            if self.told_owner.get(&l) != Some(&holder) {
                self.told_owner.insert(l, holder);
                let holder_name = holder.map(|h| self.name(h));
                self.tell(ToHasvrd::Owner {
                    service: service.clone(),
                    holder: holder_name,
                });
            }
            let lost = holder.filter(|&h| {
                h != self.me
                    && !members.contains(h)
                    && self.lost.contains(h)
                    && !self.off.contains(h)
            });
            match lost {
                Some(h) if self.told_lost.get(&l) != Some(&h) => {
                    self.told_lost.insert(l, h);
                    let node = self.name(h);
                    self.tell(ToHasvrd::OwnerLost { service, node });
                }
                Some(_) => {}
                None => {
                    if self.told_lost.remove(&l).is_some() {
                        // Back (or fenced): the owner, told again, ends a
                        // STALLED state that waited for it.
                        let holder_name = holder.map(|h| self.name(h));
                        self.tell(ToHasvrd::Owner {
                            service,
                            holder: holder_name,
                        });
                    }
                }
            }
        }
    }

    fn send_peer(&mut self, to: NodeId, msg: &PeerMsg) {
        let mut data = vec![PROTOCOL];
        data.extend(serde_json::to_vec(msg).unwrap_or_default());
        self.out.push_back(Item::Do(Out::Send { to, data }));
    }

    fn tell(&mut self, msg: ToHasvrd) {
        let greeting = matches!(msg, ToHasvrd::Welcome { .. } | ToHasvrd::Refused { .. });
        if !self.greeted && !greeting {
            return;
        }
        if let Some(tx) = &self.hasvrd
            && tx.send(msg).is_err()
        {
            self.hasvrd = None;
        }
    }

    fn name(&self, id: NodeId) -> String {
        self.names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("domain {id}"))
    }
}

#[cfg(test)]
mod tests;
