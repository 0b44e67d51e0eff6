//! The simulated cluster: 2 to 5 configuration stores on a virtual clock,
//! joined by per-peer channels that are reliable and ordered while both
//! ends stay up and on one side (random delays; messages in flight are lost
//! on a crash or a partition), with the views the test installs. Every
//! action the stores emit is carried out (sends, persists, file writes,
//! outcomes) and the invariants are checked after every step.

use crate::history::{Commit, History, SEED};
use litecloud::Time;
use litecloud::channel::MAX_MESSAGE;
use litecloud::config::{Action, Doc, Edit, Refusal, Store, TIMEOUT, Ticket, Version};
use litecloud::view::{NodeSet, View, ViewId};
use litecloud::wire::NodeId;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The nodes' check: content "bad" is refused everywhere.
pub fn check(_: &str, content: Option<&[u8]>) -> Result<(), String> {
    match content {
        Some(b"bad") => Err("bad content".into()),
        _ => Ok(()),
    }
}

/// The most steps [`World::quiet`] takes.
const MAX_QUIET_STEPS: usize = 1_000_000;

struct Node {
    /// None while crashed.
    store: Option<Store>,
    persisted: Vec<u8>,
    /// The files on its disk (what it applied).
    files: BTreeMap<String, (Version, Option<Vec<u8>>)>,
    /// Its documents' versions as last checked.
    seen: BTreeMap<String, Version>,
    /// Its side of the partition.
    side: usize,
    /// The members of its installed view.
    view: NodeSet,
}

/// Messages in flight from one node to another, with their arrival times.
type Link = VecDeque<(Time, Vec<u8>)>;

/// An edit waiting for its outcome.
struct Proposed {
    name: String,
    content: Option<Vec<u8>>,
    base: Option<Version>,
    conflicts: Vec<Version>,
    side: NodeSet,
}

/// How an edit ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done(Version),
    Refused(Refusal),
}

pub struct World {
    pub rng: StdRng,
    now: Time,
    ids: NodeSet,
    nodes: BTreeMap<NodeId, Node>,
    view_epoch: u64,
    links: BTreeMap<(NodeId, NodeId), Link>,
    /// Per node, the view it installs next and when (members install a new
    /// view at different times, as the view protocol's commits arrive).
    views: BTreeMap<NodeId, (Time, View)>,
    pub history: History,
    proposed: BTreeMap<(NodeId, Ticket), Proposed>,
    pub outcomes: BTreeMap<(NodeId, Ticket), Outcome>,
    /// The node whose edit's immediate actions are being carried out.
    proposing: Option<NodeId>,
    /// Conflicts reported, per node.
    pub conflicts: BTreeMap<NodeId, usize>,
    /// Whether a node may crash while it handles a message.
    pub crashes: bool,
    /// "node document mine theirs peer" of each conflict reported since
    /// the node started.
    reported: BTreeSet<String>,
}

impl World {
    /// Nodes 1..=n, each seeded with `files(node)`, all on one side.
    pub fn new(seed: u64, n: NodeId, files: impl Fn(NodeId) -> Vec<(String, Vec<u8>)>) -> World {
        let ids = NodeSet::of(1..=n);
        let mut world = World {
            rng: StdRng::seed_from_u64(seed),
            now: Time::ZERO,
            ids,
            nodes: BTreeMap::new(),
            view_epoch: 0,
            links: BTreeMap::new(),
            views: BTreeMap::new(),
            history: History::default(),
            proposed: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            proposing: None,
            conflicts: BTreeMap::new(),
            reported: BTreeSet::new(),
            crashes: false,
        };
        for id in ids.iter() {
            let files = files(id);
            let on_disk = files
                .iter()
                .map(|(name, c)| (name.clone(), (SEED, Some(c.clone()))))
                .collect();
            let node = Node {
                store: Some(Store::seed(id, ids, files)),
                persisted: Vec::new(),
                files: on_disk,
                seen: BTreeMap::new(),
                side: 0,
                view: NodeSet::default(),
            };
            world.nodes.insert(id, node);
            world.drain(id);
        }
        world.install_views();
        world.quiet();
        world
    }

