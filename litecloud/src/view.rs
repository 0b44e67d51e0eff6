//! Agreed membership: turns each node's local liveness view into one view
//! that every member installed, identified by `(epoch, coordinator)`, so
//! that quorum and lock decisions are taken on an agreed membership
//! (safety rule 2), not on each node's own opinion.
//!
//! The protocol, over the reliable channel ([`crate::channel`]):
//! - The lowest live node is the coordinator. Whenever its live set differs
//!   from the installed view (or a member restarted), it takes the next
//!   epoch (persisted before use: an epoch is never used twice) and sends
//!   `Propose` to every other node of its live set.
//! - A node that is in the proposed set and has promised no higher epoch
//!   promises this one (persisted), and answers `Accept`; otherwise it
//!   answers `Refuse` with its promise, and the coordinator retries above it.
//! - When every member accepted, the coordinator sends `Commit` and every
//!   member installs the view. One coordinator proposes one member set per
//!   epoch, so all nodes that install a view id install the same members,
//!   and each node's installed view ids only grow, across restarts too.
//! - A member whose installed view is not the coordinator's current one
//!   (it formed another view while it could not see the coordinator, or it
//!   restarted) sends `Nudge` with its promise and view id; the coordinator
//!   proposes again unless that member already has its view (the need
//!   outlives a proposal dropped before it completes).
//! - A member that gets a `Commit` it cannot install (it promised a later
//!   proposal after accepting that one, and the later one may have been
//!   dropped by its proposer) answers its sender with `Nudge` too: that
//!   coordinator believes the member installed its view and would
//!   otherwise never propose again.
//!
//! Partitioned nodes form views of their own side; which side may act is
//! decided by quorum ([`View::has_quorum`]) and, for two nodes, by fencing.

use crate::wire::NodeId;
use std::collections::VecDeque;

/// First byte of every message of this protocol on the channel.
pub const PROTOCOL: u8 = 1;

const PROPOSE: u8 = 1;
const ACCEPT: u8 = 2;
const REFUSE: u8 = 3;
const COMMIT: u8 = 4;
const NUDGE: u8 = 5;

/// A set of domain ids 1-64.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NodeSet(u64);

impl NodeSet {
    pub fn of(ids: impl IntoIterator<Item = NodeId>) -> NodeSet {
        let mut set = NodeSet::default();
        for id in ids {
            set.insert(id);
        }
        set
    }

    pub fn insert(&mut self, id: NodeId) {
        if (1..=64).contains(&id) {
            self.0 |= 1 << (id - 1);
        }
    }

    pub fn contains(&self, id: NodeId) -> bool {
        (1..=64).contains(&id) && self.0 & (1 << (id - 1)) != 0
    }

    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// Lowest id in the set.
    pub fn first(&self) -> Option<NodeId> {
        (self.0 != 0).then(|| self.0.trailing_zeros() as NodeId + 1)
    }

    pub fn iter(&self) -> impl Iterator<Item = NodeId> + '_ {
        (1..=64).filter(|&id| self.contains(id))
    }
}

/// Identity of a view: epochs order views; the coordinator tells apart
/// views that partitioned sides made with the same epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ViewId {
    pub epoch: u64,
    pub coordinator: NodeId,
}

/// An agreed membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    pub id: ViewId,
    pub members: NodeSet,
}

impl View {
    /// A strict majority of the `configured` nodes (three or more); two
    /// nodes never have quorum alone and rely on fencing.
    pub fn has_quorum(&self, configured: usize) -> bool {
        2 * self.members.len() > configured
    }
}

/// What the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send `data` to `to` over the channel.
    Send { to: NodeId, data: Vec<u8> },
    /// Write `epoch` durably before anything else goes out.
    Persist { epoch: u64 },
    /// A view was agreed and installed here.
    Installed(View),
}

/// A malformed view message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadMessage;

struct Proposal {
    view: View,
    accepted: NodeSet,
}

