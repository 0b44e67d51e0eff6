//! Replicated configuration documents (safety rule 9, invariant 5): a pure
//! state machine over the agreed view ([`crate::view`]) and the reliable
//! per-peer channel ([`crate::channel`]), driven like [`crate::lock`].
//!
//! - Versions are logical ([`Version`]: admin epoch, counter, node), never
//!   timestamps. Each version carries its lineage (the epochs it went
//!   through, see `lineage`), so a node can tell whether a peer's version
//!   descends from its own.
//! - A normal commit needs every needed node: with two configured nodes
//!   both; with three or more, every member of the installed view, and the
//!   view must have quorum. The proposer sends a prepare (the next counter
//!   in the current epoch, with the content); each receiver acknowledges
//!   only if it holds the proposer's base version, has no other edit of the
//!   document pending, and its check passes (`commit`). All acks: commit
//!   everywhere. Any refusal, a view change or a timeout ([`TIMEOUT`]):
//!   abort everywhere. Within one epoch history is therefore linear.
//! - A receiver that acknowledged a prepare persisted it first and stays
//!   *in doubt* about that document (it refuses other edits of it) until it
//!   learns the outcome: the commit or abort, or a summary from any node
//!   holding that version or a descendant (committed), or from the proposer
//!   without it (a proposer aborts its open edits whenever a view is
//!   installed, before it sends its summary, and the channel is ordered, so
//!   that summary tells the outcome). Dropping an acknowledged prepare on a
//!   timeout instead could let a second edit commit on the same base.
//! - `force_local` (the operator's `--force-local`) commits on this node
//!   alone, in a new admin epoch above every epoch it has seen (and one
//!   that only this node opens), when nodes whose agreement is needed are
//!   missing from the view (or the document waits on an outcome from a
//!   node outside the view). With every needed node present it is a normal
//!   commit.
//! - Catch-up (`catchup`): when a view is installed, members exchange
//!   summaries (name, version, lineage, content hash) and each fetches the
//!   versions that descend from its own; a node that takes one tells the
//!   other members. A node adopts a version only if it descends from its
//!   own. If neither descends from the other, or one position holds two
//!   contents, nothing is applied: both sides report [`Action::Conflict`] and
//!   [`Doc::conflict`] shows it until the operator commits a normal edit on
//!   one node with the other in the view: its version opens a new epoch
//!   that descends from both, and the other side accepts it.
//! - A removal is a version without content (a tombstone): it replicates
//!   and catches up like content, so a node that was away never brings the
//!   document back.
//! - Every change is persisted ([`Action::Persist`]) before whatever
//!   depends on it goes out. Messages are chunked within
//!   [`crate::channel::MAX_MESSAGE`]; every size is bounded ([`MAX_DOC`],
//!   [`MAX_DOCS`], a few open edits, one partial message per peer) and
//!   malformed bytes give errors, never panics.

mod catchup;
mod codec;
mod commit;
mod lineage;
#[cfg(test)]
mod tests;

use crate::Time;
use crate::view::{NodeSet, View};
use crate::wire::NodeId;
use codec::{Msg, Saved};
use lineage::{Head, Held, Lineage, Order, order};
use std::collections::{BTreeMap, VecDeque};

/// First byte of every message of this protocol on the channel.
pub const PROTOCOL: u8 = 5;

/// The largest document, in bytes.
pub const MAX_DOC: usize = 256 * 1024;

/// The most documents (tombstones included) one store holds.
pub const MAX_DOCS: usize = 512;

/// How long an edit waits for every answer.
pub const TIMEOUT: Time = Time::from_secs(10);

/// The most edits one node has open at once.
const MAX_PROPOSALS: usize = 16;

/// The version of seeded documents.
const SEED: Version = Version {
    epoch: 0,
    counter: 0,
    node: 0,
};

/// A document's logical version (never a timestamp). `epoch` is the admin
/// epoch: 0 until an operator forces a local commit; `counter` grows by one
/// per committed change; `node` made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Version {
    pub epoch: u64,
    pub counter: u64,
    pub node: NodeId,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.epoch, self.counter, self.node)
    }
}

