//! The lock service: named locks with exactly one holder cluster-wide, the
//! mechanism that gives each service its one owner (and later the Buluos
//! locks of the 64-node core). A pure state machine on top of the agreed
//! view ([`crate::view`]) and the reliable channel ([`crate::channel`]).
//!
//! - The coordinator of the installed view is the lock master. Every node
//!   keeps a replica of the table; each entry carries a version (view
//!   epoch, counter) so that the newest wins when replicas are merged.
//!   Epochs order only the views that decide (with quorum, or the survivor
//!   of two whose peer is off or left): two views cut apart may share an
//!   epoch, and a minority may reach a higher one than the majority. So a
//!   view that does not decide frees a lock under the version it had (its
//!   free never outranks a grant a concurrent majority made), and of two
//!   different entries with the same version the one naming a holder wins.
//! - When a view is installed, every member reports to the master the locks
//!   it holds, the locks it wants and its replica. The master grants
//!   nothing until every member reported (resync). Then a lock whose holder
//!   is a member stays held only if that member says it holds it; a lock
//!   whose holder is not a member is *orphaned*: it is never granted again
//!   until that node is confirmed fenced ([`LockTable::node_fenced`]), so a
//!   partition never gives one lock to two nodes (safety rule 1).
//! - A fresh node knows nothing of locks held elsewhere, so a master grants
//!   only once its table is trusted: it completed a resync of a view of
//!   every configured node (wait-for-all at boot, rule 4), or of a view of
//!   all the nodes not confirmed off (a node that is off holds nothing:
//!   after a fence, or the operator's confirmation that the peer that never
//!   came back is off, the survivor takes the services), or merged the
//!   replica of a node that was trusted. It also needs quorum; of two
//!   nodes, one alone grants only once the other was confirmed off, or
//!   left cleanly ([`LockTable::node_left`]).
//! - A clean leave only lets the survivor of two nodes grant *free* locks:
//!   what the leaver still holds stays orphaned until it is fenced (a
//!   daemon that is stopped announces its leave even when the services it
//!   held keep running). The leave counts only if this node synced with
//!   the leaver before (a resync of a view of both, seen from here), so
//!   that its table names every lock the leaver may hold: every later grant
//!   to the leaver needed this node's ack. The leaver, restarted, is a new
//!   incarnation: its leave and fence marks are gone, so alone it grants
//!   nothing; it grants again after a resync of a view of both nodes (or
//!   once its peer is confirmed off or left after such a resync).
//! - A grant counts only once every member of the view acknowledged it:
//!   the master confirms it to the grantee after that. A master left in an
//!   old view (stalled, or cut off one way) cannot collect those acks from
//!   members that moved on, so it cannot grant behind the new view's back;
//!   and every member's replica names the grantee, so the next master
//!   knows of the grant.
//! - Waiters are granted by priority (higher first), then in request order.
//! - A holder drops a lock locally before telling the master, so two nodes
//!   never both believe they hold it.
//! - The persisted replica ([`Action::Persist`], a leading format byte)
//!   also names the locks this node holds (confirmed grants, with their
//!   versions) and the OS boot id. A daemon restarted on the same boot
//!   (its services kept running) holds them again
//!   ([`LockTable::restore`]): the driver hears [`Action::Granted`], and
//!   the next resync keeps them. Every change of what this node holds is
//!   persisted before the driver hears of it and before the master does,
//!   so the replica never claims a lock this node gave up, nor forgets one
//!   it was told it holds. After a reboot (another boot id) nothing runs:
//!   the restored node holds nothing. A fence confirmation means the node
//!   was powered off, so its next start is a new boot.
//! - A confirmation of a node that is in the installed view is ignored
//!   (defence in depth behind the driver's refusal to confirm a node it
//!   hears): that node is alive. The driver tells the table again, after
//!   the next view, the confirmations that still stand.
//! - A false confirmation (the operator swore a node that was alive but cut
//!   off is off) lets this side take that node's locks while it still runs
//!   their services: two holders, the operator's doing. The table notices
//!   when it hears that node again on the OS boot it ran before the
//!   confirmation (every report carries its boot id, and the master tells
//!   every member the boot ids of the view once it resynced): it forgets
//!   that mark and tells the driver [`Action::FalseFence`], so that it
//!   raises an emergency. At that resync every lock a member says it holds
//!   is a claim: of two claimants the higher priority keeps it and the
//!   other loses it at once (safety rule 8); a sole claimant keeps a lock
//!   that the other side freed, without a restart of its service.

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
const BOOTS: u8 = 7;

/// First byte of the persisted replica. (The replica before it had no
/// format byte: it began with the trust flag, 0 or 1.)
const FORMAT: u8 = 2;

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
    /// out (and before the driver acts on a later [`Action::Granted`] or
    /// [`Action::Lost`]): what a node acknowledged must survive its crash,
    /// or a quorum could forget a grant; and what it holds must survive a
    /// daemon restart ([`LockTable::restore`] reads it back).
    Persist(Vec<u8>),
    /// The fence confirmation of this node was false: it is heard again on
    /// the OS boot it ran before, so it kept running (and two nodes may
    /// have run the same service until now). The driver raises an
    /// emergency; the locks are settled already.
    FalseFence(NodeId),
}

/// A malformed lock message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadMessage;

/// One node's side of the lock service.
pub struct LockTable {
    me: NodeId,
    /// Every configured node.
    nodes: NodeSet,
    /// The OS boot id, written with the replica.
    boot: u32,
    view: Option<View>,
    trusted: bool,
    table: BTreeMap<LockId, Entry>,
    /// Locks this node wants, with its priority.
    wanted: BTreeMap<LockId, u8>,
    /// The priority each lock held here was requested with (0 after a
    /// daemon restart): it decides between two claimants (rule 8).
    held_priority: BTreeMap<LockId, u8>,
    /// Nodes confirmed powered off since they left (for two nodes: the peer
    /// is off, so one node alone may grant).
    fenced: NodeSet,
    /// Nodes that left cleanly since they were last in a view here (for
    /// two nodes: one alone may grant free locks; their grants stand).
    left: NodeSet,
    /// Nodes that were members of a view this table synced in: the master
    /// completed its resync (seen as the master, or from its first update).
    /// This table names every lock they may hold (see [`LockTable::node_left`]).
    synced_with: NodeSet,
    /// The grants that a fence confirmation ended: (lock, version) held by
    /// a node when it was confirmed off, with that node. A later grant to
    /// the same node (rebooted, elsewhere) is not ended by that old
    /// confirmation, nor is any once the node is back in a view here.
    fenced_grants: BTreeMap<(LockId, Version), NodeId>,
    /// The OS boot id of each node, as of the last resync here that had
    /// it as a member.
    boots: BTreeMap<NodeId, u32>,
    /// Nodes confirmed off, each with the boot id it had then (if known
    /// here), until they are heard again: the same boot means the
    /// confirmation was false.
    confirmed_off: BTreeMap<NodeId, Option<u32>>,
    /// Grants to this node the master confirmed: lock -> entry version.
    confirmed: BTreeMap<LockId, Version>,
    master: Option<Master>,
    out: VecDeque<Action>,
}

