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
//!
//! An operator's false fence confirmation (a node sworn off while it runs)
//! can make two holders: that is the operator's doing. The check excuses
//! exactly the pairs it made possible, until the heal settled them (see
//! [`excused`]); every other pair is checked strictly, and after that
//! deadline these pairs too.

use super::world::SimNode;
use litecloud::Time;
use litecloud::lock::LockId;
use litecloud::wire::NodeId;

/// The locks the clients fight over.
pub const LOCKS: [LockId; 2] = [1, 2];

/// A false fence confirmation: `of` was sworn off at `at` while its OS
/// ran; what it made possible is excused until `until` (the heal, plus the
/// time to settle it; pushed back while the daemon of `of` is down and its
/// OS runs, since no one can hear it then).
#[derive(Clone, Copy, Debug)]
pub struct FalseConfirm {
    pub of: NodeId,
    pub at: Time,
    pub until: Time,
}

/// Whether two nodes may hold one lock at once at `now`, each `(node,
/// since when it runs the lock's service)`: only when one's run began after
/// the other was falsely confirmed off (its side took the other for off and
/// holding nothing; the other runs on and may hold that lock, from before
/// or granted on its own side), while that confirmation is excused.
pub fn excused(a: (NodeId, Time), b: (NodeId, Time), now: Time, falses: &[FalseConfirm]) -> bool {
    let took_over = |x: (NodeId, Time), y: NodeId| {
        falses
            .iter()
            .any(|f| f.of == y && f.at <= x.1 && now < f.until)
    };
    took_over(a, b.0) || took_over(b, a.0)
}

/// At most one holder per lock: among the services of every node whose OS
/// runs, and among the beliefs of every node whose daemon runs; but for
/// the pairs a false confirmation excuses at `now`.
pub fn check(nodes: &[SimNode], now: Time, falses: &[FalseConfirm]) -> Option<String> {
    for lock in LOCKS {
        let run = |n: &SimNode| (n.id, n.run_since.get(&lock).copied().unwrap_or_default());
        let runners: Vec<(NodeId, Time)> = nodes
            .iter()
            .filter(|n| n.running.contains(&lock))
            .map(run)
            .collect();
        if let Some(pair) = unexcused(&runners, now, falses) {
            return Some(format!(
                "the service of lock {lock} runs on n{pair:?} at once"
            ));
        }
        let holders: Vec<(NodeId, Time)> = nodes
            .iter()
            .filter(|n| n.engine.is_some())
            .filter(|n| n.locks.as_ref().is_some_and(|l| l.holds(lock)))
            .map(run)
            .collect();
        if let Some(pair) = unexcused(&holders, now, falses) {
            return Some(format!("lock {lock} held by n{pair:?} at once"));
        }
    }
    None
}

/// Two of `runs` that may not hold one lock at once, if any.
fn unexcused(runs: &[(NodeId, Time)], now: Time, falses: &[FalseConfirm]) -> Option<[NodeId; 2]> {
    runs.iter().enumerate().find_map(|(i, &a)| {
        runs[i + 1..]
            .iter()
            .find(|&&b| !excused(a, b, now, falses))
            .map(|&b| [a.0, b.0])
    })
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