impl std::str::FromStr for Version {
    type Err = String;

    fn from_str(s: &str) -> Result<Version, String> {
        let bad = || format!("{s:?} is not a config version (epoch.counter.node, e.g. 0.7.2)");
        let mut parts = s.split('.');
        let (Some(e), Some(c), Some(n), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        Ok(Version {
            epoch: e.parse().map_err(|_| bad())?,
            counter: c.parse().map_err(|_| bad())?,
            node: n.parse().map_err(|_| bad())?,
        })
    }
}

/// One document as this node holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Doc {
    pub name: String,
    pub version: Version,
    /// None: removed (a tombstone, replicated like content).
    pub content: Option<Vec<u8>>,
    /// A peer holds a version that neither descends from nor precedes this
    /// one: the operator must resolve.
    pub conflict: Option<(NodeId, Version)>,
}

/// An operator's change. `base`: the version the operator saw (None: the
/// document must not exist yet, or be a tombstone). `content` None removes
/// the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub name: String,
    pub base: Option<Version>,
    pub content: Option<Vec<u8>>,
    pub force_local: bool,
}

/// Names one proposed edit until its [`Action::Done`] or [`Action::Refused`].
pub type Ticket = u64;

/// Why an edit was not committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The document is no longer at `base`: shows the current version.
    Stale {
        current: Option<Version>,
    },
    /// Another edit of this document is in progress.
    Busy {
        by: NodeId,
    },
    /// Nodes whose agreement is needed are not in the view.
    Missing {
        nodes: Vec<NodeId>,
    },
    /// A node's check refused the content.
    Rejected {
        node: NodeId,
        reason: String,
    },
    /// Resolve the conflict first.
    Conflict {
        theirs: (NodeId, Version),
    },
    /// Not every answer came in time: nothing was committed.
    Timeout,
    TooLarge {
        len: usize,
    },
    BadName {
        name: String,
    },
    /// This node holds [`MAX_DOCS`] documents (tombstones count): no new one.
    Full {
        max: usize,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Stale { current: Some(v) } => write!(
                f,
                "the document changed since you read it: it is now at version {v}; \
                 read it again and redo the change"
            ),
            Refusal::Stale { current: None } => write!(
                f,
                "the document does not exist (any more); read it again and redo the change"
            ),
            Refusal::Busy { by } => write!(
                f,
                "another change of this document (from node {by}) is in progress; \
                 try again when it is done (if node {by} is down for good, \
                 --force-local commits here alone)"
            ),
            Refusal::Missing { nodes } => {
                let nodes: Vec<String> = nodes.iter().map(u8::to_string).collect();
                write!(
                    f,
                    "node(s) {} must agree but are not in the cluster view; bring them \
                     back, or use --force-local to commit here alone (they take the \
                     change when they rejoin)",
                    nodes.join(", ")
                )
            }
            Refusal::Rejected { node, reason } => {
                write!(
                    f,
                    "node {node} refused the content: {reason}; fix it and try again"
                )
            }
            Refusal::Conflict { theirs: (node, v) } => write!(
                f,
                "node {node} holds version {v}, which conflicts with this node's; \
                 resolve it first: commit the content to keep while node {node} is in \
                 the cluster view"
            ),
            Refusal::Timeout => write!(
                f,
                "not every node answered in time (or the cluster view changed): \
                 nothing was committed; try again"
            ),
            Refusal::TooLarge { len } => write!(
                f,
                "the document is {len} bytes; at most {MAX_DOC} are allowed"
            ),
            Refusal::BadName { name } => write!(
                f,
                "{name:?} is not a valid document name: 1 to 128 characters of \
                 A-Z a-z 0-9 . _ / -, no \"..\", no leading or doubled \"/\""
            ),
            Refusal::Full { max } => write!(
                f,
                "this node holds {max} documents already (removed ones count): \
                 no new document can be created"
            ),
        }
    }
}

