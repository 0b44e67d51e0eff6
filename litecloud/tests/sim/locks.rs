//! The lock service under simulation: lock clients request and release two
//! locks at random while faults rage, each running one service per lock it
//! was granted; nodes stop cleanly (services stopped, locks released, then
//! a leave) or restart their daemon while their services keep running; and
//! a fencer powers off nodes that their peers lost (confirming the fence to
//! every live node, as a fence device would). Checked after every step:
//! no two nodes run the service of the same lock, whether or not their
//! daemon is up, and no two running daemons believe they hold the same
//! lock (safety rule 1: never twice); a running daemon holds exactly the
//! locks whose services run on its node (the driver hears every grant and
//! loss, and a restarted daemon holds again what still runs). Once the
//! faults healed and every lost node was fenced: never lost (safety rule
//! 2): a lock that some running daemon wants is held by one of them.

use super::world::SimNode;
use litecloud::lock::LockId;

/// The locks the clients fight over.
pub const LOCKS: [LockId; 2] = [1, 2];

/// At most one holder per lock: among the services of every node whose OS
/// runs, and among the beliefs of every node whose daemon runs.
pub fn check(nodes: &[SimNode]) -> Option<String> {
    for lock in LOCKS {
        let runners: Vec<u8> = nodes
            .iter()
            .filter(|n| n.running.contains(&lock))
            .map(|n| n.id)
            .collect();
        if runners.len() > 1 {
            return Some(format!(
                "the service of lock {lock} runs on n{runners:?} at once"
            ));
        }
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

/// A node whose daemon runs holds exactly the locks whose services run.
pub fn runs_what_it_holds(n: &SimNode) -> Option<String> {
    let table = n.locks.as_ref()?;
    let held: Vec<LockId> = LOCKS.into_iter().filter(|&l| table.holds(l)).collect();
    let running: Vec<LockId> = n.running.iter().copied().collect();
    (held != running).then(|| {
        format!(
            "n{} holds locks {held:?} but runs the services of {running:?}",
            n.id
        )
    })
}

/// Never lost, checked once everything settled: every node's daemon runs
/// (and is not stalled or stopping), or its OS is off and every running
/// daemon was told so by the fencer; and with three or more nodes, a
/// majority runs. Then a
/// lock some daemon asked for and did not give back is held by a running
/// daemon. `Ok(false)`: not settled, nothing checked; `Err`: a violation.
pub fn never_lost(nodes: &[SimNode]) -> Result<bool, String> {
    let running = |n: &&SimNode| n.live() && n.engine.is_some() && !n.stopping;
    let settled = nodes.iter().all(|n| {
        running(&n) || (!n.os_up && nodes.iter().filter(running).all(|r| r.told_fenced(n.id)))
    });
    // Three or more nodes need a majority running (two: the survivor of a
    // fenced peer may go on alone).
    let quorate = nodes.len() == 2 || nodes.iter().filter(running).count() * 2 > nodes.len();
    if !settled || !quorate {
        return Ok(false);
    }
    for lock in LOCKS {
        let wanters: Vec<u8> = nodes
            .iter()
            .filter(|n| {
                n.locks
                    .as_ref()
                    .is_some_and(|l| l.wants(lock) || l.holds(lock))
            })
            .map(|n| n.id)
            .collect();
        let held = nodes
            .iter()
            .any(|n| n.locks.as_ref().is_some_and(|l| l.holds(lock)));
        if !wanters.is_empty() && !held {
            return Err(format!(
                "lock {lock} is wanted by n{wanters:?} and held by none after everything settled"
            ));
        }
    }
    Ok(true)
}
