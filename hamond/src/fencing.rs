//! When hamond fences: a peer lost uncleanly (not a clean leave) is powered
//! off through the configured devices ([`crate::fence`]), after the fence
//! delay when that peer hosts more services than this node (rule 4: the side
//! that hosts the most shoots first), unless it comes back first. A failed
//! fence is retried a few times, then left to the operator (`hactl fence
//! confirm`). A peer no device covers is never fenced: its services stay
//! STALLED (rule 1).
//!
//! The daemon loop owns the decisions; the device calls run in tasks that
//! report back with [`FenceMsg`].

use hamond::fence::{Action, Fencer};
use haschema::config::ClusterConfig;
use litecloud::wire::NodeId;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};

/// Attempts per loss before the operator must step in.
const ATTEMPTS: u32 = 3;
/// Pause between two attempts.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// What a fencing task tells the daemon loop; `round` tells a current
/// report from one of an abandoned fence.
pub enum FenceMsg {
    /// The delay passed: fence now, unless the node is back.
    Ready { node: NodeId, round: u64 },
    /// A fence ended: the device that did it, or why not.
    Done {
        node: NodeId,
        round: u64,
        result: Result<String, String>,
    },
}

struct Pending {
    name: String,
    round: u64,
    attempts: u32,
}

/// The fences under way.
pub struct Fencing {
    fencer: Arc<Mutex<Fencer>>,
    /// The longest delay of the devices of each fenceable node.
    delays: BTreeMap<String, Duration>,
    pending: BTreeMap<NodeId, Pending>,
    rounds: u64,
    tx: mpsc::UnboundedSender<FenceMsg>,
}

impl Fencing {
    /// The devices of `config`, and where their reports arrive.
    pub fn new(config: &ClusterConfig) -> (Fencing, mpsc::UnboundedReceiver<FenceMsg>) {
        let mut delays = BTreeMap::new();
        for f in &config.fences {
            for node in &f.nodes {
                let d: &mut Duration = delays.entry(node.clone()).or_default();
                *d = (*d).max(f.delay);
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let fencing = Fencing {
            fencer: Arc::new(Mutex::new(Fencer::from_config(config))),
            delays,
            pending: BTreeMap::new(),
            rounds: 0,
            tx,
        };
        (fencing, rx)
    }

    /// `node` was lost uncleanly (`cause`); `delayed`: it hosts more than
    /// this node, so wait the fence delay first.
    pub fn lost(&mut self, node: NodeId, name: String, cause: &str, delayed: bool) {
        let Some(&delay) = self.delays.get(&name) else {
            tracing::error!(
                severity = "emerg",
                "{name} was lost ({cause}) and no fencing device covers it: the services it held stay \
                 STALLED; power it off, then run `hactl fence confirm {name}`"
            );
            return;
        };
        let delay = if delayed { delay } else { Duration::ZERO };
        self.rounds += 1;
        let round = self.rounds;
        tracing::warn!(
            "{name} was lost ({cause}): fencing it{}",
            if delay.is_zero() {
                String::new()
            } else {
                format!(" in {delay:?} (fence delay: it hosts more services than this node)")
            }
        );
        self.pending.insert(
            node,
            Pending {
                name,
                round,
                attempts: 0,
            },
        );
        self.after(delay, FenceMsg::Ready { node, round });
    }

    /// `node` is back (or confirmed off by the operator): no fence.
    pub fn cancel(&mut self, node: NodeId) {
        if let Some(p) = self.pending.remove(&node) {
            tracing::info!("{} is back: fence called off", p.name);
        }
    }

    /// Whether `round` is the current fence of `node`.
    pub fn current(&self, node: NodeId, round: u64) -> bool {
        self.pending.get(&node).is_some_and(|p| p.round == round)
    }

    /// Runs the fence of `node` now.
    pub fn fire(&mut self, node: NodeId) {
        let Some(p) = self.pending.get_mut(&node) else {
            return;
        };
        p.attempts += 1;
        let (name, round) = (p.name.clone(), p.round);
        let (fencer, tx) = (self.fencer.clone(), self.tx.clone());
        tokio::spawn(async move {
            let result = fencer
                .lock()
                .await
                .fence(&name, Action::Off)
                .await
                .map_err(|e| e.to_string());
            let _ = tx.send(FenceMsg::Done {
                node,
                round,
                result,
            });
        });
    }

    /// A fence of `node` ended; true when it is now proven off.
    pub fn done(&mut self, node: NodeId, result: Result<String, String>) -> bool {
        let Some(p) = self.pending.get(&node) else {
            return false;
        };
        match result {
            Ok(device) => {
                tracing::warn!(
                    severity = "notice",
                    "{} is fenced (powered off by {device}): its services may be taken over",
                    p.name
                );
                self.pending.remove(&node);
                true
            }
            Err(e) if p.attempts < ATTEMPTS => {
                tracing::error!(
                    "fencing {} failed (attempt {} of {ATTEMPTS}): {e}; retrying in {RETRY_AFTER:?}",
                    p.name,
                    p.attempts
                );
                let round = p.round;
                self.after(RETRY_AFTER, FenceMsg::Ready { node, round });
                false
            }
            Err(e) => {
                tracing::error!(
                    severity = "emerg",
                    "fencing {0} failed {ATTEMPTS} times ({e}): its services stay STALLED; check the \
                     fencing device, power {0} off and run `hactl fence confirm {0}`",
                    p.name
                );
                self.pending.remove(&node);
                false
            }
        }
    }

    fn after(&self, delay: Duration, msg: FenceMsg) {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(msg);
        });
    }
}