/// What the driver must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send on the reliable channel to `to`.
    Send {
        to: NodeId,
        data: Vec<u8>,
    },
    /// Write this node's whole store durably before anything that follows.
    Persist(Vec<u8>),
    /// Write the file atomically (None: delete it).
    Apply {
        name: String,
        version: Version,
        content: Option<Vec<u8>>,
    },
    /// The edit `ticket` committed everywhere needed.
    Done {
        ticket: Ticket,
        version: Version,
    },
    Refused {
        ticket: Ticket,
        refusal: Refusal,
    },
    /// For the operator (an emergency log).
    Conflict {
        name: String,
        mine: Version,
        theirs: Version,
        node: NodeId,
    },
}

/// The local check of a proposed document.
pub type Check<'a> = &'a dyn Fn(&str, Option<&[u8]>) -> Result<(), String>;

/// One node's replicated configuration store.
pub struct Store {
    me: NodeId,
    nodes: NodeSet,
    view: Option<View>,
    /// The highest admin epoch seen (persisted): a new one goes above it.
    max_epoch: u64,
    docs: BTreeMap<String, Held>,
    /// Prepares this node acknowledged whose outcome it does not know yet:
    /// document -> (proposer, ticket, proposed version).
    doubts: BTreeMap<String, (NodeId, Ticket, Held)>,
    /// Per document, the peers holding an unrelated version.
    conflicts: BTreeMap<String, BTreeMap<NodeId, Head>>,
    /// This node's edits waiting for acks.
    proposals: BTreeMap<Ticket, Proposal>,
    next_ticket: Ticket,
    /// Per peer, the message being reassembled.
    partial: BTreeMap<NodeId, Option<Vec<u8>>>,
    out: VecDeque<Action>,
}

/// An edit this node proposed.
struct Proposal {
    name: String,
    new: Held,
    participants: NodeSet,
    waiting: NodeSet,
    deadline: Time,
}

impl Store {
    fn empty(me: NodeId, nodes: NodeSet) -> Store {
        Store {
            me,
            nodes,
            view: None,
            max_epoch: 0,
            docs: BTreeMap::new(),
            doubts: BTreeMap::new(),
            conflicts: BTreeMap::new(),
            proposals: BTreeMap::new(),
            next_ticket: 1,
            partial: BTreeMap::new(),
            out: VecDeque::new(),
        }
    }

    /// A first start: `files` are the documents found on disk (name,
    /// content), all at the initial version (epoch 0, counter 0, node 0).
    /// Two nodes seeded with equal content agree; with different content
    /// they are in conflict until the operator resolves it. Files with an
    /// invalid name or larger than [`MAX_DOC`] are left out (the driver
    /// validates them first), as are those beyond [`MAX_DOCS`]. The store
    /// is persisted at once.
    pub fn seed(me: NodeId, nodes: NodeSet, files: Vec<(String, Vec<u8>)>) -> Store {
        let mut store = Store::empty(me, nodes);
        let usable = files
            .into_iter()
            .filter(|(name, content)| valid_name(name) && content.len() <= MAX_DOC)
            .take(MAX_DOCS);
        for (name, content) in usable {
            let hash = lineage::hash(Some(&content));
            let lineage = Lineage::seed(&hash);
            let head = Head {
                version: lineage.version(0).unwrap_or(SEED),
                lineage,
                hash,
            };
            let content = Some(content);
            store.docs.insert(name, Held { head, content });
        }
        store.persist();
        store
    }

    /// A restart: the bytes of the last [`Action::Persist`]. Anything else
    /// is refused with a clear error.
    pub fn restore(me: NodeId, nodes: NodeSet, persisted: &[u8]) -> Result<Store, String> {
        let saved = Saved::decode(persisted)
            .map_err(|e| format!("the saved config store is corrupt: {e}"))?;
        let mut store = Store::empty(me, nodes);
        store.max_epoch = saved.max_epoch;
        store.docs = saved.docs;
        store.doubts = saved.doubts;
        Ok(store)
    }

