//! When hamond fences: a peer lost uncleanly (not a clean leave) is powered
//! off through the configured devices ([`crate::fence`]), after the fence
//! delay when that peer hosts more services than this node (rule 4: the side
//! that hosts the most shoots first), unless it comes back first. A failed
//! fence is retried a few times, then left to the operator (`hactl fence
//! confirm`). A peer no device covers is never fenced: its services stay
//! STALLED (rule 1).
//!
//! A peer whose stop failed while it held a service's lock asks the node
//! that takes the service over to fence it (safety rule 7, through
//! [`crate::services`]): that fence runs at once, although the peer is up
//! on the heartbeats (it asked; only the node it asked shoots, so there is
//! no race to delay). Once the device says it is off, the node is
//! remembered as fenced until the heartbeats see it go down: then its
//! locks are freed ([`Fencing::lost`]) without a second fence.
//!
//! With ping addresses (`[cluster] ping`, [`reach`]) a lost peer is fenced
//! only after a fresh check shows this node reaches one of them: a node
//! that reaches none is the isolated side; it does not shoot, it releases
//! its services (the daemon tells hasvrd, and runs `[cluster] isolation`).
//!
//! The daemon loop owns the decisions; the device calls run in tasks that
//! report back with [`FenceMsg`]. Each result (and a loss no device covers)
//! is also an event for the history ([`Fencing::take_events`]).
//!
//! Every device is also checked (`monitor`) a little after the start and
//! then every few minutes ([`report`]), and on `hactl fence test`
//! ([`Fencing::test`]); both in tasks. `hactl status` shows the fences
//! and the last checks ([`Fencing::fences`], [`Fencing::device_checks`]).

use hamond::fence::{Action, Fencer};
use haschema::config::ClusterConfig;
use haschema::ctl::{DeviceCheck, FenceRecord, Response};
use haschema::event::{Event, EventKind, Severity};
use litecloud::wire::NodeId;
use reach::{Change, Reach};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

mod reach;
mod report;

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
    /// Time to ask the ping addresses again.
    CheckReach,
    /// The ping addresses were asked: one that answered, or why none did.
    Reached(Result<IpAddr, String>),
}

struct Pending {
    name: String,
    round: u64,
    attempts: u32,
    /// Why the node was lost.
    cause: String,
    /// When the current attempt started.
    fired: Option<Instant>,
    /// The node asked for it: fenced even while it is up.
    requested: bool,
    /// Fired once a check shows this node reaches a ping address
    /// (`Some(told)`: whether the operator was told it is held).
    awaits_reach: Option<bool>,
}

/// The fences under way.
pub struct Fencing {
    fencer: Arc<Fencer>,
    /// The longest delay of the devices of each fenceable node.
    delays: BTreeMap<String, Duration>,
    pending: BTreeMap<NodeId, Pending>,
    /// Nodes a requested fence powered off while the heartbeats still
    /// showed them up.
    off_while_up: BTreeSet<NodeId>,
    /// Peers lost uncleanly, not back and not proven off.
    unseen: BTreeSet<NodeId>,
    /// The tie-breaker.
    reach: Reach,
    rounds: u64,
    tx: mpsc::UnboundedSender<FenceMsg>,
    /// This node's name, for its events.
    me: String,
    /// Events not yet taken by the daemon loop.
    events: Vec<Event>,
}