    pub fn up(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.store.is_some())
            .map(|(&id, _)| id)
            .collect()
    }

    pub fn down(&self) -> Vec<NodeId> {
        self.ids
            .iter()
            .filter(|id| !self.up().contains(id))
            .collect()
    }

    fn store(&self, id: NodeId) -> &Store {
        self.nodes[&id].store.as_ref().expect("node is up")
    }

    fn store_mut(&mut self, id: NodeId) -> &mut Store {
        self.nodes
            .get_mut(&id)
            .and_then(|n| n.store.as_mut())
            .expect("node is up")
    }

    pub fn doc(&self, id: NodeId, name: &str) -> Option<Doc> {
        self.store(id).get(name)
    }

    pub fn version(&self, id: NodeId, name: &str) -> Option<Version> {
        self.doc(id, name).map(|d| d.version)
    }

    pub fn content(&self, id: NodeId, name: &str) -> Option<Vec<u8>> {
        self.doc(id, name).and_then(|d| d.content)
    }

    pub fn in_doubt(&self, id: NodeId, name: &str) -> Option<NodeId> {
        self.store(id).in_doubt(name)
    }

    pub fn store_conflicts(&self, id: NodeId, name: &str) -> Vec<(NodeId, Version)> {
        self.store(id).conflicts(name)
    }

    /// The up nodes on `id`'s side.
    fn side(&self, id: NodeId) -> NodeSet {
        let side = self.nodes[&id].side;
        NodeSet::of(self.up().into_iter().filter(|n| self.nodes[n].side == side))
    }

    /// Splits the up nodes into `sides` (up nodes not named get a side of
    /// their own each); messages between sides are lost.
    pub fn partition(&mut self, sides: &[&[NodeId]]) {
        let mut next = 0;
        for id in self.up() {
            let side = sides.iter().position(|s| s.contains(&id));
            self.nodes.get_mut(&id).expect("node").side = match side {
                Some(s) => s,
                None => {
                    next += 1;
                    sides.len() + next
                }
            };
        }
        self.install_views();
    }

    /// Every up node on one side.
    pub fn heal(&mut self) {
        let up = self.up();
        self.partition(&[&up]);
    }

    /// A random split of the up nodes.
    pub fn random_partition(&mut self) {
        let up = self.up();
        let sides = self.rng.random_range(1..=up.len().min(3));
        for id in up {
            self.nodes.get_mut(&id).expect("node").side = self.rng.random_range(0..sides);
        }
        self.install_views();
    }

    /// Drops the links that now cross sides, and installs a new view on
    /// every node whose side changed.
    fn install_views(&mut self) {
        let up = self.up();
        let same_side = |w: &World, a: NodeId, b: NodeId| {
            up.contains(&a) && up.contains(&b) && w.nodes[&a].side == w.nodes[&b].side
        };
        let cut: Vec<(NodeId, NodeId)> = self
            .links
            .keys()
            .filter(|&&(a, b)| !same_side(self, a, b))
            .copied()
            .collect();
        for link in cut {
            self.links.remove(&link);
        }
        for id in up {
            let members = self.side(id);
            if self.nodes[&id].view == members {
                continue;
            }
            self.view_epoch += 1;
            let view = View {
                id: ViewId {
                    epoch: self.view_epoch,
                    coordinator: members.first().expect("a member"),
                },
                members,
            };
            for m in members.iter() {
                self.nodes.get_mut(&m).expect("node").view = members;
                let at = self.now + Time::from_millis(self.rng.random_range(0..300));
                self.views.insert(m, (at, view));
            }
        }
    }

    /// Node `id` crashes: its state is what it persisted last.
    pub fn crash(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("node");
        node.store = None;
        node.view = NodeSet::default();
        self.views.remove(&id);
        self.links.retain(|&(a, b), _| a != id && b != id);
        self.install_views();
    }

    /// Node `id` restarts from its last persist, joining `side_of`'s side
    /// (or a side of its own).
    pub fn restart(&mut self, id: NodeId, side_of: Option<NodeId>) {
        let node = &self.nodes[&id];
        let store = Store::restore(id, self.ids, &node.persisted)
            .unwrap_or_else(|e| panic!("node {id} cannot restore: {e}"));
        for (name, &v) in &node.seen {
            let restored = store.get(name).map(|d| d.version);
            assert!(
                restored.is_some_and(|r| self.history.descends(name, r, v)),
                "node {id} forgot {name} {v} at its restart: {restored:?}"
            );
        }
        // The driver writes the files of the restored store (a crash
        // between a persist and its file write leaves the file older).
        let files = store
            .docs()
            .into_iter()
            .map(|d| (d.name, (d.version, d.content)))
            .collect();
        let side = match side_of {
            Some(other) => self.nodes[&other].side,
            None => usize::MAX - usize::from(id),
        };
        self.reported.retain(|r| !r.starts_with(&format!("{id} ")));
        let node = self.nodes.get_mut(&id).expect("node");
        node.store = Some(store);
        node.files = files;
        node.side = side;
        self.install_views();
    }

    /// An operator's edit on node `id`.
    pub fn edit(&mut self, id: NodeId, edit: Edit) -> Result<Ticket, Refusal> {
        let current = self.version(id, &edit.name);
        let conflicts = self.store_conflicts(id, &edit.name);
        let (name, content) = (edit.name.clone(), edit.content.clone());
        let now = self.now;
        let result = self.store_mut(id).propose(now, edit, &check);
        if let Ok(ticket) = result {
            let proposed = Proposed {
                name,
                content,
                base: current,
                conflicts: conflicts.into_iter().map(|(_, v)| v).collect(),
                side: self.side(id),
            };
            self.proposed.insert((id, ticket), proposed);
        }
        if let Err(Refusal::Stale { current: shown }) = &result {
            assert_eq!(*shown, current, "a stale edit shows the current version");
        }
        self.proposing = Some(id);
        self.drain(id);
        self.proposing = None;
        result
    }

    /// The outcome of edit `ticket` of node `id`, once known.
    pub fn outcome(&self, id: NodeId, ticket: Ticket) -> Option<Outcome> {
        self.outcomes.get(&(id, ticket)).cloned()
    }

    /// Delivers one due message or view (false: none is due).
    pub fn deliver_one(&mut self) -> bool {
        let now = self.now;
        let due: Vec<(NodeId, NodeId)> = self
            .links
            .iter()
            .filter(|(_, q)| q.front().is_some_and(|(at, _)| *at <= now))
            .map(|(&k, _)| k)
            .collect();
        let views: Vec<NodeId> = self
            .views
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(&id, _)| id)
            .collect();
        if due.is_empty() && views.is_empty() {
            return false;
        }
        let pick = self.rng.random_range(0..due.len() + views.len());
        if let Some(&id) = pick.checked_sub(due.len()).and_then(|i| views.get(i)) {
            if let Some((_, view)) = self.views.remove(&id) {
                self.store_mut(id).view_installed(now, &view);
                self.drain(id);
            }
            return true;
        }
        let (from, to) = due[pick];
        let Some((_, data)) = self
            .links
            .get_mut(&(from, to))
            .and_then(VecDeque::pop_front)
        else {
            return false;
        };
        if let Err(e) = self.store_mut(to).message(now, from, &data, &check) {
            panic!("node {to} refused a message of node {from}: {e}");
        }
        let mut actions = Vec::new();
        while let Some(action) = self.store_mut(to).poll() {
            actions.push(action);
        }
        // Now and then the node crashes while it carries out what the
        // message caused (not where it reports an edit done: the history
        // is recorded from those): only what it persisted survives.
        let done = actions.iter().any(|a| matches!(a, Action::Done { .. }));
        if self.crashes && !done && !actions.is_empty() && self.rng.random_range(0..40) == 0 {
            let cut = self.rng.random_range(0..actions.len());
            actions.truncate(cut);
            self.carry_out(to, actions, false);
            self.crash(to);
        } else {
            self.carry_out(to, actions, true);
        }
        true
    }

    /// The time passes by `dt`; every node ticks.
    pub fn advance(&mut self, dt: Time) {
        self.now += dt;
        for id in self.up() {
            let now = self.now;
            self.store_mut(id).tick(now);
            self.drain(id);
        }
    }

    /// Delivers every message in flight (and those they cause).
    pub fn quiet(&mut self) {
        for _ in 0..MAX_QUIET_STEPS {
            if self.deliver_one() {
                continue;
            }
            let messages = self.links.values().filter_map(|q| q.front()).map(|m| m.0);
            let Some(next) = messages.chain(self.views.values().map(|v| v.0)).min() else {
                return;
            };
            self.advance(next.saturating_sub(self.now));
        }
        panic!("the network never went quiet");
    }

    /// Quiet, then past every edit's deadline, then quiet again.
    pub fn settle(&mut self) {
        self.quiet();
        self.advance(TIMEOUT);
        self.quiet();
    }

    /// Carries out node `id`'s actions. Outcomes are recorded first: the
    /// proposer applies its commit just before it reports it done.
    fn drain(&mut self, id: NodeId) {
        let mut actions = Vec::new();
        while let Some(action) = self.store_mut(id).poll() {
            actions.push(action);
        }
        self.carry_out(id, actions, true);
    }

    /// Carries out `actions` of node `id`, in order, then checks the node
    /// (unless it crashes before it is done).
    fn carry_out(&mut self, id: NodeId, mut actions: Vec<Action>, checked: bool) {
        actions.sort_by_key(|a| !matches!(a, Action::Done { .. }));
        // A store changes documents only with actions (a persist first).
        let acted = !actions.is_empty();
        for action in actions {
            match action {
                Action::Send { to, data } => self.send(id, to, data),
                Action::Persist(bytes) => self.nodes.get_mut(&id).expect("node").persisted = bytes,
                Action::Apply {
                    name,
                    version,
                    content,
                } => {
                    if version != SEED {
                        let made = self.history.content(&name, version);
                        assert!(
                            made.is_some(),
                            "node {id} applies {name} {version}, never committed"
                        );
                        assert_eq!(
                            made,
                            Some(&content),
                            "node {id}: {name} {version} with other content"
                        );
                    }
                    let node = self.nodes.get_mut(&id).expect("node");
                    node.files.insert(name, (version, content));
                }
                Action::Done { ticket, version } => self.done(id, ticket, version),
                Action::Refused { ticket, refusal } => {
                    assert!(
                        self.proposed.remove(&(id, ticket)).is_some(),
                        "refused unknown edit"
                    );
                    self.outcomes
                        .insert((id, ticket), Outcome::Refused(refusal));
                }
                Action::Conflict {
                    name,
                    mine,
                    theirs,
                    node,
                } => {
                    assert_eq!(self.version(id, &name), Some(mine), "conflict on {name}");
                    let related = self.history.descends(&name, mine, theirs)
                        || self.history.descends(&name, theirs, mine);
                    assert!(
                        !related || mine == theirs,
                        "node {id} reports {name} {mine} in conflict with {theirs} of node {node}"
                    );
                    let report = format!("{id} {name} {mine} {theirs} {node}");
                    assert!(
                        self.reported.insert(report),
                        "node {id} reports {name} twice"
                    );
                    *self.conflicts.entry(id).or_default() += 1;
                }
            }
        }
        if acted && checked {
            self.check(id);
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, data: Vec<u8>) {
        assert!(
            data.len() <= MAX_MESSAGE,
            "a message of {} bytes",
            data.len()
        );
        let same_side =
            self.nodes[&to].store.is_some() && self.nodes[&to].side == self.nodes[&from].side;
        if !same_side {
            return;
        }
        let delay = Time::from_millis(self.rng.random_range(0..300));
        let queue = self.links.entry((from, to)).or_default();
        let at = queue
            .back()
            .map_or(self.now + delay, |(last, _)| (*last).max(self.now + delay));
        queue.push_back((at, data));
    }

    fn done(&mut self, id: NodeId, ticket: Ticket, version: Version) {
        let p = self
            .proposed
            .remove(&(id, ticket))
            .unwrap_or_else(|| panic!("node {id}: done for unknown edit {ticket}"));
        // An edit done at once was committed here alone (forced).
        let alone = self.proposing == Some(id);
        let mut parents: Vec<Version> = p.base.into_iter().collect();
        if !alone {
            parents.extend(&p.conflicts);
        }
        self.history.commit(Commit {
            name: p.name,
            version,
            content: p.content,
            base: p.base,
            parents,
            needed: if alone { NodeSet::of([id]) } else { p.side },
            normal: !alone && p.conflicts.is_empty(),
        });
        self.outcomes.insert((id, ticket), Outcome::Done(version));
    }

    /// The invariants that hold after every step of node `id`: every version held was
    /// committed with that content (no two contents for one version), the
    /// files on disk are the documents, and a node only ever moves to a
    /// version that descends from the one it held.
    fn check(&mut self, id: NodeId) {
        {
            let docs = self.store(id).docs();
            let node = &self.nodes[&id];
            for d in &docs {
                let file = node.files.get(&d.name);
                assert!(
                    file.is_some_and(|f| f.0 == d.version && f.1 == d.content),
                    "node {id}'s file {}",
                    d.name
                );
                let was = node.seen.get(&d.name).copied();
                if was == Some(d.version) {
                    continue;
                }
                if d.version != SEED {
                    let made = self.history.content(&d.name, d.version);
                    assert_eq!(
                        made,
                        Some(&d.content),
                        "node {id} holds {} {}",
                        d.name,
                        d.version
                    );
                }
                if let Some(was) = was {
                    assert!(
                        self.history.descends(&d.name, d.version, was),
                        "node {id} moved {} from {was} to {}, not a descendant",
                        d.name,
                        d.version
                    );
                }
            }
            for name in node.seen.keys() {
                assert!(
                    docs.iter().any(|d| d.name == *name),
                    "node {id} lost {name}"
                );
            }
            let node = self.nodes.get_mut(&id).expect("node");
            node.seen = docs.into_iter().map(|d| (d.name, d.version)).collect();
        }
    }

    /// With every up node on one side and the network quiet: any two
    /// nodes hold the same version of a document, or unrelated ones that
    /// each shows as a conflict with the other's current version (catch-up
    /// is complete); and "never lost": every committed edit is held (or
    /// superseded by a descendant) by every node it needed that is up,
    /// unless that node shows such a conflict for the operator.
    pub fn check_settled(&self) {
        let up = self.up();
        let flags = |n: NodeId, name: &str, peer: NodeId| {
            self.store_conflicts(n, name)
                .contains(&(peer, self.version(peer, name).expect("held")))
        };
        for &a in &up {
            for &b in up.iter().filter(|&&b| b > a) {
                for name in self.store(a).docs().iter().map(|d| d.name.clone()) {
                    let (va, vb) = (self.version(a, &name), self.version(b, &name));
                    if va == vb {
                        continue;
                    }
                    let (Some(va), Some(vb)) = (va, vb) else {
                        panic!("{name}: node {a} holds {va:?}, node {b} {vb:?}");
                    };
                    let related = self.history.descends(&name, va, vb)
                        || self.history.descends(&name, vb, va);
                    assert!(
                        !related && flags(a, &name, b) && flags(b, &name, a),
                        "{name}: node {a} holds {va}, node {b} {vb}, not caught up \
                         (related: {related}; conflicts {:?} and {:?}; in doubt {:?} and {:?})",
                        self.store_conflicts(a, &name),
                        self.store_conflicts(b, &name),
                        self.store(a).in_doubt(&name),
                        self.store(b).in_doubt(&name),
                    );
                }
            }
        }
        for done in &self.history.dones {
            if done.needed.iter().any(|n| !up.contains(&n)) {
                continue;
            }
            for n in done.needed.iter() {
                let held = self.version(n, &done.name);
                let kept = held.is_some_and(|v| self.history.descends(&done.name, v, done.version));
                let flagged = up
                    .iter()
                    .any(|&peer| peer != n && flags(n, &done.name, peer));
                assert!(
                    kept || flagged,
                    "{} {} (needed {:?}) lost at node {n}, which holds {held:?}",
                    done.name,
                    done.version,
                    done.needed.iter().collect::<Vec<_>>()
                );
            }
        }
    }

    /// After the operator resolved every conflict: all nodes hold the same
    /// version of every document, with nothing in doubt.
    pub fn check_converged(&self) {
        let up = self.up();
        let first = self.store(up[0]).docs();
        for &id in &up {
            let docs = self.store(id).docs();
            assert_eq!(docs, first, "nodes {} and {id} differ", up[0]);
            for d in &docs {
                assert_eq!(
                    self.store(id).in_doubt(&d.name),
                    None,
                    "node {id} in doubt on {}",
                    d.name
                );
            }
        }
    }
}
