//! The lock service: named locks with exactly one holder cluster-wide, the
//! mechanism that gives each service its one owner (and later the Buluos
//! locks of the 64-node core). A pure state machine on top of the agreed
//! view ([`crate::view`]) and the reliable channel ([`crate::channel`]).
//!
//! - The coordinator of the installed view is the lock master. Every node
//!   keeps a replica of the table; each entry carries a version (view
//!   epoch, counter) so that the newest wins when replicas are merged.
//! - When a view is installed, every member reports to the master the locks
//!   it holds, the locks it wants and its replica. The master grants
//!   nothing until every member reported (resync). Then a lock whose holder
//!   is a member stays held only if that member says it holds it; a lock
//!   whose holder is not a member is *orphaned*: it is never granted again
//!   until that node is confirmed fenced ([`LockTable::node_fenced`]), so a
//!   partition never gives one lock to two nodes (safety rule 1).
//! - A fresh node knows nothing of locks held elsewhere, so a master grants
//!   only once its table is trusted: it completed a resync of a view of
//!   every configured node (wait-for-all at boot, rule 4), or merged the
//!   replica of a node that was trusted. It also needs quorum; of two
//!   nodes, one alone grants only once the other was confirmed off.
//! - A grant counts only once every member of the view acknowledged it:
//!   the master confirms it to the grantee after that. A master left in an
//!   old view (stalled, or cut off one way) cannot collect those acks from
//!   members that moved on, so it cannot grant behind the new view's back;
//!   and every member's replica names the grantee, so the next master
//!   knows of the grant.
//! - Waiters are granted by priority (higher first), then in request order.
//! - A holder drops a lock locally before telling the master, so two nodes
//!   never both believe they hold it.

use crate::view::{NodeSet, View};
use crate::wire::NodeId;
use std::collections::{BTreeMap, VecDeque};

/// First byte of every message of this protocol on the channel.
pub const PROTOCOL: u8 = 2;

const REPORT: u8 = 1;
const REQUEST: u8 = 2;
const RELEASE: u8 = 3;
const UPDATE: u8 = 4;
const ACK: u8 = 5;
const CONFIRM: u8 = 6;

/// A lock's number.
pub type LockId = u32;

/// Version of a table entry: the master's view epoch, then a counter.
type Version = (u64, u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    holder: Option<NodeId>,
    version: Version,
}

/// What the driver must do, or learn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send `data` to `to` over the channel.
    Send { to: NodeId, data: Vec<u8> },
    /// This node now holds `lock`.
    Granted(LockId),
    /// This node no longer holds `lock` (the master's table says so).
    Lost(LockId),
    /// Write this replica of the table durably before anything else goes
    /// out: what a node acknowledged must survive its crash, or a quorum
    /// could forget a grant ([`LockTable::restore`] reads it back).
    Persist(Vec<u8>),
}

/// A malformed lock message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadMessage;

/// One node's side of the lock service.
pub struct LockTable {
    me: NodeId,
    /// Every configured node.
    nodes: NodeSet,
    view: Option<View>,
    trusted: bool,
    table: BTreeMap<LockId, Entry>,
    /// Locks this node wants, with its priority.
    wanted: BTreeMap<LockId, u8>,
    /// Nodes confirmed powered off since they left (for two nodes: the peer
    /// is off, so one node alone may grant).
    fenced: NodeSet,
    /// The grants that a fence confirmation ended: (lock, version) held by
    /// a node when it was confirmed off. A later grant to the same node
    /// (rebooted, elsewhere) is not ended by that old confirmation.
    fenced_grants: std::collections::BTreeSet<(LockId, Version)>,
    /// Grants to this node the master confirmed: lock -> entry version.
    confirmed: BTreeMap<LockId, Version>,
    master: Option<Master>,
    out: VecDeque<Action>,
}

/// The master's state for the current view.
struct Master {
    counter: u32,
    reported: NodeSet,
    /// Locks each member says it holds.
    held: BTreeMap<NodeId, Vec<LockId>>,
    /// Waiters: lock -> (priority, arrival, node).
    queue: BTreeMap<LockId, Vec<(u8, u64, NodeId)>>,
    /// Grants waiting for every member's ack: (lock, version) -> acked by.
    acks: BTreeMap<(LockId, Version), NodeSet>,
    arrivals: u64,
    resynced: bool,
}