impl Fencing {
    /// The devices of `config`, and where their reports arrive; `me` names
    /// this node in its events.
    pub fn new(config: &ClusterConfig, me: &str) -> (Fencing, mpsc::UnboundedReceiver<FenceMsg>) {
        let mut delays = BTreeMap::new();
        for f in &config.fences {
            for node in &f.nodes {
                let d: &mut Duration = delays.entry(node.clone()).or_default();
                *d = (*d).max(f.delay);
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let fencing = Fencing {
            fencer: Arc::new(Fencer::from_config(config)),
            delays,
            pending: BTreeMap::new(),
            off_while_up: BTreeSet::new(),
            unseen: BTreeSet::new(),
            reach: Reach::new(config.ping.clone()),
            rounds: 0,
            tx,
            me: me.to_owned(),
            events: Vec::new(),
        };
        (fencing, rx)
    }

    /// `node` was lost uncleanly (`cause`); `delayed`: it hosts more than
    /// this node, so wait the fence delay first. True when a fence it asked
    /// for powered it off already: its locks may be freed now.
    pub fn lost(&mut self, node: NodeId, name: String, cause: &str, delayed: bool) -> bool {
        if self.off_while_up.remove(&node) {
            tracing::warn!(
                severity = "notice",
                "{name} is down ({cause}) after it was fenced: its services may be taken over"
            );
            return true;
        }
        self.seen_lost(node);
        if self.pending.get(&node).is_some_and(|p| p.requested) {
            tracing::info!("{name} is down ({cause}); the fence it asked for goes on");
            return false;
        }
        self.start(node, name, cause, delayed);
        false
    }

    /// `node` was lost uncleanly and is not fenced by this node (it sees
    /// only a minority): it counts for the tie-breaker as a lost node.
    pub fn seen_lost(&mut self, node: NodeId) {
        self.unseen.insert(node);
    }

    /// `node`, up on the heartbeats, asks to be fenced (`cause`): fenced at
    /// once, without a delay.
    pub fn requested(&mut self, node: NodeId, name: String, cause: &str) {
        if self.pending.get(&node).is_some_and(|p| p.requested) {
            return;
        }
        self.off_while_up.remove(&node);
        if self.start(node, name, cause, false)
            && let Some(p) = self.pending.get_mut(&node)
        {
            p.requested = true;
        }
    }

    /// Starts a fence of `node`; false when no device covers it.
    fn start(&mut self, node: NodeId, name: String, cause: &str, delayed: bool) -> bool {
        let Some(&delay) = self.delays.get(&name) else {
            tracing::error!(
                severity = "emerg",
                "{name} was lost ({cause}) and no fencing device covers it: the services it held stay \
                 STALLED; power it off, then run `hactl fence confirm {name}`"
            );
            self.event(
                Severity::Warning,
                format!("{name} not fenced: no fencing device covers it"),
                format!("{name} lost ({cause})"),
            );
            return false;
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
                cause: cause.to_owned(),
                fired: None,
                requested: false,
                awaits_reach: None,
            },
        );
        self.after(delay, FenceMsg::Ready { node, round });
        true
    }

    /// `node` is back (or confirmed off by the operator): no fence, unless
    /// it asked for one.
    pub fn cancel(&mut self, node: NodeId) {
        self.off_while_up.remove(&node);
        self.unseen.remove(&node);
        if self.pending.get(&node).is_some_and(|p| !p.requested)
            && let Some(p) = self.pending.remove(&node)
        {
            tracing::info!("{} is back: fence called off", p.name);
        }
    }

    /// The fence delay of `node` passed: fence it, unless it is `live` on
    /// the heartbeats and did not ask for it (it is back: called off).
    /// With ping addresses, a lost node is fenced only once a fresh check
    /// shows this node reaches one of them.
    pub fn ready(&mut self, node: NodeId, live: bool) {
        let Some(p) = self.pending.get_mut(&node) else {
            return;
        };
        if live && !p.requested {
            self.cancel(node);
        } else if !p.requested && self.reach.configured() {
            p.awaits_reach.get_or_insert(false);
            self.check_reach();
        } else {
            self.fire(node);
        }
    }

    /// Starts the periodic ping checks (none without ping addresses).
    pub fn start_reach(&mut self) {
        self.check_reach();
    }

    /// Starts the periodic checks of the devices (none without devices).
    pub fn start_checks(&self) {
        report::checks(self.fencer.clone());
    }

    /// `hactl fence test [DEVICE]`: checks `device`, or every device, in a
    /// task, and answers `reply` with each check (the device may take its
    /// timeout).
    pub fn test(&self, device: Option<String>, reply: oneshot::Sender<Response>) {
        let fencer = self.fencer.clone();
        tokio::spawn(async move {
            let response = match fencer.monitor(device.as_deref()).await {
                Ok(checks) => Response::FenceTest {
                    checks: checks.iter().map(report::device_check).collect(),
                },
                Err(message) => Response::Error { message },
            };
            let _ = reply.send(response);
        });
    }

    /// The last fences of each node, for `hactl status`.
    pub fn fences(&self) -> Vec<FenceRecord> {
        report::fences(&self.fencer.history())
    }

    /// The last check of each device, for `hactl status`.
    pub fn device_checks(&self) -> Vec<DeviceCheck> {
        self.fencer
            .checks()
            .iter()
            .map(report::device_check)
            .collect()
    }

    /// Asks the ping addresses now, unless a check is under way.
    pub fn check_reach(&mut self) {
        if !self.reach.configured() || self.reach.checking {
            return;
        }
        self.reach.checking = true;
        let (ping, tx) = (self.reach.addresses().to_vec(), self.tx.clone());
        tokio::spawn(async move {
            let _ = tx.send(FenceMsg::Reached(Reach::ask(ping).await));
        });
    }

    /// A ping check ended: fences waiting for it are fired, or held while
    /// this node reaches no address (it is the isolated side). Returns the
    /// change of isolation, if any.
    pub fn reached(&mut self, result: Result<IpAddr, String>) -> Option<Change> {
        let change = self.reach.checked(result);
        let answered = self.reach.answered() == Some(true);
        let waiting: Vec<NodeId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.awaits_reach.is_some())
            .map(|(&n, _)| n)
            .collect();
        for node in waiting {
            let Some(p) = self.pending.get_mut(&node) else {
                continue;
            };
            if answered {
                p.awaits_reach = None;
                self.fire(node);
            } else if p.awaits_reach == Some(false) {
                p.awaits_reach = Some(true);
                tracing::error!(
                    severity = "emerg",
                    "not fencing {}: this node reaches none of the ping addresses, so it is the \
                     isolated side; the node that reaches them fences (rule 1: the ping \
                     addresses decide who releases); check this node's public network",
                    p.name
                );
            }
        }
        self.after(reach::REACH_EVERY, FenceMsg::CheckReach);
        change
    }