    /// A view was installed: open edits are aborted (a needed node may have
    /// left, and the summary that follows must tell their outcome), and
    /// every other member gets this node's summary.
    pub fn view_installed(&mut self, _now: Time, view: &View) {
        self.view = Some(*view);
        let tickets: Vec<Ticket> = self.proposals.keys().copied().collect();
        for ticket in tickets {
            let left: Vec<NodeId> = self.proposals[&ticket]
                .participants
                .iter()
                .filter(|&n| !view.members.contains(n))
                .collect();
            let refusal = if left.is_empty() {
                Refusal::Timeout
            } else {
                Refusal::Missing { nodes: left }
            };
            self.abort(ticket, refusal);
        }
        self.partial.retain(|&peer, _| view.members.contains(peer));
        let summary = Msg::Summary {
            full: true,
            entries: self
                .docs
                .iter()
                .map(|(name, held)| (name.clone(), held.head.clone()))
                .collect(),
        };
        let others = self.others(view.members);
        self.send(others, &summary);
    }

    /// A message from `from` on the channel. Malformed bytes give an
    /// error (and change nothing).
    pub fn message(
        &mut self,
        _now: Time,
        from: NodeId,
        data: &[u8],
        check: Check,
    ) -> Result<(), String> {
        if from == self.me || !self.nodes.contains(from) {
            return Err(format!("config message from node {from}, not a peer"));
        }
        let partial = self.partial.entry(from).or_default();
        let whole = codec::reassemble(partial, data).map_err(|e| format!("config: {e}"))?;
        let Some(whole) = whole else {
            return Ok(());
        };
        let msg = Msg::decode(&whole).map_err(|e| format!("config from node {from}: {e}"))?;
        match msg {
            Msg::Summary { full, entries } => self.summary(from, full, entries),
            Msg::Fetch(name) => {
                if let Some(held) = self.docs.get(&name).cloned() {
                    self.send(NodeSet::of([from]), &Msg::Transfer(name, held));
                }
            }
            Msg::Transfer(name, held) => self.transfer(from, name, held),
            Msg::Prepare {
                ticket,
                name,
                base,
                new,
            } => {
                if new.head.version.node != from {
                    return Err(format!(
                        "config from node {from}: a version of another node"
                    ));
                }
                self.prepare(from, ticket, name, base, new, check);
            }
            Msg::Ack(ticket) => self.ack(from, ticket),
            Msg::Nack(ticket, refusal) => {
                if self
                    .proposals
                    .get(&ticket)
                    .is_some_and(|p| p.participants.contains(from))
                {
                    self.abort(ticket, refusal);
                }
            }
            Msg::Commit {
                ticket,
                name,
                version,
                told,
            } => {
                let ours = self.doubts.get(&name).is_some_and(|(by, t, held)| {
                    (*by, *t, held.head.version) == (from, ticket, version)
                });
                if let Some((_, _, held)) = ours.then(|| self.doubts.remove(&name)).flatten() {
                    self.install(name.clone(), held);
                    let members = self.others(self.members());
                    let untold = NodeSet::of(members.iter().filter(|&n| !told.contains(n)));
                    self.tell(untold, &name);
                }
            }
            Msg::Abort { ticket, name } => {
                if self
                    .doubts
                    .get(&name)
                    .is_some_and(|(by, t, _)| (*by, *t) == (from, ticket))
                {
                    self.doubts.remove(&name);
                }
            }
        }
        Ok(())
    }

