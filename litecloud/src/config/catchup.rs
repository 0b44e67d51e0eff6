//! Catch-up between the members of a view: summaries, fetches and
//! transfers, so that every node takes the versions that descend from its
//! own, and conflicts (versions that do not) are noted and reported.

use super::codec::Msg;
use super::lineage::{Head, Held, Order, order};
use super::{Action, MAX_DOCS, Store};
use crate::view::NodeSet;
use crate::wire::NodeId;

impl Store {
    /// A peer's summary: learn outcomes, fetch what descends from ours,
    /// note conflicts. Every node pulls what it lacks: after a full
    /// exchange both sides know; a partial summary (news) is answered with
    /// this node's version when it is ahead, so the peer fetches it.
    pub(super) fn summary(&mut self, from: NodeId, full: bool, entries: Vec<(String, Head)>) {
        for (name, head) in &entries {
            self.max_epoch = self.max_epoch.max(head.lineage.max_epoch());
            if let Some((by, ticket, doubt)) = self.doubts.remove(name) {
                if doubt.head == *head {
                    self.adopt(name.clone(), doubt);
                } else if !full || by != from || head.lineage.descends(&doubt.head.lineage) {
                    // Only the proposer's full summary tells that it aborted:
                    // it is sent after every edit open then was ended.
                    self.doubts.insert(name.clone(), (by, ticket, doubt));
                }
            }
            self.compare(from, name, head, !full);
        }
        if full {
            // The proposer holds no version at all: it committed nothing.
            self.doubts.retain(|name, (by, _, _)| {
                *by != from || entries.binary_search_by(|(n, _)| n.cmp(name)).is_ok()
            });
        }
    }

    /// What `peer` holding `theirs` of `name` means here; `answer`: tell
    /// the peer this node's version if it is ahead.
    fn compare(&mut self, peer: NodeId, name: &str, theirs: &Head, answer: bool) {
        let mine = self.docs.get(name).map(|h| h.head.clone());
        match order(mine.as_ref(), Some(theirs)) {
            Order::Same => self.forget_conflict(name, peer),
            Order::Behind => {
                self.forget_conflict(name, peer);
                self.send(NodeSet::of([peer]), &Msg::Fetch(name.to_string()));
            }
            Order::Ahead => {
                self.forget_conflict(name, peer);
                if answer {
                    self.tell(NodeSet::of([peer]), name);
                }
            }
            Order::Conflict => {
                if self.conflict(name, peer, theirs) {
                    self.tell(NodeSet::of([peer]), name);
                }
            }
        }
    }

    /// Sends this node's version of `name` (a partial summary) to `to`.
    pub(super) fn tell(&mut self, to: NodeSet, name: &str) {
        if let Some(head) = self.docs.get(name).map(|h| h.head.clone()) {
            let entries = vec![(name.to_string(), head)];
            self.send(
                to,
                &Msg::Summary {
                    full: false,
                    entries,
                },
            );
        }
    }

    /// Takes a version (learnt from a peer, or forced here), and tells the
    /// other members of the view.
    pub(super) fn adopt(&mut self, name: String, held: Held) {
        self.install(name.clone(), held);
        let others = self.others(self.members());
        self.tell(others, &name);
    }

    fn forget_conflict(&mut self, name: &str, peer: NodeId) {
        if let Some(c) = self.conflicts.get_mut(name) {
            c.remove(&peer);
            if c.is_empty() {
                self.conflicts.remove(name);
            }
        }
    }

    /// `peer` holds `theirs`, unrelated to this node's version of `name`:
    /// reported once (again only if either side's version changes).
    /// Whether it is news.
    fn conflict(&mut self, name: &str, peer: NodeId, theirs: &Head) -> bool {
        let Some(mine) = self.docs.get(name).map(|h| h.head.version) else {
            return false;
        };
        let known = self.conflicts.entry(name.to_string()).or_default();
        if known.get(&peer) == Some(theirs) {
            return false;
        }
        known.insert(peer, theirs.clone());
        self.out.push_back(Action::Conflict {
            name: name.to_string(),
            mine,
            theirs: theirs.version,
            node: peer,
        });
        true
    }

    /// A version this node fetched: taken only if it still descends from
    /// this node's (it may have moved on meanwhile).
    pub(super) fn transfer(&mut self, from: NodeId, name: String, held: Held) {
        self.max_epoch = self.max_epoch.max(held.head.lineage.max_epoch());
        let mine = self.docs.get(&name);
        let room = mine.is_some() || self.docs.len() < MAX_DOCS;
        match order(mine.map(|h| &h.head), Some(&held.head)) {
            Order::Behind if room => self.adopt(name, held),
            Order::Ahead | Order::Conflict => self.compare(from, &name, &held.head, true),
            Order::Behind | Order::Same => {}
        }
    }
}