/// One node's side of the agreement.
pub struct Agreement {
    me: NodeId,
    live: NodeSet,
    promised: u64,
    installed: Option<View>,
    proposing: Option<Proposal>,
    pending: Option<View>,
    /// A member restarted or lacks the installed view: propose again even
    /// if the set is unchanged, until one of this node's proposals
    /// completes (a dropped one does not settle it).
    stale: bool,
    /// Latest nudge from each node: (its promise, its packed view id).
    nudges: std::collections::BTreeMap<NodeId, (u64, u64)>,
    out: VecDeque<Action>,
}

impl Agreement {
    /// Starts with the highest epoch this node ever promised (from disk;
    /// 0 the first time), alone.
    pub fn new(me: NodeId, promised: u64) -> Agreement {
        let mut a = Agreement {
            me,
            live: NodeSet::of([me]),
            promised,
            installed: None,
            proposing: None,
            pending: None,
            stale: false,
            nudges: Default::default(),
            out: VecDeque::new(),
        };
        a.reconsider();
        a
    }

    /// The installed view, if any.
    pub fn view(&self) -> Option<View> {
        self.installed
    }

    /// Next action for the driver.
    pub fn poll(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    /// The local liveness view changed (this node and its live peers).
    pub fn live_changed(&mut self, live: NodeSet) {
        self.live = live;
        self.live.insert(self.me);
        self.reconsider();
        self.check_nudges();
        self.nudge();
    }

    /// A peer's channel started over (it restarted, or was first proven):
    /// what it had is gone, so the view is agreed again.
    pub fn peer_reset(&mut self, peer: NodeId) {
        if self
            .proposing
            .as_ref()
            .is_some_and(|p| p.view.members.contains(peer))
            || self.installed.is_some_and(|v| v.members.contains(peer))
            || self.live.contains(peer)
        {
            self.stale = true;
            self.proposing = None;
            self.reconsider();
        }
        if self.live.first() == Some(peer) {
            self.nudge();
        }
    }

    /// A message of this protocol from `from`.
    pub fn handle_message(&mut self, from: NodeId, data: &[u8]) -> Result<(), BadMessage> {
        let (kind, epoch, members) = decode(data)?;
        match kind {
            PROPOSE => self.on_propose(from, epoch, members),
            ACCEPT => self.on_accept(from, epoch),
            REFUSE => self.on_refuse(epoch),
            COMMIT => self.on_commit(from, epoch, members),
            NUDGE => self.on_nudge(from, epoch, members.0),
            _ => return Err(BadMessage),
        }
        Ok(())
    }

    fn send(&mut self, to: NodeId, kind: u8, epoch: u64, members: NodeSet) {
        let mut data = Vec::with_capacity(18);
        data.extend([PROTOCOL, kind]);
        data.extend(epoch.to_be_bytes());
        data.extend(members.0.to_be_bytes());
        self.out.push_back(Action::Send { to, data });
    }

    /// Sends `kind` about `view` to its members but this node.
    fn send_to_others(&mut self, kind: u8, view: View) {
        let me = self.me;
        let others: Vec<NodeId> = view.members.iter().filter(|&id| id != me).collect();
        for to in others {
            self.send(to, kind, view.id.epoch, view.members);
        }
    }

    fn promise(&mut self, epoch: u64) {
        self.promised = epoch;
        self.out.push_back(Action::Persist { epoch });
    }

    /// The coordinator proposes when the installed view is not its live set.
    fn reconsider(&mut self) {
        if self.live.first() != Some(self.me) {
            self.proposing = None;
            return;
        }
        let agreed = self.installed.is_some_and(|v| v.members == self.live) && !self.stale;
        let underway = self
            .proposing
            .as_ref()
            .is_some_and(|p| p.view.members == self.live);
        if agreed {
            // A proposal for another set (a node it waited for is gone)
            // would wait forever.
            self.proposing = None;
            return;
        }
        if underway {
            return;
        }
        self.propose();
    }

    fn propose(&mut self) {
        let epoch = self.promised + 1;
        self.promise(epoch);
        // Our own epoch supersedes any view we accepted and still await.
        self.pending = None;
        let view = View {
            id: ViewId {
                epoch,
                coordinator: self.me,
            },
            members: self.live,
        };
        self.send_to_others(PROPOSE, view);
        self.proposing = Some(Proposal {
            view,
            accepted: NodeSet::of([self.me]),
        });
        self.check_complete();
    }

    fn on_propose(&mut self, from: NodeId, epoch: u64, members: NodeSet) {
        if !members.contains(self.me) || members.first() != Some(from) {
            return;
        }
        if epoch <= self.promised {
            self.send(from, REFUSE, self.promised, NodeSet::default());
            return;
        }
        self.promise(epoch);
        // A higher epoch supersedes anything this node was proposing.
        self.proposing = None;
        self.pending = Some(View {
            id: ViewId {
                epoch,
                coordinator: from,
            },
            members,
        });
        self.send(from, ACCEPT, epoch, members);
    }

    /// A member asks the coordinator for its view unless it has it.
    fn nudge(&mut self) {
        let Some(coordinator) = self.live.first().filter(|&c| c != self.me) else {
            return;
        };
        let current = self
            .installed
            .is_some_and(|v| v.id.coordinator == coordinator && v.members == self.live);
        if !current {
            self.send_nudge(coordinator);
        }
    }

    /// Tells `to` this node's promise and installed view id.
    fn send_nudge(&mut self, to: NodeId) {
        let id = self.installed.map_or(0, |v| pack(v.id));
        self.send(to, NUDGE, self.promised, NodeSet(id));
    }

    /// Keeps the latest nudge of each node: it may come before this node
    /// sees the sender live (then it counts once it does).
    fn on_nudge(&mut self, from: NodeId, promised: u64, their_view: u64) {
        self.nudges.insert(from, (promised, their_view));
        self.check_nudges();
    }

    /// Acts on the nudges of live nodes, if this node coordinates.
    fn check_nudges(&mut self) {
        if self.live.first() != Some(self.me) {
            return;
        }
        let live: Vec<(u64, u64)> = self
            .nudges
            .iter()
            .filter(|(n, _)| self.live.contains(**n))
            .map(|(_, &v)| v)
            .collect();
        for (promised, their_view) in live {
            self.nudged(promised, their_view);
        }
    }

    fn nudged(&mut self, promised: u64, their_view: u64) {
        let mine = self.installed.map(|v| v.id);
        let awaiting_commit =
            mine.is_some_and(|m| promised == m.epoch && their_view >> 8 < m.epoch);
        if mine.map(pack) == Some(their_view) || awaiting_commit {
            return;
        }
        // They lack the installed view: it stays stale until a proposal
        // completes, even if the one under way is dropped.
        self.stale = true;
        if self.proposing.is_some() {
            // It reaches them anyway: they accept it (and install it, or
            // answer its commit with a nudge if they promised past it
            // since), or refuse it and it is proposed again above.
            return;
        }
        self.promised = self.promised.max(promised);
        self.nudges.clear();
        self.reconsider();
    }

    fn on_accept(&mut self, from: NodeId, epoch: u64) {
        let Some(p) = self.proposing.as_mut() else {
            return;
        };
        if p.view.id.epoch == epoch && p.view.members.contains(from) {
            p.accepted.insert(from);
            self.check_complete();
        }
    }

    fn on_refuse(&mut self, promised: u64) {
        if self.proposing.is_some() && promised >= self.promised {
            self.promised = promised;
            self.propose();
        }
    }

    fn on_commit(&mut self, from: NodeId, epoch: u64, members: NodeSet) {
        let id = ViewId {
            epoch,
            coordinator: from,
        };
        // Only the proposal promised last may still be installed.
        if self
            .pending
            .is_some_and(|v| v.id == id && v.members == members)
            && epoch == self.promised
        {
            self.pending = None;
            self.install(View { id, members });
        } else {
            // `from` installed a view with this node in it, but this node
            // promised a later proposal since it accepted (one its
            // proposer may have dropped): `from` would wait for nothing,
            // so it is told the promise and proposes above it.
            self.send_nudge(from);
        }
    }

    fn check_complete(&mut self) {
        let Some(p) = self.proposing.as_ref() else {
            return;
        };
        if p.accepted != p.view.members {
            return;
        }
        let view = p.view;
        self.proposing = None;
        // Every member accepted it after whatever made the last view stale.
        self.stale = false;
        self.send_to_others(COMMIT, view);
        self.install(view);
    }

    fn install(&mut self, view: View) {
        self.installed = Some(view);
        // Members still behind will nudge again after this view.
        self.nudges.clear();
        self.out.push_back(Action::Installed(view));
        self.reconsider();
        self.nudge();
    }
}

/// A view id in one word, for `Nudge`.
fn pack(id: ViewId) -> u64 {
    id.epoch << 8 | u64::from(id.coordinator)
}

fn decode(data: &[u8]) -> Result<(u8, u64, NodeSet), BadMessage> {
    let raw: &[u8; 18] = data.try_into().map_err(|_| BadMessage)?;
    if raw[0] != PROTOCOL {
        return Err(BadMessage);
    }
    let epoch = u64::from_be_bytes(raw[2..10].try_into().expect("8 bytes"));
    let members = u64::from_be_bytes(raw[10..18].try_into().expect("8 bytes"));
    Ok((raw[1], epoch, NodeSet(members)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nodes 1..=n and the messages in flight between them, first in,
    /// first out per (sender, receiver) like the channel.
    struct Net {
        nodes: Vec<Agreement>,
        mail: VecDeque<(NodeId, NodeId, Vec<u8>)>,
    }

    impl Net {
        fn new(promised: &[u64]) -> Net {
            let nodes = (1..).zip(promised).map(|(id, &p)| Agreement::new(id, p));
            let mut net = Net {
                nodes: nodes.collect(),
                mail: VecDeque::new(),
            };
            net.settle();
            net
        }

        fn node(&mut self, id: NodeId) -> &mut Agreement {
            &mut self.nodes[usize::from(id) - 1]
        }

        fn view(&self, id: NodeId) -> Option<View> {
            self.nodes[usize::from(id) - 1].view()
        }

        /// Moves every node's sends into the mail; returns its installs.
        fn collect(&mut self) -> Vec<(NodeId, View)> {
            let mut installed = Vec::new();
            for a in &mut self.nodes {
                while let Some(action) = a.poll() {
                    match action {
                        Action::Send { to, data } => self.mail.push_back((a.me, to, data)),
                        Action::Installed(v) => installed.push((a.me, v)),
                        Action::Persist { .. } => {}
                    }
                }
            }
            installed
        }

        /// Delivers the oldest message from `from` to `to`, which must be
        /// of `kind`.
        fn deliver(&mut self, from: NodeId, to: NodeId, kind: u8) {
            self.collect();
            let at = self
                .mail
                .iter()
                .position(|(f, t, _)| (*f, *t) == (from, to))
                .expect("a message in flight");
            let (_, _, data) = self.mail.remove(at).expect("found");
            assert_eq!(data[1], kind, "n{from} -> n{to}");
            self.node(to).handle_message(from, &data).unwrap();
        }

        /// Delivers every message until quiet; returns the installs.
        fn settle(&mut self) -> Vec<(NodeId, View)> {
            let mut installed = self.collect();
            while let Some((from, to, data)) = self.mail.pop_front() {
                self.node(to).handle_message(from, &data).unwrap();
                installed.extend(self.collect());
            }
            installed
        }
    }

    #[test]
    fn three_nodes_agree_on_one_view() {
        let mut net = Net::new(&[0; 3]);
        let all = NodeSet::of([1, 2, 3]);
        for a in &mut net.nodes {
            a.live_changed(all);
        }
        let installed = net.settle();
        let views: Vec<View> = net.nodes.iter().map(|a| a.view().unwrap()).collect();
        assert!(
            views.iter().all(|v| *v == views[0] && v.members == all),
            "{views:?}"
        );
        assert_eq!(views[0].id.coordinator, 1);
        assert!(views[0].has_quorum(3));
        assert_eq!(
            installed.iter().filter(|(_, v)| v.members == all).count(),
            3
        );
    }

    #[test]
    fn a_coordinator_behind_retries_above_the_promises() {
        let mut net = Net::new(&[0, 40]);
        for a in &mut net.nodes {
            a.live_changed(NodeSet::of([1, 2]));
        }
        net.settle();
        let v = net.view(1).unwrap();
        assert_eq!(net.view(2), Some(v));
        assert!(v.id.epoch > 40);
        assert!(!v.has_quorum(4));
    }

    /// Simulator seed 21696 of `random_false_confirmations_three_nodes`:
    /// at the heal of a cut between 1 and 2, node 2 installs 1's view while
    /// it still sees only {2, 3}, so it proposes {2, 3} above it; node 3
    /// accepts that, node 2 then sees 1 and drops its proposal, and node 3
    /// can no longer install 1's commit. Node 3 must tell node 1, or it
    /// stays on its old view for good.
    #[test]
    fn a_commit_overtaken_by_a_dropped_proposal_is_proposed_again() {
        let mut net = Net::new(&[0; 3]);
        let (all, left, right) = (
            NodeSet::of([1, 2, 3]),
            NodeSet::of([1, 3]),
            NodeSet::of([2, 3]),
        );
        net.node(2).live_changed(right);
        net.node(3).live_changed(right);
        net.settle();
        net.node(1).live_changed(left);
        net.node(3).live_changed(left);
        net.settle();
        let old = net.view(3).unwrap();
        assert_eq!((old.id.coordinator, old.members), (1, left));
        assert_eq!(net.view(2).unwrap().members, right);

        net.node(1).live_changed(all);
        net.node(3).live_changed(all);
        net.deliver(3, 1, NUDGE);
        net.deliver(1, 2, PROPOSE);
        net.deliver(1, 3, PROPOSE);
        net.deliver(2, 1, ACCEPT);
        net.deliver(3, 1, ACCEPT);
        let agreed = net.view(1).unwrap();
        assert_eq!(agreed.members, all);
        net.deliver(1, 2, COMMIT);
        assert_eq!(net.view(2), Some(agreed));
        // Node 2 still sees only {2, 3}: it proposes that, then sees 1.
        net.node(2).live_changed(all);
        net.deliver(2, 3, PROPOSE);
        net.deliver(1, 3, COMMIT);
        assert_eq!(net.view(3), Some(old), "the commit was overtaken");

        net.settle();
        let last = net.view(1).unwrap();
        assert!(last.id > agreed.id, "{last:?}");
        assert_eq!(last.members, all);
        for id in [2, 3] {
            assert_eq!(net.view(id), Some(last), "n{id}");
        }
    }

    /// Simulator seed 2395 of `random_three_nodes`: node 3 lacks the
    /// coordinator's view and nudges; node 1 proposes, but its live set
    /// flaps ({1, 3}, then {1, 2, 3} again) before that completes. Back on
    /// the set of its installed view, node 1 must not take that view as
    /// agreed: node 3 still lacks it.
    #[test]
    fn a_nudge_outlives_a_dropped_proposal() {
        let mut net = Net::new(&[0; 3]);
        let all = NodeSet::of([1, 2, 3]);
        for a in &mut net.nodes {
            a.live_changed(all);
        }
        net.settle();
        let agreed = net.view(1).unwrap();
        net.node(3).live_changed(NodeSet::of([3]));
        net.node(3).live_changed(all);
        assert_ne!(net.view(3), Some(agreed));
        net.deliver(3, 1, NUDGE);
        net.node(1).live_changed(NodeSet::of([1, 3]));
        net.node(1).live_changed(all);

        net.settle();
        let last = net.view(1).unwrap();
        assert!(last.id > agreed.id, "{last:?}");
        assert_eq!(last.members, all);
        for id in [2, 3] {
            assert_eq!(net.view(id), Some(last), "n{id}");
        }
    }

    #[test]
    fn bad_messages_are_refused() {
        let mut a = Agreement::new(1, 0);
        assert_eq!(a.handle_message(2, &[]), Err(BadMessage));
        assert_eq!(a.handle_message(2, &[PROTOCOL; 17]), Err(BadMessage));
        let mut unknown = [0u8; 18];
        unknown[0] = PROTOCOL;
        unknown[1] = 9;
        assert_eq!(a.handle_message(2, &unknown), Err(BadMessage));
    }
}