    /// An operator's edit. Immediate refusals come back here; later ones,
    /// and the outcome, as [`Action::Refused`] or [`Action::Done`].
    pub fn propose(&mut self, now: Time, edit: Edit, check: Check) -> Result<Ticket, Refusal> {
        let Edit {
            name,
            base,
            content,
            force_local,
        } = edit;
        if !valid_name(&name) {
            return Err(Refusal::BadName { name });
        }
        if let Some(len) = content.as_ref().map(Vec::len).filter(|&l| l > MAX_DOC) {
            return Err(Refusal::TooLarge { len });
        }
        let current = self.docs.get(&name).map(|h| h.head.clone());
        let at = current.as_ref().map(|h| h.version);
        let tombstone = self.docs.get(&name).is_some_and(|h| h.content.is_none());
        if base != at && !(base.is_none() && tombstone) {
            return Err(Refusal::Stale { current: at });
        }
        if current.is_none() && self.docs.len() >= MAX_DOCS {
            return Err(Refusal::Full { max: MAX_DOCS });
        }
        if self.proposals.values().any(|p| p.name == name) || self.proposals.len() >= MAX_PROPOSALS
        {
            return Err(Refusal::Busy { by: self.me });
        }
        let members = self.members();
        let doubt = self.doubts.get(&name).map(|d| d.0);
        let unblock = force_local && doubt.is_some_and(|by| !members.contains(by));
        if let Some(by) = doubt.filter(|_| !unblock) {
            return Err(Refusal::Busy { by });
        }
        check(&name, content.as_deref()).map_err(|reason| Refusal::Rejected {
            node: self.me,
            reason,
        })?;
        let needed = match self.needed() {
            Ok(_) if unblock => None,
            Ok(needed) => Some(needed),
            Err(_) if force_local => None,
            Err(nodes) => return Err(Refusal::Missing { nodes }),
        };
        let base_lineage = current
            .as_ref()
            .map(|h| h.lineage.clone())
            .unwrap_or_default();
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let Some(needed) = needed else {
            self.max_epoch = self.new_epoch();
            let lineage = base_lineage.fork(self.max_epoch, self.me, []);
            let new = self.held(lineage, content);
            let version = new.head.version;
            // The members present (too few to commit) take it now.
            self.adopt(name, new);
            self.out.push_back(Action::Done { ticket, version });
            return Ok(ticket);
        };
        let conflicts = self.conflicts.get(&name).cloned().unwrap_or_default();
        if let Some((&node, head)) = conflicts.iter().find(|(n, _)| !needed.contains(**n)) {
            return Err(Refusal::Conflict {
                theirs: (node, head.version),
            });
        }
        let lineage = if conflicts.is_empty() {
            base_lineage.next()
        } else {
            // The operator's resolution: a new epoch descending from both.
            self.max_epoch = self.new_epoch();
            self.persist();
            base_lineage.fork(
                self.max_epoch,
                self.me,
                conflicts.values().map(|h| &h.lineage),
            )
        };
        let new = self.held(lineage, content);
        let participants = self.others(needed);
        if participants.is_empty() {
            let version = new.head.version;
            self.install(name, new);
            self.out.push_back(Action::Done { ticket, version });
            return Ok(ticket);
        }
        let prepare = Msg::Prepare {
            ticket,
            name: name.clone(),
            base: current.map(|h| (h.version, h.hash)),
            new: new.clone(),
        };
        self.send(participants, &prepare);
        self.proposals.insert(
            ticket,
            Proposal {
                name,
                new,
                participants,
                waiting: participants,
                deadline: now + TIMEOUT,
            },
        );
        Ok(ticket)
    }