impl LockTable {
    /// A node that knows no locks yet, in a cluster of `nodes`.
    pub fn new(me: NodeId, nodes: NodeSet) -> LockTable {
        LockTable {
            me,
            nodes,
            view: None,
            trusted: false,
            table: BTreeMap::new(),
            wanted: BTreeMap::new(),
            fenced: NodeSet::default(),
            fenced_grants: Default::default(),
            confirmed: BTreeMap::new(),
            master: None,
            out: VecDeque::new(),
        }
    }

    /// Next action for the driver.
    pub fn poll(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    /// Whether this node holds `lock`.
    pub fn holds(&self, lock: LockId) -> bool {
        self.table.get(&lock).is_some_and(|e| {
            e.holder == Some(self.me) && self.confirmed.get(&lock) == Some(&e.version)
        })
    }

    /// Who holds `lock`, as far as this node knows.
    pub fn holder(&self, lock: LockId) -> Option<NodeId> {
        self.table.get(&lock).and_then(|e| e.holder)
    }

    /// A node restarting with the replica it persisted: it knows the grants
    /// it acknowledged, but holds nothing itself (what it held died with
    /// it, or must be proven again).
    pub fn restore(me: NodeId, nodes: NodeSet, saved: &[u8]) -> Result<LockTable, BadMessage> {
        let mut r = Reader(saved);
        let trusted = r.u8()? != 0;
        let entries = r.entries()?;
        r.end()?;
        let mut table = LockTable::new(me, nodes);
        table.trusted = trusted;
        table.table = entries.into_iter().collect();
        Ok(table)
    }

    /// Whether this node's table may be used to grant locks.
    pub fn trusted(&self) -> bool {
        self.trusted
    }

    /// Asks for `lock`; [`Action::Granted`] follows when it is ours.
    pub fn request(&mut self, lock: LockId, priority: u8) {
        if self.holds(lock) {
            return;
        }
        self.wanted.insert(lock, priority);
        if let Some(view) = self.view {
            self.send_to(view.id.coordinator, REQUEST, view.id.epoch, |d| {
                d.extend(lock.to_be_bytes());
                d.push(priority);
            });
        }
    }

    /// Gives `lock` back (or withdraws the request). The caller has proven
    /// whatever the lock protected stopped (rule 7).
    pub fn release(&mut self, lock: LockId) {
        self.wanted.remove(&lock);
        let held = self.holds(lock);
        if let Some(e) = self.table.get_mut(&lock).filter(|_| held) {
            e.holder = None;
        }
        if let Some(view) = self.view {
            self.send_to(view.id.coordinator, RELEASE, view.id.epoch, |d| {
                d.extend(lock.to_be_bytes());
                d.push(u8::from(held));
            });
        }
    }

    /// A node was confirmed powered off (fence device, or the operator's
    /// `hactl fence confirm`): its orphaned locks may be granted.
    pub fn node_fenced(&mut self, node: NodeId) {
        self.fenced.insert(node);
        let ended: Vec<(LockId, Version)> = self
            .table
            .iter()
            .filter(|(_, e)| e.holder == Some(node))
            .map(|(&l, e)| (l, e.version))
            .collect();
        self.fenced_grants.extend(ended);
        self.settle();
    }

    /// A view was installed here.
    pub fn view_installed(&mut self, view: View) {
        self.view = Some(view);
        // Back in a view: any new loss needs a new fence.
        self.fenced = NodeSet::of(self.fenced.iter().filter(|&f| !view.members.contains(f)));
        self.master = (view.id.coordinator == self.me).then(|| Master {
            counter: 0,
            reported: NodeSet::default(),
            held: BTreeMap::new(),
            queue: BTreeMap::new(),
            arrivals: 0,
            resynced: false,
            acks: BTreeMap::new(),
        });
        let held: Vec<LockId> = self.held_here();
        let wanted: Vec<(LockId, u8)> = self.wanted.iter().map(|(&l, &p)| (l, p)).collect();
        let entries: Vec<(LockId, Entry)> = self.table.iter().map(|(&l, &e)| (l, e)).collect();
        let trusted = self.trusted;
        self.send_to(view.id.coordinator, REPORT, view.id.epoch, |d| {
            d.push(u8::from(trusted));
            put_locks(d, &held);
            d.extend((wanted.len() as u16).to_be_bytes());
            for (l, p) in &wanted {
                d.extend(l.to_be_bytes());
                d.push(*p);
            }
            put_entries(d, &entries);
        });
    }

    /// A message of this protocol from `from`.
    pub fn handle_message(&mut self, from: NodeId, data: &[u8]) -> Result<(), BadMessage> {
        let mut r = Reader(data);
        if r.u8()? != PROTOCOL {
            return Err(BadMessage);
        }
        let kind = r.u8()?;
        let epoch = r.u64()?;
        let Some(view) = self
            .view
            .filter(|v| v.id.epoch == epoch && v.members.contains(from))
        else {
            // Another view's message: the next view's reports redo it.
            return Ok(());
        };
        match kind {
            REPORT => {
                let trusted = r.u8()? != 0;
                let held = r.locks()?;
                let n = r.u16()?;
                let wanted = (0..n)
                    .map(|_| Ok((r.u32()?, r.u8()?)))
                    .collect::<Result<Vec<_>, BadMessage>>()?;
                let entries = r.entries()?;
                self.on_report(from, trusted, held, wanted, entries);
            }
            REQUEST => {
                let (lock, priority) = (r.u32()?, r.u8()?);
                self.enqueue(from, lock, priority);
                self.settle();
            }
            RELEASE => {
                let (lock, held) = (r.u32()?, r.u8()? != 0);
                self.on_release(from, lock, held);
            }
            UPDATE if from == view.id.coordinator => {
                let trusted = r.u8()? != 0;
                let entries = r.entries()?;
                self.apply(&entries);
                self.trusted |= trusted;
                self.persist();
                self.send_to(from, ACK, epoch, |d| put_entries(d, &entries));
            }
            ACK => {
                let entries = r.entries()?;
                self.on_ack(from, &entries);
            }
            CONFIRM if from == view.id.coordinator => {
                let (lock, version) = (r.u32()?, (r.u64()?, r.u32()?));
                self.on_confirm(lock, version);
            }
            UPDATE | CONFIRM => {}
            _ => return Err(BadMessage),
        }
        r.end()
    }

    fn held_here(&self) -> Vec<LockId> {
        self.table
            .keys()
            .copied()
            .filter(|&l| self.holds(l))
            .collect()
    }

    /// The master counts acks of its grants; all members acked: confirmed.
    fn on_ack(&mut self, from: NodeId, entries: &[(LockId, Entry)]) {
        let (Some(view), Some(m)) = (self.view, self.master.as_mut()) else {
            return;
        };
        let mut complete = Vec::new();
        for (lock, e) in entries {
            if let Some(by) = m.acks.get_mut(&(*lock, e.version)) {
                by.insert(from);
                if *by == view.members {
                    m.acks.remove(&(*lock, e.version));
                    complete.push((*lock, *e));
                }
            }
        }
        for (lock, e) in complete {
            self.confirm_grant(lock, e);
        }
    }

    fn confirm_grant(&mut self, lock: LockId, e: Entry) {
        let Some(view) = self.view else { return };
        match e.holder {
            Some(h) if h == self.me => self.on_confirm(lock, e.version),
            Some(h) => self.send_to(h, CONFIRM, view.id.epoch, |d| {
                d.extend(lock.to_be_bytes());
                d.extend(e.version.0.to_be_bytes());
                d.extend(e.version.1.to_be_bytes());
            }),
            None => {}
        }
    }

    /// The master confirmed a grant to this node.
    fn on_confirm(&mut self, lock: LockId, version: Version) {
        let current = self
            .table
            .get(&lock)
            .is_some_and(|e| e.version == version && e.holder == Some(self.me));
        if current && !self.holds(lock) {
            self.confirmed.insert(lock, version);
            self.wanted.remove(&lock);
            self.out.push_back(Action::Granted(lock));
        }
    }

    fn on_report(
        &mut self,
        from: NodeId,
        trusted: bool,
        held: Vec<LockId>,
        wanted: Vec<(LockId, u8)>,
        entries: Vec<(LockId, Entry)>,
    ) {
        let Some(m) = self.master.as_mut() else {
            return;
        };
        if m.resynced || m.reported.contains(from) {
            return;
        }
        m.reported.insert(from);
        m.held.insert(from, held);
        self.trusted |= trusted;
        for (lock, e) in entries {
            self.merge(lock, e);
        }
        for (lock, priority) in wanted {
            self.enqueue(from, lock, priority);
        }
        self.settle();
    }

    fn merge(&mut self, lock: LockId, e: Entry) {
        let newer = self
            .table
            .get(&lock)
            .is_none_or(|mine| e.version > mine.version);
        if newer {
            self.table.insert(lock, e);
        }
    }

    fn enqueue(&mut self, from: NodeId, lock: LockId, priority: u8) {
        let Some(m) = self.master.as_mut() else {
            return;
        };
        m.arrivals += 1;
        let arrival = m.arrivals;
        let q = m.queue.entry(lock).or_default();
        q.retain(|&(_, _, n)| n != from);
        q.push((priority, arrival, from));
    }

    fn on_release(&mut self, from: NodeId, lock: LockId, held: bool) {
        if let Some(q) = self.master.as_mut().and_then(|m| m.queue.get_mut(&lock)) {
            q.retain(|&(_, _, n)| n != from);
        }
        // The master's own release already cleared its replica.
        if held && (self.holder(lock) == Some(from) || from == self.me) {
            self.set(lock, None);
        }
        self.settle();
    }

    /// The master's work: finish the resync, free what may be freed, grant.
    fn settle(&mut self) {
        let Some(view) = self.view else { return };
        let Some(m) = self.master.as_mut() else {
            return;
        };
        if !m.resynced {
            if m.reported != view.members {
                return;
            }
            m.resynced = true;
            let held = std::mem::take(&mut m.held);
            let stale: Vec<LockId> = self
                .table
                .iter()
                .filter(|(l, e)| {
                    e.holder.is_some_and(|h| {
                        view.members.contains(h) && !held.get(&h).is_some_and(|hs| hs.contains(l))
                    })
                })
                .map(|(&l, _)| l)
                .collect();
            for lock in stale {
                self.set(lock, None);
            }
            // Wait-for-all: every possible holder reported.
            self.trusted |= view.members == self.nodes;
            let entries: Vec<(LockId, Entry)> = self.table.iter().map(|(&l, &e)| (l, e)).collect();
            self.broadcast(&entries);
        }
        let orphans: Vec<LockId> = self
            .table
            .iter()
            .filter(|&(&l, e)| {
                e.holder.is_some_and(|h| !view.members.contains(h))
                    && self.fenced_grants.contains(&(l, e.version))
            })
            .map(|(&l, _)| l)
            .collect();
        for lock in orphans {
            self.set(lock, None);
        }
        // A minority could be granting the same lock on its side: grant only
        // with quorum. Two nodes have no majority: one alone grants only
        // once its peer was confirmed off (the peer, rebooted, grants
        // nothing until it has seen both nodes again).
        let peer_off = self
            .nodes
            .iter()
            .filter(|&n| !view.members.contains(n))
            .all(|n| self.fenced.contains(n));
        let two_alone = self.nodes.len() == 2 && peer_off;
        let may_grant = self.trusted && (view.has_quorum(self.nodes.len()) || two_alone);
        if !may_grant {
            return;
        }
        let free: Vec<LockId> = self
            .master
            .as_ref()
            .map(|m| {
                m.queue
                    .keys()
                    .copied()
                    .filter(|l| self.holder(*l).is_none())
                    .collect()
            })
            .unwrap_or_default();
        for lock in free {
            let Some(q) = self.master.as_mut().and_then(|m| m.queue.get_mut(&lock)) else {
                continue;
            };
            q.sort_by_key(|&(p, arrival, _)| (std::cmp::Reverse(p), arrival));
            if q.is_empty() {
                continue;
            }
            let (_, _, node) = q.remove(0);
            self.set(lock, Some(node));
        }
    }

    /// The master changes an entry and tells every member.
    fn set(&mut self, lock: LockId, holder: Option<NodeId>) {
        let (Some(view), Some(m)) = (self.view, self.master.as_mut()) else {
            return;
        };
        m.counter += 1;
        let e = Entry {
            holder,
            version: (view.id.epoch, m.counter),
        };
        if holder.is_some() {
            m.acks.insert((lock, e.version), NodeSet::of([self.me]));
        }
        if m.resynced {
            self.apply(&[(lock, e)]);
            self.broadcast(&[(lock, e)]);
            if view.members.len() == 1 {
                self.on_ack(self.me, &[(lock, e)]);
            }
        } else {
            self.table.insert(lock, e);
        }
    }

    fn broadcast(&mut self, entries: &[(LockId, Entry)]) {
        let Some(view) = self.view else { return };
        // The master's table is durable before any member hears of it.
        self.persist();
        let trusted = self.trusted;
        let others: Vec<NodeId> = view.members.iter().filter(|&n| n != self.me).collect();
        for to in others {
            self.send_to(to, UPDATE, view.id.epoch, |d| {
                d.push(u8::from(trusted));
                put_entries(d, entries);
            });
        }
    }

    /// Applies the master's entries, telling the driver what it lost
    /// (gains come with the master's confirmation).
    fn apply(&mut self, entries: &[(LockId, Entry)]) {
        for &(lock, e) in entries {
            let before = self.holds(lock);
            let newer = self
                .table
                .get(&lock)
                .is_none_or(|mine| e.version >= mine.version);
            if !newer {
                continue;
            }
            self.table.insert(lock, e);
            if before && !self.holds(lock) {
                self.out.push_back(Action::Lost(lock));
            }
        }
    }

    fn persist(&mut self) {
        let mut data = vec![u8::from(self.trusted)];
        let entries: Vec<(LockId, Entry)> = self.table.iter().map(|(&l, &e)| (l, e)).collect();
        put_entries(&mut data, &entries);
        self.out.push_back(Action::Persist(data));
    }

    fn send_to(&mut self, to: NodeId, kind: u8, epoch: u64, body: impl FnOnce(&mut Vec<u8>)) {
        let mut data = vec![PROTOCOL, kind];
        data.extend(epoch.to_be_bytes());
        body(&mut data);
        if to == self.me {
            // The master's own report and requests go straight in.
            let _ = self.handle_message(self.me, &data);
        } else {
            self.out.push_back(Action::Send { to, data });
        }
    }
}

fn put_locks(d: &mut Vec<u8>, locks: &[LockId]) {
    d.extend((locks.len() as u16).to_be_bytes());
    for l in locks {
        d.extend(l.to_be_bytes());
    }
}

fn put_entries(d: &mut Vec<u8>, entries: &[(LockId, Entry)]) {
    d.extend((entries.len() as u16).to_be_bytes());
    for (lock, e) in entries {
        d.extend(lock.to_be_bytes());
        d.push(e.holder.unwrap_or(0));
        d.extend(e.version.0.to_be_bytes());
        d.extend(e.version.1.to_be_bytes());
    }
}

/// Reads a message field by field; any shortfall is a [`BadMessage`].
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], BadMessage> {
        let (head, rest) = self.0.split_at_checked(N).ok_or(BadMessage)?;
        self.0 = rest;
        Ok(head.try_into().expect("split at N"))
    }

    fn u8(&mut self) -> Result<u8, BadMessage> {
        Ok(self.take::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, BadMessage> {
        Ok(u16::from_be_bytes(self.take()?))
    }

    fn u32(&mut self) -> Result<u32, BadMessage> {
        Ok(u32::from_be_bytes(self.take()?))
    }

    fn u64(&mut self) -> Result<u64, BadMessage> {
        Ok(u64::from_be_bytes(self.take()?))
    }

    fn locks(&mut self) -> Result<Vec<LockId>, BadMessage> {
        let n = self.u16()?;
        (0..n).map(|_| self.u32()).collect()
    }

    fn entries(&mut self) -> Result<Vec<(LockId, Entry)>, BadMessage> {
        let n = self.u16()?;
        (0..n)
            .map(|_| {
                let lock = self.u32()?;
                let holder = Some(self.u8()?).filter(|&h| h != 0);
                let version = (self.u64()?, self.u32()?);
                Ok((lock, Entry { holder, version }))
            })
            .collect()
    }

    fn end(&self) -> Result<(), BadMessage> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(BadMessage)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{self, Agreement};

    /// Nodes 1..=n with instant delivery between connected nodes.
    struct Mini {
        views: Vec<Agreement>,
        locks: Vec<LockTable>,
        cut: bool,
    }

    impl Mini {
        fn new(n: u8) -> Mini {
            Mini::of(n, NodeSet::of(1..=n))
        }

        /// Nodes 1..=n of a cluster of `all`.
        fn of(n: u8, all: NodeSet) -> Mini {
            let mut m = Mini {
                views: (1..=n).map(|id| Agreement::new(id, 0)).collect(),
                locks: (1..=n).map(|id| LockTable::new(id, all)).collect(),
                cut: false,
            };
            m.connect(true);
            m
        }

        /// Everyone sees everyone (or, cut, only itself).
        fn connect(&mut self, up: bool) {
            self.cut = !up;
            let n = self.views.len() as u8;
            for (i, a) in self.views.iter_mut().enumerate() {
                let me = i as u8 + 1;
                a.live_changed(if up {
                    NodeSet::of(1..=n)
                } else {
                    NodeSet::of([me])
                });
            }
            self.settle();
        }

        fn settle(&mut self) {
            for _ in 0..1000 {
                let mut mail = Vec::new();
                for i in 0..self.views.len() {
                    let me = i as u8 + 1;
                    while let Some(a) = self.views[i].poll() {
                        match a {
                            view::Action::Send { to, data } => mail.push((me, to, data)),
                            view::Action::Installed(v) => self.locks[i].view_installed(v),
                            view::Action::Persist { .. } => {}
                        }
                    }
                    while let Some(a) = self.locks[i].poll() {
                        if let Action::Send { to, data } = a {
                            mail.push((me, to, data));
                        }
                    }
                }
                if mail.is_empty() {
                    return;
                }
                for (from, to, data) in mail {
                    if self.cut {
                        continue;
                    }
                    let i = usize::from(to) - 1;
                    if data[0] == view::PROTOCOL {
                        self.views[i].handle_message(from, &data).unwrap();
                    } else {
                        self.locks[i].handle_message(from, &data).unwrap();
                    }
                }
            }
            panic!("no quiet after 1000 rounds");
        }

        fn lock(&mut self, node: u8) -> &mut LockTable {
            &mut self.locks[usize::from(node) - 1]
        }
    }

    #[test]
    fn one_holder_then_the_next_by_priority() {
        let mut m = Mini::new(3);
        m.lock(2).request(7, 1);
        m.settle();
        assert!(m.lock(2).holds(7));
        m.lock(3).request(7, 1);
        m.lock(1).request(7, 9);
        m.settle();
        assert_eq!((m.lock(1).holds(7), m.lock(3).holds(7)), (false, false));
        m.lock(2).release(7);
        m.settle();
        assert!(m.lock(1).holds(7), "higher priority first");
        assert!(m.locks.iter().all(|l| l.holder(7) == Some(1)));
    }

    #[test]
    fn a_partitioned_holder_keeps_its_lock_until_fenced() {
        let mut m = Mini::new(2);
        m.lock(1).request(1, 1);
        m.settle();
        m.connect(false);
        m.lock(2).request(1, 1);
        m.lock(2).request(2, 1);
        m.lock(1).request(2, 1);
        m.settle();
        assert!(
            m.lock(1).holds(1) && !m.lock(2).holds(1),
            "orphan not granted"
        );
        assert!(
            !m.lock(1).holds(2) && !m.lock(2).holds(2),
            "no free lock granted without quorum"
        );
        m.lock(2).node_fenced(1);
        m.settle();
        assert!(
            m.lock(2).holds(1) && m.lock(2).holds(2),
            "granted once node 1 is off"
        );
    }

    #[test]
    fn a_fresh_node_alone_grants_nothing() {
        let mut fresh = Mini::of(1, NodeSet::of([1, 2]));
        fresh.lock(1).request(1, 1);
        fresh.settle();
        assert!(!fresh.lock(1).holds(1) && !fresh.lock(1).trusted());
    }

    #[test]
    fn bad_messages_are_refused() {
        let mut l = LockTable::new(1, NodeSet::of([1, 2]));
        assert_eq!(l.handle_message(2, &[]), Err(BadMessage));
        assert_eq!(
            l.handle_message(2, &[PROTOCOL, REQUEST, 0]),
            Err(BadMessage)
        );
    }
}