/// The master's state for the current view.
struct Master {
    counter: u32,
    reported: NodeSet,
    /// Locks each member says it holds, with their priorities.
    held: BTreeMap<NodeId, Vec<(LockId, u8)>>,
    /// Waiters: lock -> (priority, arrival, node).
    queue: BTreeMap<LockId, Vec<(u8, u64, NodeId)>>,
    /// Grants waiting for every member's ack: (lock, version) -> acked by.
    acks: BTreeMap<(LockId, Version), NodeSet>,
    /// The boot id each member reported.
    boots: Vec<(NodeId, u32)>,
    /// The replicas the members reported, merged at the end of the resync.
    entries: Vec<(LockId, Entry)>,
    arrivals: u64,
    resynced: bool,
}

impl LockTable {
    /// A node that knows no locks yet, in a cluster of `nodes`, running on
    /// OS boot `boot` (written with every replica it persists).
    pub fn new(me: NodeId, nodes: NodeSet, boot: u32) -> LockTable {
        LockTable {
            me,
            nodes,
            boot,
            view: None,
            trusted: false,
            table: BTreeMap::new(),
            wanted: BTreeMap::new(),
            held_priority: BTreeMap::new(),
            fenced: NodeSet::default(),
            left: NodeSet::default(),
            synced_with: NodeSet::default(),
            fenced_grants: BTreeMap::new(),
            boots: BTreeMap::new(),
            confirmed_off: BTreeMap::new(),
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

    /// Whether this node is the holder of any lock as far as it knows
    /// (confirmed or not): what it must stop before its lease runs out.
    pub fn holds_any(&self) -> bool {
        self.table.values().any(|e| e.holder == Some(self.me))
    }

    /// Whether this node asked for `lock` and has not given it back.
    pub fn wants(&self, lock: LockId) -> bool {
        self.wanted.contains_key(&lock)
    }

    /// Who holds `lock`, as far as this node knows.
    pub fn holder(&self, lock: LockId) -> Option<NodeId> {
        self.table.get(&lock).and_then(|e| e.holder)
    }

    /// A daemon restarting with the replica it persisted last, on OS boot
    /// `boot`. It knows the grants it acknowledged. On the boot it
    /// persisted on (a daemon restart: its services kept running) it holds
    /// again the locks it held: each comes as [`Action::Granted`] so the
    /// driver can tell its service daemon, and the next resync keeps them.
    /// On another boot (the OS rebooted: nothing runs) it holds nothing.
    /// Bytes that are not such a replica are refused.
    pub fn restore(
        me: NodeId,
        nodes: NodeSet,
        saved: &[u8],
        boot: u32,
    ) -> Result<LockTable, BadMessage> {
        let mut r = Reader(saved);
        if r.u8()? != FORMAT {
            return Err(BadMessage);
        }
        let saved_boot = r.u32()?;
        let trusted = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(BadMessage),
        };
        let entries = r.entries()?;
        let n = r.u16()?;
        let held = (0..n)
            .map(|_| Ok((r.u32()?, (r.u64()?, r.u32()?))))
            .collect::<Result<Vec<(LockId, Version)>, BadMessage>>()?;
        r.end()?;
        let mut table = LockTable::new(me, nodes, boot);
        table.trusted = trusted;
        for (lock, e) in entries {
            if table.table.insert(lock, e).is_some() {
                return Err(BadMessage);
            }
        }
        let mut confirmed = BTreeMap::new();
        for (lock, version) in held {
            let current = table
                .table
                .get(&lock)
                .is_some_and(|e| e.holder == Some(me) && e.version == version);
            if !current || confirmed.insert(lock, version).is_some() {
                return Err(BadMessage);
            }
        }
        if saved_boot == boot {
            table
                .out
                .extend(confirmed.keys().map(|&l| Action::Granted(l)));
            table.confirmed = confirmed;
        }
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
        self.held_priority.remove(&lock);
        let held = self.holds(lock);
        if let Some(e) = self.table.get_mut(&lock).filter(|_| held) {
            e.holder = None;
            // Nor may the same entry, heard again, make it ours again.
            self.confirmed.remove(&lock);
            // A restart must not hold it again.
            self.persist();
        }
        if let Some(view) = self.view {
            self.send_to(view.id.coordinator, RELEASE, view.id.epoch, |d| {
                d.extend(lock.to_be_bytes());
                d.push(u8::from(held));
            });
        }
    }

    /// A node was confirmed powered off (fence device, or the operator's
    /// `hactl fence confirm`): its orphaned locks may be granted. Ignored
    /// for this node and for a member of the installed view (it is alive).
    pub fn node_fenced(&mut self, node: NodeId) {
        let member = self.view.is_some_and(|v| v.members.contains(node));
        if node == self.me || member {
            return;
        }
        self.fenced.insert(node);
        self.confirmed_off
            .insert(node, self.boots.get(&node).copied());
        let ended: Vec<(LockId, Version)> = self
            .table
            .iter()
            .filter(|(_, e)| e.holder == Some(node))
            .map(|(&l, e)| (l, e.version))
            .collect();
        self.fenced_grants
            .extend(ended.into_iter().map(|grant| (grant, node)));
        self.settle();
    }

    /// A node left cleanly (the driver saw it announce its leave): of two
    /// nodes, this one alone may then grant *free* locks, as if the leaver
    /// were confirmed off. Unlike [`LockTable::node_fenced`] it ends none of
    /// the leaver's grants: a lock it still holds stays orphaned until it
    /// is fenced (its services may still run). Counts only if this table
    /// synced with the leaver before (else the table may not know what the
    /// leaver holds); forgotten when a view here contains the node again.
    pub fn node_left(&mut self, node: NodeId) {
        if node != self.me && self.synced_with.contains(node) {
            self.left.insert(node);
            self.settle();
        }
    }

    /// A view was installed here.
    pub fn view_installed(&mut self, view: View) {
        self.view = Some(view);
        // Back in a view: any new loss needs a new fence (or leave).
        self.fenced = NodeSet::of(self.fenced.iter().filter(|&f| !view.members.contains(f)));
        self.left = NodeSet::of(self.left.iter().filter(|&f| !view.members.contains(f)));
        self.fenced_grants
            .retain(|_, node| !view.members.contains(*node));
        self.master = (view.id.coordinator == self.me).then(|| Master {
            counter: 0,
            reported: NodeSet::default(),
            held: BTreeMap::new(),
            queue: BTreeMap::new(),
            arrivals: 0,
            resynced: false,
            acks: BTreeMap::new(),
            boots: Vec::new(),
            entries: Vec::new(),
        });
        let held: Vec<(LockId, u8)> = self
            .held_here()
            .into_iter()
            .map(|l| (l, self.held_priority.get(&l).copied().unwrap_or(0)))
            .collect();
        let wanted: Vec<(LockId, u8)> = self.wanted.iter().map(|(&l, &p)| (l, p)).collect();
        let entries: Vec<(LockId, Entry)> = self.table.iter().map(|(&l, &e)| (l, e)).collect();
        let (trusted, boot) = (self.trusted, self.boot);
        self.send_to(view.id.coordinator, REPORT, view.id.epoch, |d| {
            d.push(u8::from(trusted));
            put_prioritised(d, &held);
            put_prioritised(d, &wanted);
            put_entries(d, &entries);
            d.extend(boot.to_be_bytes());
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
                let held = r.prioritised()?;
                let wanted = r.prioritised()?;
                let entries = r.entries()?;
                // A report without a boot id (from an older daemon) counts.
                let boot = if r.0.is_empty() { None } else { Some(r.u32()?) };
                self.on_report(from, trusted, held, wanted, entries, boot);
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
                let lost = self.apply(&entries);
                self.trusted |= trusted;
                // The master sends updates only once it resynced this view.
                self.synced(view);
                self.persist();
                self.lost(lost);
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
            BOOTS if from == view.id.coordinator => {
                let n = r.u16()?;
                let boots = (0..n)
                    .map(|_| Ok((r.u8()?, r.u32()?)))
                    .collect::<Result<Vec<(NodeId, u32)>, BadMessage>>()?;
                r.end()?;
                self.heard_boots(&boots);
            }
            UPDATE | CONFIRM | BOOTS => {}
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
            let priority = self.wanted.remove(&lock).unwrap_or(0);
            self.held_priority.insert(lock, priority);
            // A daemon restart holds it again.
            self.persist();
            self.out.push_back(Action::Granted(lock));
        }
    }

    /// The members of `view` are synced with: their locks are known here.
    fn synced(&mut self, view: View) {
        for n in view.members.iter() {
            self.synced_with.insert(n);
        }
    }

    fn on_report(
        &mut self,
        from: NodeId,
        trusted: bool,
        held: Vec<(LockId, u8)>,
        wanted: Vec<(LockId, u8)>,
        entries: Vec<(LockId, Entry)>,
        boot: Option<u32>,
    ) {
        let Some(m) = self.master.as_mut() else {
            return;
        };
        if m.resynced || m.reported.contains(from) {
            return;
        }
        m.reported.insert(from);
        m.held.insert(from, held);
        m.boots.extend(boot.map(|b| (from, b)));
        // Merged once every member reported: the master's own locks change
        // hands only with the claims settled, in one step.
        m.entries.extend(entries);
        self.trusted |= trusted;
        for (lock, priority) in wanted {
            self.enqueue(from, lock, priority);
        }
        self.settle();
    }

    /// Keeps the newer of this table's entry and a reported one. Versions
    /// are not unique: two views of the same epoch (on both sides of a
    /// cut) number their changes alike. Of two different entries with the
    /// same version, neither is known to be the later one, so the one that
    /// names a holder wins: a lock freed on one side may have been granted
    /// on the other, and its holder may run it (rule 1).
    fn merge(&mut self, lock: LockId, e: Entry) {
        let newer = self.table.get(&lock).is_none_or(|mine| {
            e.version > mine.version
                || (e.version == mine.version && mine.holder.is_none() && e.holder.is_some())
        });
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
        if let Some(m) = self.master.as_mut() {
            if let Some(q) = m.queue.get_mut(&lock) {
                q.retain(|&(_, _, n)| n != from);
            }
            // Given back after its report: no longer its claim.
            if let Some(hs) = m.held.get_mut(&from) {
                hs.retain(|&(l, _)| l != lock);
            }
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
            let mine: Vec<LockId> = held
                .get(&self.me)
                .map(|hs| hs.iter().map(|&(l, _)| l).collect())
                .unwrap_or_default();
            let boots = std::mem::take(&mut m.boots);
            for (lock, e) in std::mem::take(&mut m.entries) {
                self.merge(lock, e);
            }
            // Locks held by a member that the table does not give it (only
            // after an operator confirmed a node off that was not): of two
            // claimants the higher priority keeps it, the other loses it at
            // once (rule 8); a sole claimant keeps what was freed.
            for (lock, keeper) in claims_to_settle(&held, &self.table, view.members) {
                self.set(lock, Some(keeper));
            }
            let stale: Vec<LockId> = self
                .table
                .iter()
                .filter(|(l, e)| {
                    e.holder.is_some_and(|h| {
                        view.members.contains(h)
                            && !held
                                .get(&h)
                                .is_some_and(|hs| hs.iter().any(|(hl, _)| hl == *l))
                    })
                })
                .map(|(&l, _)| l)
                .collect();
            for lock in stale {
                self.set(lock, None);
            }
            // A newer entry for a lock held here (another claimant's, or
            // one that freed it) has just been settled: say what is lost.
            let lost: Vec<LockId> = mine.into_iter().filter(|&l| !self.holds(l)).collect();
            if !lost.is_empty() {
                self.persist();
                self.lost(lost);
            }
            // Wait-for-all: every possible holder reported.
            self.trusted |= view.members == self.nodes;
            self.synced(view);
            let entries: Vec<(LockId, Entry)> = self.table.iter().map(|(&l, &e)| (l, e)).collect();
            self.broadcast(&entries);
            self.tell_boots(view, &boots);
            self.heard_boots(&boots);
        }
        // A node confirmed off holds nothing: with every other node either
        // reported in this resync or fenced, nothing can be held unknown.
        if !self.trusted
            && self
                .nodes
                .iter()
                .all(|n| view.members.contains(n) || self.fenced.contains(n))
        {
            self.trusted = true;
            self.persist();
        }
        let orphans: Vec<LockId> = self
            .table
            .iter()
            .filter(|&(&l, e)| {
                e.holder.is_some_and(|h| !view.members.contains(h))
                    && self.fenced_grants.contains_key(&(l, e.version))
            })
            .map(|(&l, _)| l)
            .collect();
        for lock in orphans {
            self.set(lock, None);
        }
        if !(self.trusted && self.decides(view)) {
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

    /// Whether `view` may decide for the cluster, so that its grants and
    /// versions outrank whatever a concurrent view does. A minority could
    /// be granting the same lock on its side: only a view with quorum
    /// decides. Two nodes have no majority: one alone decides only once
    /// its peer was confirmed off, or left cleanly (its orphans stay
    /// orphaned). The peer, restarted, decides nothing until it has seen
    /// both nodes again.
    fn decides(&self, view: View) -> bool {
        let peer_off = self
            .nodes
            .iter()
            .filter(|&n| !view.members.contains(n))
            .all(|n| self.fenced.contains(n) || self.left.contains(n));
        view.has_quorum(self.nodes.len()) || (self.nodes.len() == 2 && peer_off)
    }

    /// The master tells the other members of `view` every member's boot id.
    fn tell_boots(&mut self, view: View, boots: &[(NodeId, u32)]) {
        let others: Vec<NodeId> = view.members.iter().filter(|&n| n != self.me).collect();
        for to in others {
            self.send_to(to, BOOTS, view.id.epoch, |d| {
                d.extend((boots.len() as u16).to_be_bytes());
                for (node, boot) in boots {
                    d.push(*node);
                    d.extend(boot.to_be_bytes());
                }
            });
        }
    }

    /// The boot ids of the members of a resynced view: a node confirmed
    /// off that is heard on the boot it had then was never off.
    fn heard_boots(&mut self, boots: &[(NodeId, u32)]) {
        for &(node, boot) in boots {
            self.boots.insert(node, boot);
            if self.confirmed_off.remove(&node) == Some(Some(boot)) {
                self.out.push_back(Action::FalseFence(node));
            }
        }
    }

    /// The master changes an entry and tells every member.
    fn set(&mut self, lock: LockId, holder: Option<NodeId>) {
        let Some(view) = self.view else { return };
        // A view that does not decide may free a lock its own member
        // dropped, but that free must not outrank a grant a concurrent
        // view with quorum made at a lower epoch (its members may have
        // seen fewer views): it keeps the version it frees, and a grant
        // under the same version wins the merge.
        let kept = (holder.is_none() && !self.decides(view))
            .then(|| self.table.get(&lock).map(|e| e.version))
            .flatten();
        let Some(m) = self.master.as_mut() else {
            return;
        };
        m.counter += 1;
        let e = Entry {
            holder,
            version: kept.unwrap_or((view.id.epoch, m.counter)),
        };
        if holder.is_some() {
            m.acks.insert((lock, e.version), NodeSet::of([self.me]));
        }
        if m.resynced {
            let lost = self.apply(&[(lock, e)]);
            self.broadcast(&[(lock, e)]);
            self.lost(lost);
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

    /// Applies the master's entries and returns the locks this node no
    /// longer holds, for [`LockTable::lost`] once persisted (gains come
    /// with the master's confirmation).
    fn apply(&mut self, entries: &[(LockId, Entry)]) -> Vec<LockId> {
        let mut lost = Vec::new();
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
            if e.holder == Some(self.me) && self.confirmed.contains_key(&lock) {
                // Kept by the holder it already had, under a new version
                // (two claimants settled): still held, nothing to tell.
                self.confirmed.insert(lock, e.version);
            } else if before && !self.holds(lock) {
                lost.push(lock);
            }
        }
        lost
    }

    /// Tells the driver what it lost (after the replica that says so was
    /// persisted: a restart must not hold it again).
    fn lost(&mut self, locks: Vec<LockId>) {
        for lock in locks {
            self.confirmed.remove(&lock);
            self.held_priority.remove(&lock);
            self.out.push_back(Action::Lost(lock));
        }
    }

    /// The replica: format, boot id, trust, entries, then the locks held
    /// here with their versions.
    fn persist(&mut self) {
        let mut data = vec![FORMAT];
        data.extend(self.boot.to_be_bytes());
        data.push(u8::from(self.trusted));
        let entries: Vec<(LockId, Entry)> = self.table.iter().map(|(&l, &e)| (l, e)).collect();
        put_entries(&mut data, &entries);
        let held: Vec<(LockId, Version)> = self
            .held_here()
            .into_iter()
            .map(|l| (l, self.confirmed[&l]))
            .collect();
        data.extend((held.len() as u16).to_be_bytes());
        for (lock, (epoch, counter)) in held {
            data.extend(lock.to_be_bytes());
            data.extend(epoch.to_be_bytes());
            data.extend(counter.to_be_bytes());
        }
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

/// Locks with a priority each: held ones, wanted ones.
fn put_prioritised(d: &mut Vec<u8>, locks: &[(LockId, u8)]) {
    d.extend((locks.len() as u16).to_be_bytes());
    for (l, p) in locks {
        d.extend(l.to_be_bytes());
        d.push(*p);
    }
}

/// The claims a resync settles, each with the member that keeps the lock:
/// a lock that two or more `members` hold at once (the highest priority,
/// then the lowest node id keeps it), or that one holds while the `table`
/// names no holder or another member (freed, or taken, after a false
/// confirmation of the claimant). A lock the table gives a node outside the
/// view stays that node's: its service may run there.
fn claims_to_settle(
    held: &BTreeMap<NodeId, Vec<(LockId, u8)>>,
    table: &BTreeMap<LockId, Entry>,
    members: NodeSet,
) -> Vec<(LockId, NodeId)> {
    let mut claims: BTreeMap<LockId, Vec<(u8, NodeId)>> = BTreeMap::new();
    for (&node, locks) in held {
        for &(lock, priority) in locks {
            claims.entry(lock).or_default().push((priority, node));
        }
    }
    claims
        .into_iter()
        .filter_map(|(lock, c)| {
            let two = c.len() > 1;
            let (_, keeper) = c
                .into_iter()
                .max_by_key(|&(p, n)| (p, std::cmp::Reverse(n)))?;
            let holder = table.get(&lock).and_then(|e| e.holder);
            let freed = holder != Some(keeper) && holder.is_none_or(|h| members.contains(h));
            (two || freed).then_some((lock, keeper))
        })
        .collect()
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

    fn prioritised(&mut self) -> Result<Vec<(LockId, u8)>, BadMessage> {
        let n = self.u16()?;
        (0..n).map(|_| Ok((self.u32()?, self.u8()?))).collect()
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

    fn boot_of(id: NodeId) -> u32 {
        0x100 * u32::from(id)
    }

    /// Nodes 1..=n with instant delivery between connected running nodes,
    /// and what each driver would keep on disk.
    struct Mini {
        all: NodeSet,
        views: Vec<Agreement>,
        locks: Vec<LockTable>,
        /// Whose daemon runs.
        up: Vec<bool>,
        /// Everyone running sees everyone running (else only itself).
        linked: bool,
        /// The master's confirmations are lost (a grant left in flight).
        drop_confirms: bool,
        boots: Vec<u32>,
        disk: Vec<Vec<u8>>,
        epochs: Vec<u64>,
        /// What each driver heard, but sends.
        log: Vec<(NodeId, Action)>,
    }

    impl Mini {
        fn new(n: u8) -> Mini {
            Mini::of(n, NodeSet::of(1..=n))
        }

        /// Nodes 1..=n of a cluster of `all`.
        fn of(n: u8, all: NodeSet) -> Mini {
            let mut m = Mini {
                all,
                views: (1..=n).map(|id| Agreement::new(id, 0)).collect(),
                locks: (1..=n)
                    .map(|id| LockTable::new(id, all, boot_of(id)))
                    .collect(),
                up: vec![true; usize::from(n)],
                linked: true,
                drop_confirms: false,
                boots: (1..=n).map(boot_of).collect(),
                disk: vec![Vec::new(); usize::from(n)],
                epochs: vec![0; usize::from(n)],
                log: Vec::new(),
            };
            m.connect(true);
            m
        }

        fn connect(&mut self, linked: bool) {
            self.linked = linked;
            self.refresh();
            self.settle();
        }

        /// Tells every running node whom it sees.
        fn refresh(&mut self) {
            let running = NodeSet::of((1..=self.up.len() as u8).filter(|&id| self.is_up(id)));
            for id in running.iter() {
                let live = if self.linked {
                    running
                } else {
                    NodeSet::of([id])
                };
                self.views[usize::from(id) - 1].live_changed(live);
            }
        }

        fn is_up(&self, id: NodeId) -> bool {
            self.up[usize::from(id) - 1]
        }

        fn settle(&mut self) {
            for _ in 0..1000 {
                let mut mail = Vec::new();
                for i in 0..self.views.len() {
                    let me = i as u8 + 1;
                    if !self.up[i] {
                        continue;
                    }
                    while let Some(a) = self.views[i].poll() {
                        match a {
                            view::Action::Send { to, data } => mail.push((me, to, data)),
                            view::Action::Installed(v) => self.locks[i].view_installed(v),
                            view::Action::Persist { epoch } => self.epochs[i] = epoch,
                        }
                    }
                    while let Some(a) = self.locks[i].poll() {
                        match a {
                            Action::Send { to, data } => mail.push((me, to, data)),
                            Action::Persist(data) => {
                                self.disk[i] = data.clone();
                                self.log.push((me, Action::Persist(data)));
                            }
                            a => self.log.push((me, a)),
                        }
                    }
                }
                if mail.is_empty() {
                    return;
                }
                for (from, to, data) in mail {
                    if !self.linked || !self.is_up(to) {
                        continue;
                    }
                    let i = usize::from(to) - 1;
                    if data[0] == view::PROTOCOL {
                        self.views[i].handle_message(from, &data).unwrap();
                    } else if !(self.drop_confirms && data[1] == CONFIRM) {
                        self.locks[i].handle_message(from, &data).unwrap();
                    }
                }
            }
            panic!("no quiet after 1000 rounds");
        }

        fn lock(&mut self, node: u8) -> &mut LockTable {
            &mut self.locks[usize::from(node) - 1]
        }

        /// The daemon of `node` stops (its services may keep running).
        fn stop(&mut self, node: NodeId) {
            self.up[usize::from(node) - 1] = false;
            self.refresh();
            self.settle();
        }

        /// `node` announces its leave and stops; every running node hears it.
        fn leave(&mut self, node: NodeId) {
            for id in 1..=self.up.len() as u8 {
                if id != node && self.is_up(id) && self.linked {
                    self.lock(id).node_left(node);
                }
            }
            self.stop(node);
        }

        /// The daemon of `node` starts again from its disk, on the same OS
        /// boot or after a reboot.
        fn restart(&mut self, node: NodeId, same_boot: bool) {
            let i = usize::from(node) - 1;
            if !same_boot {
                self.boots[i] += 1;
            }
            self.locks[i] = LockTable::restore(node, self.all, &self.disk[i], self.boots[i])
                .expect("its own replica");
            self.views[i] = Agreement::new(node, self.epochs[i]);
            self.up[i] = true;
            for id in 1..=self.up.len() as u8 {
                if id != node && self.is_up(id) {
                    self.views[usize::from(id) - 1].peer_reset(node);
                }
            }
            self.refresh();
            self.settle();
        }

        /// What `node`'s driver heard since the log was cleared (persists
        /// left out).
        fn heard(&self, node: NodeId) -> Vec<Action> {
            self.log
                .iter()
                .filter(|(n, a)| *n == node && !matches!(a, Action::Persist(_)))
                .map(|(_, a)| a.clone())
                .collect()
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

    /// Two claimants after a false fence confirmation: at the heal the
    /// higher priority keeps the lock whatever grant is newer, without a
    /// new Granted; the other loses it at once (rule 8).
    fn two_claimants(keeper_priority: u8, other_priority: u8) -> Mini {
        let mut m = Mini::new(2);
        m.lock(1).request(1, keeper_priority);
        m.settle();
        m.connect(false);
        m.lock(2).request(1, other_priority);
        m.lock(2).node_fenced(1); // the operator was wrong: 1 runs
        m.settle();
        assert!(m.lock(1).holds(1) && m.lock(2).holds(1), "staged");
        m.log.clear();
        m.connect(true);
        m
    }

    #[test]
    fn two_claimants_the_higher_priority_keeps_it() {
        let mut m = two_claimants(5, 1);
        assert!(m.lock(1).holds(1) && !m.lock(2).holds(1));
        assert!(m.log.contains(&(2, Action::Lost(1))), "{:?}", m.log);
        assert!(
            !m.log
                .iter()
                .any(|(n, a)| *n == 1 && matches!(a, Action::Lost(1) | Action::Granted(1))),
            "the keeper is told nothing: {:?}",
            m.log
        );
        let mut m = two_claimants(1, 5);
        assert!(!m.lock(1).holds(1) && m.lock(2).holds(1));
        assert!(m.log.contains(&(1, Action::Lost(1))), "{:?}", m.log);
        assert!(!m.log.iter().any(|(n, a)| *n == 2 && *a == Action::Lost(1)));
    }

    /// Node `victim` holds lock 1 (priority `kept`) and runs on while cut
    /// off; node `confirmer` is told it is off (the operator's mistake)
    /// and, if it wants lock 1 (priority `taken`), takes it. Then the cut
    /// heals.
    fn false_confirmation(victim: NodeId, confirmer: NodeId, kept: u8, taken: Option<u8>) -> Mini {
        let mut m = Mini::new(2);
        m.lock(victim).request(1, kept);
        m.settle();
        m.connect(false);
        if let Some(priority) = taken {
            m.lock(confirmer).request(1, priority);
        }
        m.lock(confirmer).node_fenced(victim);
        m.settle();
        assert!(m.lock(victim).holds(1), "staged");
        assert_eq!(m.lock(confirmer).holds(1), taken.is_some(), "staged");
        m.log.clear();
        m.connect(true);
        m
    }

    /// At the heal the confirmer hears that node `victim` kept running; the
    /// higher priority claimant keeps lock 1, the other loses it at once
    /// (rule 8), whichever node is the master.
    #[test]
    fn a_false_confirmation_is_found_out_at_the_heal() {
        for (victim, confirmer) in [(1, 2), (2, 1)] {
            for (kept, taken) in [(5, 1), (1, 5)] {
                let m = &mut false_confirmation(victim, confirmer, kept, Some(taken));
                let (winner, loser) = if kept > taken {
                    (victim, confirmer)
                } else {
                    (confirmer, victim)
                };
                let what = format!("victim {victim}, priorities {kept}/{taken}: {:?}", m.log);
                assert!(m.lock(winner).holds(1) && !m.lock(loser).holds(1), "{what}");
                assert!(
                    m.locks.iter().all(|l| l.holder(1) == Some(winner)),
                    "{what}"
                );
                assert!(m.log.contains(&(loser, Action::Lost(1))), "{what}");
                assert!(
                    m.log.contains(&(confirmer, Action::FalseFence(victim))),
                    "{what}"
                );
                let told = |n: NodeId, a: &Action| {
                    m.log.iter().filter(|(by, x)| *by == n && x == a).count()
                };
                assert_eq!(told(confirmer, &Action::FalseFence(victim)), 1, "{what}");
                assert!(
                    m.heard(victim)
                        .iter()
                        .all(|a| !matches!(a, Action::FalseFence(_)))
                );
                assert!(!m.heard(winner).contains(&Action::Granted(1)), "{what}");
            }
        }
    }

    /// A false confirmation of a holder whose lock nobody took: the other
    /// side freed it, but at the heal the holder keeps it without a Lost or
    /// a Granted (its service is not restarted).
    #[test]
    fn a_sole_claimant_keeps_its_lock_after_a_false_confirmation() {
        for (victim, confirmer) in [(1, 2), (2, 1)] {
            let mut m = false_confirmation(victim, confirmer, 1, None);
            assert!(m.lock(victim).holds(1), "victim {victim}: {:?}", m.log);
            assert!(m.locks.iter().all(|l| l.holder(1) == Some(victim)));
            assert!(m.heard(victim).is_empty(), "{:?}", m.log);
            assert_eq!(m.heard(confirmer), vec![Action::FalseFence(victim)]);
        }
    }

    /// A node that is in the installed view is alive: a confirmation that
    /// it is off is ignored, and gives nothing when it is cut off later.
    #[test]
    fn a_confirmation_of_a_member_is_ignored() {
        for (holder, other) in [(1, 2), (2, 1)] {
            let mut m = Mini::new(2);
            m.lock(holder).request(1, 1);
            m.settle();
            m.lock(other).node_fenced(holder);
            m.lock(other).node_fenced(other);
            m.connect(false);
            m.log.clear();
            m.lock(other).request(1, 1);
            m.lock(other).request(2, 1);
            m.settle();
            assert!(!m.lock(other).holds(1) && !m.lock(other).holds(2));
            assert!(m.heard(other).is_empty(), "{:?}", m.log);
        }
    }

    /// A confirmation is true when the node comes back on another boot;
    /// a daemon that was only stopped (its OS, and the services, ran on)
    /// comes back on the same boot: the confirmation was false.
    #[test]
    fn a_confirmation_is_judged_by_the_boot_the_node_comes_back_on() {
        for (victim, confirmer) in [(1, 2), (2, 1)] {
            for same_boot in [false, true] {
                let mut m = Mini::new(2);
                m.lock(victim).request(1, 5);
                m.settle();
                m.stop(victim);
                m.lock(confirmer).request(1, 1);
                m.lock(confirmer).node_fenced(victim);
                m.settle();
                assert!(m.lock(confirmer).holds(1));
                m.log.clear();
                m.restart(victim, same_boot);
                let found = m.log.contains(&(confirmer, Action::FalseFence(victim)));
                assert_eq!(found, same_boot, "victim {victim}: {:?}", m.log);
                // Rebooted, it holds nothing; on the same boot it claims
                // lock 1 with priority 0 (a restarted daemon's) and loses.
                assert!(m.lock(confirmer).holds(1) && !m.lock(victim).holds(1));
                let lost = m.log.contains(&(victim, Action::Lost(1)));
                assert_eq!(lost, same_boot, "{:?}", m.log);
            }
        }
    }

    #[test]
    fn a_fresh_node_alone_grants_nothing() {
        let mut fresh = Mini::of(1, NodeSet::of([1, 2]));
        fresh.lock(1).request(1, 1);
        fresh.settle();
        assert!(!fresh.lock(1).holds(1) && !fresh.lock(1).trusted());
        // Until the peer that never came back is confirmed off (by a fence
        // device or the operator): then nothing can be held elsewhere.
        fresh.lock(1).node_fenced(2);
        fresh.settle();
        assert!(fresh.lock(1).trusted() && fresh.lock(1).holds(1));
    }

    #[test]
    fn a_fresh_node_of_three_needs_the_third_seen_or_fenced() {
        let mut m = Mini::of(2, NodeSet::of([1, 2, 3]));
        m.lock(1).request(1, 1);
        m.settle();
        assert!(!m.lock(1).holds(1), "quorum but not every node seen");
        m.lock(1).node_fenced(3);
        m.lock(2).node_fenced(3);
        m.settle();
        assert!(m.lock(1).holds(1));
    }

    #[test]
    fn bad_messages_are_refused() {
        let mut l = LockTable::new(1, NodeSet::of([1, 2]), 7);
        assert_eq!(l.handle_message(2, &[]), Err(BadMessage));
        assert_eq!(
            l.handle_message(2, &[PROTOCOL, REQUEST, 0]),
            Err(BadMessage)
        );
    }

    /// The leaver (the master, then the other node) still holds lock 1 when
    /// it leaves (its daemon stopped, its service may run on): the survivor
    /// takes free lock 2 at once, lock 1 only once the leaver is fenced.
    #[test]
    fn after_a_clean_leave_the_survivor_grants_free_locks_only() {
        for (leaver, survivor) in [(1, 2), (2, 1)] {
            let mut m = Mini::new(2);
            m.lock(leaver).request(1, 1);
            m.settle();
            assert!(m.lock(leaver).holds(1));
            m.lock(survivor).request(1, 1);
            m.settle();
            m.leave(leaver);
            m.lock(survivor).request(2, 1);
            m.settle();
            assert!(m.lock(survivor).holds(2), "a free lock after the leave");
            assert!(!m.lock(survivor).holds(1), "the leaver's lock is orphaned");
            m.lock(survivor).node_fenced(leaver);
            m.settle();
            assert!(m.lock(survivor).holds(1), "granted once the leaver is off");
        }
    }

    /// The primary releases its lock on a clean shutdown and leaves: the
    /// backup takes it without any fence.
    #[test]
    fn the_survivor_takes_the_lock_the_leaver_released() {
        let mut m = Mini::new(2);
        m.lock(1).request(1, 1);
        m.settle();
        m.lock(1).release(1);
        m.settle();
        m.leave(1);
        m.lock(2).request(1, 1);
        m.settle();
        assert!(m.lock(2).holds(1));
        assert_eq!(m.heard(2), vec![Action::Granted(1)]);
    }

    /// Without a leave (or a fence) the survivor of two still grants
    /// nothing, and a leave is forgotten once the node is back in a view.
    #[test]
    fn a_leave_is_forgotten_when_the_node_returns() {
        let mut m = Mini::new(2);
        m.leave(1);
        m.restart(1, true);
        m.connect(false);
        m.lock(2).request(2, 1);
        m.settle();
        assert!(!m.lock(2).holds(2), "node 1 is back: a cut needs a fence");
    }

    /// A node that never synced with the leaver (here restarted while cut
    /// off, from a trusted replica) may not know what the leaver holds:
    /// the leave does not let it grant.
    #[test]
    fn a_leave_counts_only_after_a_sync_with_the_leaver() {
        let mut m = Mini::new(2);
        m.lock(1).request(1, 1);
        m.settle();
        m.connect(false);
        m.stop(2);
        m.restart(2, true);
        assert!(m.lock(2).trusted());
        m.lock(2).node_left(1);
        m.lock(2).request(2, 1);
        m.settle();
        assert!(!m.lock(2).holds(2));
    }

    /// The master grants lock 1 to node 2, but its confirmation is lost as
    /// it stops cleanly: node 2 alone frees the unconfirmed grant at its
    /// resync and takes the lock. The old master, restarted on the same
    /// boot, holds nothing; cut off, it grants nothing, and it grants again
    /// once it resynced with both nodes.
    #[test]
    fn a_master_leaves_with_a_grant_to_the_survivor_in_flight() {
        let mut m = Mini::new(2);
        m.drop_confirms = true;
        m.lock(2).request(1, 1);
        m.settle();
        assert!(!m.lock(2).holds(1) && m.lock(2).holder(1) == Some(2));
        m.drop_confirms = false;
        m.lock(1).release(1);
        m.lock(1).release(2);
        m.settle();
        m.leave(1);
        assert!(m.lock(2).holds(1), "re-granted after the resync");
        m.connect(false);
        m.restart(1, true);
        assert!(!m.lock(1).holds(1) && m.heard(1).is_empty());
        m.lock(1).request(2, 1);
        m.settle();
        assert!(!m.lock(1).holds(2), "restarted alone: grants nothing");
        m.connect(true);
        assert!(m.lock(1).holds(2) && m.lock(2).holds(1));
        assert!(!m.lock(1).holds(1) && !m.lock(2).holds(2));
        assert!(m.locks.iter().all(|l| l.holder(1) == Some(2)));
    }

    /// A daemon restart on the same boot (fast, or slow enough that the
    /// peer formed a view alone) keeps the locks it held, for the master
    /// and for the other node; after a reboot it holds nothing.
    #[test]
    fn a_daemon_restart_on_the_same_boot_keeps_its_locks() {
        for (restarter, other) in [(1, 2), (2, 1)] {
            for slow in [false, true] {
                let mut m = Mini::new(2);
                m.lock(restarter).request(1, 1);
                m.settle();
                m.lock(other).request(1, 1);
                m.settle();
                if slow {
                    m.stop(restarter);
                    assert!(!m.lock(other).holds(1));
                }
                m.log.clear();
                m.restart(restarter, true);
                assert!(m.lock(restarter).holds(1), "{restarter} slow {slow}");
                assert!(!m.lock(other).holds(1));
                assert_eq!(m.heard(restarter), vec![Action::Granted(1)]);
                assert!(m.locks.iter().all(|l| l.holder(1) == Some(restarter)));
                m.log.clear();
                m.restart(restarter, false);
                assert!(!m.lock(restarter).holds(1), "rebooted: nothing runs");
                assert!(m.lock(other).holds(1), "the waiter's turn");
                assert!(m.heard(restarter).is_empty());
            }
        }
    }

    /// Every Granted and Lost comes after a persisted replica that already
    /// says so, and a release is persisted before it goes out.
    #[test]
    fn what_this_node_holds_is_persisted_before_anyone_hears() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut m = Mini::new(3);
        for _ in 0..300 {
            let node = rng.random_range(1..=3u8);
            let lock = rng.random_range(1..=3u32);
            match rng.random_range(0..10u32) {
                0 => {
                    let linked = !m.linked;
                    m.connect(linked);
                }
                1..=4 => m.lock(node).request(lock, rng.random_range(0..3u8)),
                _ => {
                    let held = m.lock(node).holds(lock);
                    m.lock(node).release(lock);
                    if held {
                        let last = m.lock(node).poll();
                        assert!(matches!(last, Some(Action::Persist(_))), "{last:?}");
                        m.log.push((node, last.unwrap()));
                    }
                }
            }
            m.settle();
        }
        let mut disk: BTreeMap<NodeId, Vec<u8>> = BTreeMap::new();
        let mut heard = 0;
        for (node, a) in &m.log {
            let restored = |d: &BTreeMap<NodeId, Vec<u8>>| {
                LockTable::restore(*node, m.all, &d[node], boot_of(*node)).unwrap()
            };
            match a {
                Action::Persist(d) => {
                    disk.insert(*node, d.clone());
                }
                Action::Granted(l) => {
                    heard += 1;
                    assert!(restored(&disk).holds(*l));
                }
                Action::Lost(l) => {
                    heard += 1;
                    assert!(!restored(&disk).holds(*l));
                }
                Action::Send { .. } | Action::FalseFence(_) => unreachable!(),
            }
        }
        assert!(heard > 20, "{heard}");
    }

    #[test]
    fn restore_refuses_what_is_not_a_replica() {
        let mut m = Mini::new(2);
        m.lock(2).request(5, 1);
        m.lock(1).request(6, 1);
        m.settle();
        let good = m.disk[1].clone();
        let all = NodeSet::of([1, 2]);
        let restored = LockTable::restore(2, all, &good, boot_of(2)).unwrap();
        assert!(restored.holds(5) && restored.holder(6) == Some(1));
        for n in 0..good.len() {
            assert_eq!(
                LockTable::restore(2, all, &good[..n], boot_of(2)).err(),
                Some(BadMessage),
                "a prefix of {n} bytes"
            );
        }
        let mut longer = good.clone();
        longer.push(0);
        let mut old_format = good.clone();
        old_format[0] = 1;
        let mut bad_trust = good.clone();
        bad_trust[5] = 2;
        for bad in [longer, old_format, bad_trust] {
            assert!(LockTable::restore(2, all, &bad, boot_of(2)).is_err());
        }
        // Node 1's replica names node 2's lock 5: claimed by node 1 it is
        // not what node 1 holds; two entries for one lock are refused too.
        let theirs = m.disk[0].clone();
        let mut forged = theirs.clone();
        // The last 16 bytes: its one held lock and that lock's version.
        let held = forged.len() - 16;
        forged[held..held + 4].copy_from_slice(&5u32.to_be_bytes());
        assert!(
            LockTable::restore(1, all, &theirs, boot_of(1))
                .unwrap()
                .holds(6)
        );
        assert!(LockTable::restore(1, all, &forged, boot_of(1)).is_err());
        let mut twice = LockTable::new(1, all, 9);
        twice.table.insert(
            3,
            Entry {
                holder: None,
                version: (1, 1),
            },
        );
        twice.persist();
        let Some(Action::Persist(mut d)) = twice.poll() else {
            panic!("a replica")
        };
        d[7] = 2;
        let entry = d[8..8 + 17].to_vec();
        d.splice(8 + 17..8 + 17, entry);
        assert!(LockTable::restore(1, all, &d, 9).is_err());
        // Damaged replicas never panic.
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..2000 {
            let mut d = good.clone();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..d.len());
                d[i] = rng.random();
            }
            let _ = LockTable::restore(2, all, &d, boot_of(2));
        }
    }

    /// Hands the lock messages among the running `group` until quiet (mail
    /// to or from anyone else is lost), keeping each node's replica.
    fn exchange(t: &mut [LockTable], disk: &mut [Vec<u8>], group: NodeSet) {
        loop {
            let mut mail = Vec::new();
            for (i, table) in t.iter_mut().enumerate() {
                let me = i as NodeId + 1;
                while let Some(a) = table.poll() {
                    match a {
                        Action::Send { to, data } if group.contains(me) && group.contains(to) => {
                            mail.push((me, to, data))
                        }
                        Action::Persist(data) => disk[i] = data,
                        _ => {}
                    }
                }
            }
            if mail.is_empty() {
                return;
            }
            for (from, to, data) in mail {
                t[usize::from(to) - 1].handle_message(from, &data).unwrap();
            }
        }
    }

    /// Installs the view `members` of `epoch` (the lowest id coordinates)
    /// on its members, and lets them resync.
    fn install(t: &mut [LockTable], disk: &mut [Vec<u8>], epoch: u64, members: NodeSet) {
        let coordinator = members.iter().min().unwrap();
        let view = View {
            id: crate::view::ViewId { epoch, coordinator },
            members,
        };
        for id in members.iter() {
            t[usize::from(id) - 1].view_installed(view);
        }
        exchange(t, disk, members);
    }

    /// Seeds 3287, 4729 and 6355 of `random_three_nodes`: node 1 rebooted
    /// while cut off, and {2, 3} granted its lock to node 2 once node 1 was
    /// fenced. Node 1 alone, restored from its replica, freed that lock
    /// (it holds nothing) in a view of its own, of the same epoch as the
    /// grant or a later one; merged into the view {1, 3}, that free named
    /// the lock free, and node 3 got it while node 2 ran it. A view without
    /// quorum frees without outranking the grant of a concurrent one.
    #[test]
    fn a_free_in_a_minority_does_not_outrank_the_majority_grant() {
        for minority_epoch in [2, 3] {
            let all = NodeSet::of([1, 2, 3]);
            let mut t: Vec<LockTable> = (1..=3)
                .map(|id| LockTable::new(id, all, boot_of(id)))
                .collect();
            let mut disk = vec![Vec::new(); 3];
            install(&mut t, &mut disk, 1, all);
            t[0].request(1, 1);
            exchange(&mut t, &mut disk, all);
            assert!(t[0].holds(1));
            // Node 1 is fenced: it reboots, holding nothing.
            t[0] = LockTable::restore(1, all, &disk[0], boot_of(1) + 1).unwrap();
            assert!(!t[0].holds(1) && t[0].holder(1) == Some(1));
            let majority = NodeSet::of([2, 3]);
            install(&mut t, &mut disk, 2, majority);
            t[1].node_fenced(1);
            t[2].node_fenced(1);
            t[1].request(1, 1);
            exchange(&mut t, &mut disk, majority);
            assert!(t[1].holds(1), "epoch {minority_epoch}");
            // Node 1 alone frees what it no longer holds.
            install(&mut t, &mut disk, minority_epoch, NodeSet::of([1]));
            assert_eq!(t[0].holder(1), None);
            // Nodes 1 and 3 meet; node 2 still runs the lock, unseen.
            t[2].request(1, 1);
            install(&mut t, &mut disk, 4, NodeSet::of([1, 3]));
            assert!(!t[2].holds(1), "epoch {minority_epoch}: granted twice");
            assert_eq!(t[0].holder(1), Some(2), "epoch {minority_epoch}: orphaned");
            // Once node 2 is confirmed off, node 3 gets it (never lost).
            t[0].node_fenced(2);
            exchange(&mut t, &mut disk, NodeSet::of([1, 3]));
            assert!(t[2].holds(1), "epoch {minority_epoch}");
        }
    }
}