    /// The time passed: edits not answered within [`TIMEOUT`] are aborted.
    pub fn tick(&mut self, now: Time) {
        let late: Vec<Ticket> = self
            .proposals
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(&t, _)| t)
            .collect();
        for ticket in late {
            self.abort(ticket, Refusal::Timeout);
        }
    }

    /// When [`Store::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<Time> {
        self.proposals.values().map(|p| p.deadline).min()
    }

    /// Next action for the driver.
    pub fn poll(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    /// Every document this node holds (tombstones included).
    pub fn docs(&self) -> Vec<Doc> {
        self.docs.keys().filter_map(|name| self.get(name)).collect()
    }

    /// One document as this node holds it.
    pub fn get(&self, name: &str) -> Option<Doc> {
        let held = self.docs.get(name)?;
        let conflict = self
            .conflicts
            .get(name)
            .and_then(|c| c.iter().next())
            .map(|(&node, head)| (node, head.version));
        Some(Doc {
            name: name.to_string(),
            version: held.head.version,
            content: held.content.clone(),
            conflict,
        })
    }

    /// Every peer holding a version of `name` unrelated to this node's (the
    /// first is [`Doc::conflict`]), with that version.
    pub fn conflicts(&self, name: &str) -> Vec<(NodeId, Version)> {
        self.conflicts
            .get(name)
            .map(|c| c.iter().map(|(&node, head)| (node, head.version)).collect())
            .unwrap_or_default()
    }

    /// The next admin epoch: above every epoch seen, and one only this node
    /// opens (congruent to its id modulo 64), so that two sides forcing
    /// during a partition never make one version twice.
    fn new_epoch(&self) -> u64 {
        let next = self.max_epoch + 1;
        next + (u64::from(self.me) + 64 - next % 64) % 64
    }

    /// Whether this node acknowledged an edit of `name` whose outcome it
    /// does not know yet, and from which node (the document is blocked).
    pub fn in_doubt(&self, name: &str) -> Option<NodeId> {
        self.doubts.get(name).map(|d| d.0)
    }

    /// The installed view's members (only this node before any view).
    fn members(&self) -> NodeSet {
        self.view
            .map(|v| v.members)
            .filter(|m| m.contains(self.me))
            .unwrap_or_else(|| NodeSet::of([self.me]))
    }

    /// The nodes whose agreement a normal commit needs now (this node
    /// included), or the configured nodes missing for one.
    fn needed(&self) -> Result<NodeSet, Vec<NodeId>> {
        let members = self.members();
        let quorum = self.nodes.len() <= 2 || 2 * members.len() > self.nodes.len();
        let missing: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|&n| !members.contains(n))
            .collect();
        if self.nodes.len() <= 2 && !missing.is_empty() || !quorum {
            Err(missing)
        } else {
            Ok(members)
        }
    }

    fn others(&self, set: NodeSet) -> NodeSet {
        NodeSet::of(set.iter().filter(|&n| n != self.me))
    }

    /// A version made here with `lineage`.
    fn held(&self, lineage: Lineage, content: Option<Vec<u8>>) -> Held {
        let head = Head {
            version: lineage.version(self.me).unwrap_or(SEED),
            lineage,
            hash: lineage::hash(content.as_deref()),
        };
        Held { head, content }
    }

    fn persist(&mut self) {
        let bytes = Saved::encode(self.max_epoch, &self.docs, &self.doubts);
        self.out.push_back(Action::Persist(bytes));
    }

    fn send(&mut self, to: NodeSet, msg: &Msg) {
        let chunks = codec::chunks(&msg.encode());
        for peer in to.iter() {
            for data in &chunks {
                self.out.push_back(Action::Send {
                    to: peer,
                    data: data.clone(),
                });
            }
        }
    }

    /// Takes `held` as this node's version of `name`: persisted, then
    /// applied. A doubt about the document is over (unless the edit in
    /// doubt descends from `held`), and conflicts with versions it descends
    /// from are resolved.
    fn install(&mut self, name: String, held: Held) {
        self.max_epoch = self.max_epoch.max(held.head.lineage.max_epoch());
        // A pending edit that still descends from the new version may yet
        // commit: its outcome is still awaited.
        let pending = self.doubts.get(&name).map(|d| &d.2.head);
        if pending.is_none_or(|p| order(Some(&held.head), Some(p)) != Order::Behind) {
            self.doubts.remove(&name);
        }
        if let Some(conflicts) = self.conflicts.get_mut(&name) {
            conflicts.retain(|_, theirs| order(Some(&held.head), Some(theirs)) == Order::Conflict);
            if conflicts.is_empty() {
                self.conflicts.remove(&name);
            }
        }
        let apply = Action::Apply {
            name: name.clone(),
            version: held.head.version,
            content: held.content.clone(),
        };
        self.docs.insert(name, held);
        self.persist();
        self.out.push_back(apply);
    }
}

/// 1..=128 bytes of `[A-Za-z0-9._/-]`, no "..", no leading "/", no empty segment.
pub fn valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(&b))
        && !name.contains("..")
        && name.split('/').all(|s| !s.is_empty())
}
