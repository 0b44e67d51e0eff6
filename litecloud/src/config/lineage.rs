//! Where a document's version sits in its history, so that a node can
//! tell whether a peer's version descends from its own.
//!
//! A lineage maps each epoch a version went through to the last counter it
//! reached there. An epoch is named by its number and its origin: the node
//! that opened it (a forced commit or an operator's resolution), or, for
//! epoch 0, a hash of the seeded content (documents found on disk at a
//! first start) or 0 (created by a commit). Within one epoch history is
//! linear, because a normal commit needs the agreement of every needed node
//! (and of a quorum), so a position (epoch, origin, counter) names one
//! version. A version descends from another when its lineage passed through
//! the other's position. An epoch is always opened above every epoch its
//! opener has seen, so a lineage's current epoch is its highest one.

use super::Version;
use crate::wire::NodeId;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// An epoch: (number, origin).
pub(super) type EpochId = (u64, u64);

/// At most this many epochs are kept in a lineage: the oldest go first.
/// Forgetting an epoch only makes a version look unrelated (a conflict for
/// the operator), never related when it is not.
pub(super) const MAX_EPOCHS: usize = 16;

/// SHA-256 of a document's content (or of its absence, for a tombstone).
pub(super) type Hash = [u8; 32];

pub(super) fn hash(content: Option<&[u8]>) -> Hash {
    let mut h = Sha256::new();
    match content {
        None => h.update([0u8]),
        Some(c) => {
            h.update([1u8]);
            h.update(c);
        }
    }
    h.finalize().into()
}

/// The epochs a version went through, with the last counter in each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Lineage(pub(super) BTreeMap<EpochId, u64>);

impl Lineage {
    /// A document found on disk at a first start: equal content gives an
    /// equal position on every node, different content unrelated ones.
    pub(super) fn seed(hash: &Hash) -> Lineage {
        let mut origin = [0u8; 8];
        origin.copy_from_slice(&hash[..8]);
        Lineage(BTreeMap::from([(
            (0, u64::from_be_bytes(origin) | 1 << 63),
            0,
        )]))
    }

    /// The current epoch and counter (None: an empty lineage, no version).
    pub(super) fn current(&self) -> Option<(EpochId, u64)> {
        self.0.last_key_value().map(|(&e, &c)| (e, c))
    }

    /// The highest epoch number named.
    pub(super) fn max_epoch(&self) -> u64 {
        self.current().map_or(0, |((e, _), _)| e)
    }

    /// The next version in the same epoch (a new document starts in epoch
    /// 0 at counter 1).
    pub(super) fn next(&self) -> Lineage {
        let mut next = self.clone();
        let (epoch, counter) = self.current().unwrap_or(((0, 0), 0));
        next.0.insert(epoch, counter + 1);
        next
    }

    /// A new epoch `(epoch, origin)` opened from this lineage and the
    /// `others` it must descend from too (an operator's resolution).
    pub(super) fn fork<'a>(
        &self,
        epoch: u64,
        origin: NodeId,
        others: impl IntoIterator<Item = &'a Lineage>,
    ) -> Lineage {
        let mut map = self.0.clone();
        for other in others {
            for (&e, &c) in &other.0 {
                let slot = map.entry(e).or_insert(c);
                *slot = (*slot).max(c);
            }
        }
        let counter = map.values().max().copied().unwrap_or(0) + 1;
        while map.len() >= MAX_EPOCHS {
            map.pop_first();
        }
        map.insert((epoch, u64::from(origin)), counter);
        Lineage(map)
    }

    /// Whether this lineage passed through `other`'s position (an empty
    /// `other`, no version, is an ancestor of everything).
    pub(super) fn descends(&self, other: &Lineage) -> bool {
        other
            .current()
            .is_none_or(|(e, c)| self.0.get(&e).is_some_and(|&mine| mine >= c))
    }

    /// The version this lineage ends at, made by `node`.
    pub(super) fn version(&self, node: NodeId) -> Option<Version> {
        self.current().map(|((epoch, _), counter)| Version {
            epoch,
            counter,
            node,
        })
    }
}

/// Identifies one version: what summaries carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Head {
    pub(super) version: Version,
    pub(super) lineage: Lineage,
    pub(super) hash: Hash,
}

/// A version with its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Held {
    pub(super) head: Head,
    pub(super) content: Option<Vec<u8>>,
}

/// How a peer's version relates to this node's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Order {
    Same,
    /// The peer's version descends from ours: we take it.
    Behind,
    /// Ours descends from the peer's: it takes ours.
    Ahead,
    /// Neither, or one position with two contents: for the operator.
    Conflict,
}

/// How `theirs` relates to `mine` (None: the document is absent there).
pub(super) fn order(mine: Option<&Head>, theirs: Option<&Head>) -> Order {
    let (m, t) = match (mine, theirs) {
        (None, None) => return Order::Same,
        (None, Some(_)) => return Order::Behind,
        (Some(_), None) => return Order::Ahead,
        (Some(m), Some(t)) => (m, t),
    };
    if m.lineage.current() == t.lineage.current() {
        if m.version == t.version && m.hash == t.hash {
            Order::Same
        } else {
            Order::Conflict
        }
    } else if t.lineage.descends(&m.lineage) {
        Order::Behind
    } else if m.lineage.descends(&t.lineage) {
        Order::Ahead
    } else {
        Order::Conflict
    }
}
