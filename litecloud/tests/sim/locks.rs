//! The lock service under simulation: nodes request and release two locks
//! at random while faults rage, and a fencer powers off nodes that their
//! peers lost (confirming the fence to every live node, as a fence device
//! would). Checked after every step: no two powered-on nodes hold the same
//! lock (safety rule 1: never twice).

use super::world::SimNode;
use litecloud::lock::LockId;

/// The locks the clients fight over.
pub const LOCKS: [LockId; 2] = [1, 2];

/// Every powered-on node's own belief: at most one holder per lock.
pub fn check(nodes: &[SimNode]) -> Option<String> {
    for lock in LOCKS {
        let holders: Vec<u8> = nodes
            .iter()
            .filter(|n| n.engine.is_some())
            .filter(|n| n.locks.as_ref().is_some_and(|l| l.holds(lock)))
            .map(|n| n.id)
            .collect();
        if holders.len() > 1 {
            return Some(format!("lock {lock} held by n{holders:?} at once"));
        }
    }
    None
}