    /// Whether any other node is up on the heartbeats; the change of
    /// isolation, if any.
    pub fn peers_up(&mut self, any: bool) -> Option<Change> {
        let alone = !any && !self.unseen.is_empty();
        self.reach.set_alone(alone)
    }

    /// Why this node is isolated, while it is.
    pub fn isolated(&self) -> Option<&str> {
        self.reach.isolated()
    }

    /// A fence powered `node` off while the heartbeats still show it up:
    /// [`Fencing::lost`] frees its locks when they see it go down.
    pub fn off_while_up(&mut self, node: NodeId) {
        self.off_while_up.insert(node);
    }

    /// Whether `round` is the current fence of `node`.
    pub fn current(&self, node: NodeId, round: u64) -> bool {
        self.pending.get(&node).is_some_and(|p| p.round == round)
    }

    /// Runs the fence of `node` now.
    fn fire(&mut self, node: NodeId) {
        let Some(p) = self.pending.get_mut(&node) else {
            return;
        };
        p.attempts += 1;
        p.fired = Some(Instant::now());
        let (name, round) = (p.name.clone(), p.round);
        let (fencer, tx) = (self.fencer.clone(), self.tx.clone());
        tokio::spawn(async move {
            let result = fencer
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
        let event = result_event(&self.me, p, &result);
        self.events.push(event);
        match result {
            Ok(device) => {
                tracing::warn!(
                    severity = "notice",
                    "{} is fenced (powered off by {device}): its services may be taken over",
                    p.name
                );
                self.pending.remove(&node);
                // Off: it holds nothing, so it does not make this node
                // alone (isolated) any more.
                self.unseen.remove(&node);
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

    /// The events since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    fn event(&mut self, severity: Severity, what: String, cause: String) {
        self.events
            .push(Event::now(&self.me, EventKind::Fence, severity, what).because(cause));
    }

    fn after(&self, delay: Duration, msg: FenceMsg) {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(msg);
        });
    }
}

/// The history's event for one fence attempt's `result`, recorded by `me`:
/// with how long the attempt took, and emergency once the last attempt
/// failed.
fn result_event(me: &str, p: &Pending, result: &Result<String, String>) -> Event {
    let name = &p.name;
    let lost = format!("{name} lost ({})", p.cause);
    let (severity, what, cause) = match result {
        Ok(device) => (
            Severity::Warning,
            format!("{name} fenced (powered off by {device})"),
            lost,
        ),
        Err(e) if p.attempts < ATTEMPTS => (
            Severity::Warning,
            format!(
                "fencing {name} failed (attempt {} of {ATTEMPTS}), retrying",
                p.attempts
            ),
            format!("{lost}: {e}"),
        ),
        Err(e) => (
            Severity::Emergency,
            format!("fencing {name} failed {ATTEMPTS} times: its services stay STALLED"),
            format!("{lost}: {e}"),
        ),
    };
    let took = p.fired.map(|t| t.elapsed()).unwrap_or_default();
    Event::now(me, EventKind::Fence, severity, what)
        .because(cause)
        .phase("fencing", took)
}
