//! The checker: the simulator's ground truth (what was delivered when,
//! which path and pair had a fault when, who was down or stalled) and the
//! invariants asserted on every step against it. The first violation is
//! kept with the seed, the step, the time and the tail of the trace.
//!
//! - (a) one medium is enough: a node never declares a peer dead while
//!   some path between them has been clean both ways (every datagram
//!   delivered, delay <= interval/2, no cut) for deadtime + 2 intervals of
//!   that path and neither node crashed, restarted or stalled in that
//!   window; (a') and then it does see that peer up.
//! - (b) a silent peer is declared dead by every live node that saw it up
//!   within interval x (maxmiss + 1) (largest over paths) after the last
//!   frame from it was delivered, unless that observer stalled since.
//! - (c) a node whose own frames have not reached a peer for that bound
//!   plus an interval sees that peer down (two-way liveness: a one-way cut
//!   is down on both sides). Per path too: a link is up only while the
//!   peer has received a frame of ours (this engine) sent on that path
//!   within deadtime + 2 intervals, and (c') a link comes up only if it
//!   received one sent within the deadtime.
//! - (d) after the heal, every live node sees every live node up within
//!   [`Config::heal_bound`].
//! - (e) a datagram delivered again to the same engine (network duplicate
//!   or replay) is refused as `replay` (or `old_incarnation`) and brings
//!   nothing up. (An attacker's replay of a datagram this engine never got
//!   is indistinguishable from a late datagram: it may be accepted, but
//!   (c') still holds: it cannot prove that the peer hears us.)
//! - (f) membership epochs only grow, by one at each change, and each
//!   Membership event names exactly this node and the peers it sees up.
//! - (g) events agree with state: LinkUp/LinkDown and NodeUp/NodeDown
//!   alternate and match `peer().up` and the links; accepted incarnations
//!   are real ones and grow.
//! - (h) a Stall event comes exactly when the node was held past its timer
//!   by more than the tolerance, with the true lateness, and never else.

use super::config::{Config, PathSpec};
use super::locks::FalseConfirm;
use super::net::{Kind, Net, Packet};
use super::world::SimNode;
use litecloud::Time;
use litecloud::node::{Event, Node};
use litecloud::wire::{NodeId, Reject};
use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;
use std::time::Duration;

/// What made the engine run in this step.
pub enum Cause {
    Start,
    Timer,
    Leave,
    /// A datagram (or a frame unframed from the serial line).
    Deliver {
        packet: Packet,
        before: Snap,
    },
    /// Damaged serial bytes (counted, or a frame other than the one sent).
    Noise,
    /// The driver called the engine or a protocol above it (a message, a
    /// lock request, a fence confirmation).
    Client,
}

/// Counters of one path before a delivery.
#[derive(Clone, Copy, Debug)]
pub struct Snap {
    received: u64,
    rejected: u64,
    replay: u64,
    old: u64,
}

impl Snap {
    pub fn of(node: &Node, path: u8) -> Snap {
        let c = node.counters(path).expect("path exists");
        Snap {
            received: c.frames_received,
            rejected: c.rejected.values().sum(),
            replay: c.rejected.get(&Reject::Replay).copied().unwrap_or(0),
            old: c
                .rejected
                .get(&Reject::OldIncarnation)
                .copied()
                .unwrap_or(0),
        }
    }
}

/// What the checker tracks of one node's current engine, from its events.
struct Observer {
    seen: HashSet<(u8, [u8; 12])>,
    peer_up: Vec<bool>,
    link_up: Vec<Vec<bool>>,
    accepted: Vec<Option<u32>>,
    epoch: u64,
    stalls: u64,
    /// Set on resume: the next handle call must report this stall (or
    /// none).
    expect_stall: Option<Option<Duration>>,
}

impl Observer {
    fn new(nodes: usize, paths: usize) -> Observer {
        Observer {
            seen: HashSet::new(),
            peer_up: vec![false; nodes],
            link_up: vec![vec![false; paths]; nodes],
            accepted: vec![None; nodes],
            epoch: 0,
            stalls: 0,
            expect_stall: None,
        }
    }
}

/// Counts for the report.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub steps: u64,
    pub deliveries: u64,
    pub repeats: u64,
    pub attacker_replays: u64,
    /// First-time genuine datagrams the engine refused as `replay`
    /// (reordered beyond its window).
    pub false_replays: u64,
    pub node_downs: u64,
    pub node_ups: u64,
    pub stalls: u64,
    pub incarnations: u64,
    pub crashes: u64,
    /// Locks granted (confirmed to their holder).
    pub lock_grants: u64,
    /// Nodes powered off by the fencer.
    pub fences: u64,
    /// Clean leaves heard (and told to the lock table).
    pub leaves_heard: u64,
    /// Grants to one of two nodes alone while its peer had left (heard
    /// here) and was not confirmed fenced.
    pub grants_after_leave: u64,
    /// Services still running when their node's daemon restarted (its
    /// restored table must hold their locks again).
    pub locks_kept: u64,
    /// Runs that ended settled, where "never lost" was checked.
    pub never_lost_checks: u64,
    /// False fence confirmations taken note of, and found out.
    pub false_confirms: u64,
    pub false_fences_found: u64,
}

pub struct Checker {
    seed: u64,
    test: String,
    cfg: Config,
    /// [path][a][b]: last fault between a and b on the path (both ways).
    dirty: Vec<Vec<Vec<Time>>>,
    /// Since when the node has run without crash, restart or stall.
    quiet_since: Vec<Option<Time>>,
    /// When the node's last stall ended.
    last_stall_end: Vec<Time>,
    /// [from][to]: last genuine frame from any engine of `from` delivered.
    heard: Vec<Vec<Option<Time>>>,
    /// [from][to]: last genuine frame from the current engine of `from`
    /// delivered.
    reached: Vec<Vec<Option<Time>>>,
    /// [from][to][path]: the latest send time of a frame from the current
    /// engine of `from` delivered to (any engine of) `to` on `path`: the
    /// newest frame `to` can acknowledge.
    proof: Vec<Vec<Vec<Option<Time>>>>,
    started_at: Vec<Time>,
    incarnation: Vec<u32>,
    obs: Vec<Observer>,
    violation: Option<String>,
    trace: VecDeque<String>,
    verbose: bool,
    pub stats: Stats,
    /// Every event of every engine: (time, node, event).
    pub events: Vec<(Time, NodeId, Event)>,
    /// Services started (true: the lock was granted) and stopped (false:
    /// lost or released): (time, node, lock, started).
    pub lock_log: Vec<(Time, NodeId, u32, bool)>,
    /// The false fence confirmations some daemon took note of.
    pub false_confirms: Vec<FalseConfirm>,
    /// The daemons' reports that a confirmation was false: (time, by, of).
    pub false_fences: Vec<(Time, NodeId, NodeId)>,
}

const TRACE_TAIL: usize = 60;

fn fmt_t(t: Time) -> String {
    format!("{:.4}s", t.as_secs_f64())
}

impl Checker {
    pub fn new(cfg: &Config, test: &str) -> Checker {
        let n = cfg.nodes;
        Checker {
            seed: cfg.seed,
            test: test.to_string(),
            cfg: cfg.clone(),
            dirty: cfg
                .paths
                .iter()
                .map(|_| vec![vec![Time::ZERO; n]; n])
                .collect(),
            quiet_since: vec![None; n],
            last_stall_end: vec![Time::ZERO; n],
            heard: vec![vec![None; n]; n],
            reached: vec![vec![None; n]; n],
            proof: vec![vec![vec![None; cfg.paths.len()]; n]; n],
            started_at: vec![Time::ZERO; n],
            incarnation: vec![0; n],
            obs: (0..n).map(|_| Observer::new(n, cfg.paths.len())).collect(),
            violation: None,
            trace: VecDeque::new(),
            verbose: std::env::var_os("SIM_TRACE").is_some(),
            stats: Stats::default(),
            events: Vec::new(),
            lock_log: Vec::new(),
            false_confirms: Vec::new(),
            false_fences: Vec::new(),
        }
    }

    pub fn failed(&self) -> bool {
        self.violation.is_some()
    }

    pub fn violation(&self) -> Option<&str> {
        self.violation.as_deref()
    }

    /// Adds a line to the trace.
    pub fn note(&mut self, now: Time, line: String) {
        let line = format!("{} {line}", fmt_t(now));
        if self.verbose {
            eprintln!("{line}");
        }
        if self.trace.len() == TRACE_TAIL {
            self.trace.pop_front();
        }
        self.trace.push_back(line);
    }

    pub fn fail(&mut self, now: Time, step: u64, what: &str, detail: String) {
        if self.violation.is_some() {
            return;
        }
        let c = &self.cfg;
        let mut m = String::new();
        let _ = writeln!(m, "invariant {what} violated");
        let _ = writeln!(
            m,
            "  seed {} at step {step}, t={}: {detail}",
            self.seed,
            fmt_t(now)
        );
        let _ = writeln!(
            m,
            "  replay: SIM_SEED={} cargo test -p litecloud --test simulation {} -- --nocapture \
             (SIM_TRACE=1 prints every event)",
            self.seed, self.test
        );
        let _ = writeln!(m, "  cluster: {} nodes", c.nodes);
        for (i, p) in c.paths.iter().enumerate() {
            let _ = writeln!(
                m,
                "    path {i}: interval {:?} maxmiss {} deadtime {:?} members {:?}{}",
                p.interval,
                p.maxmiss,
                p.deadtime(),
                p.members,
                p.serial_baud
                    .map_or(String::new(), |b| format!(" serial {b} baud"))
            );
        }
        let _ = writeln!(
            m,
            "  faults until {}: {:?}; healed delay {}",
            fmt_t(c.heal_at),
            c.rates,
            c.healed_delay
        );
        for (t, a) in &c.plan {
            let _ = writeln!(m, "    at {}: {a:?}", fmt_t(*t));
        }
        let _ = writeln!(m, "  last {} trace lines:", self.trace.len());
        for l in &self.trace {
            let _ = writeln!(m, "    {l}");
        }
        self.violation = Some(m);
    }

    pub fn started(&mut self, i: usize, now: Time, instance: u32, incarnation: u32, boot: u32) {
        self.obs[i] = Observer::new(self.cfg.nodes, self.cfg.paths.len());
        self.quiet_since[i] = Some(now);
        self.started_at[i] = now;
        self.incarnation[i] = incarnation;
        for other in 0..self.cfg.nodes {
            self.reached[i][other] = None;
            self.proof[i][other].fill(None);
        }
        self.note(
            now,
            format!(
                "n{} starts: engine #{instance}, incarnation {incarnation}, boot {boot:#x}",
                i + 1
            ),
        );
    }

    pub fn crashed(
        &mut self,
        i: usize,
        now: Time,
        leave: bool,
        release: bool,
        reboot: bool,
        restart: Option<Duration>,
    ) {
        self.quiet_since[i] = None;
        self.stats.crashes += 1;
        let how = match (release, leave) {
            (true, true) => "stops cleanly (releases, drains, leaves)",
            (true, false) => "stops its services, drains and crashes",
            (false, true) => "leaves and stops (services untouched)",
            (false, false) => "crashes",
        };
        let os = if reboot {
            "OS down"
        } else {
            "OS up, services keep running"
        };
        self.note(
            now,
            format!("n{} {how}; {os}; restart after {restart:?}", i + 1),
        );
    }

    pub fn stalled(&mut self, i: usize, now: Time, len: Duration) {
        self.quiet_since[i] = None;
        self.note(now, format!("n{} stalls for {len:?}", i + 1));
    }

    pub fn resumed(&mut self, i: usize, now: Time, late: Option<Duration>) {
        self.quiet_since[i] = Some(now);
        self.last_stall_end[i] = now;
        self.obs[i].expect_stall = Some(late);
        self.note(
            now,
            format!(
                "n{} resumes; timer late by {late:?} (past tolerance)",
                i + 1
            ),
        );
    }

    /// A fault on `path` between `a` and `b` (either way).
    pub fn fault(&mut self, path: u8, a: usize, b: usize, now: Time) {
        let p = usize::from(path);
        self.dirty[p][a][b] = now;
        self.dirty[p][b][a] = now;
    }

    /// Right after `handle_timeout(now)` the engine must ask for a time
    /// in the future (else a perfect driver spins or stalls it).
    pub fn armed_after_timer(&mut self, i: usize, at: Time, now: Time, step: u64) {
        if at <= now {
            self.fail(
                now,
                step,
                "(h) timers",
                format!(
                    "right after handle_timeout, n{} asked for its timer at {}, not in the future",
                    i + 1,
                    fmt_t(at)
                ),
            );
        }
    }

    /// The engine may only send to its peers on a path.
    pub fn sendable(
        &mut self,
        cfg: &Config,
        from: usize,
        to: usize,
        path: u8,
        now: Time,
        step: u64,
    ) -> bool {
        let ok = cfg.paths.get(usize::from(path)).is_some_and(|p| {
            from != to && p.has((from + 1) as NodeId) && p.has((to + 1) as NodeId)
        });
        if !ok {
            self.fail(
                now,
                step,
                "(g) addressing",
                format!(
                    "n{} sent to n{} on path {path}, not a peer there",
                    from + 1,
                    to + 1
                ),
            );
        }
        ok
    }

    /// The path that has kept `a` and `b` in touch cleanly long enough for
    /// (a), if any.
    fn clean_path(&self, net: &Net, a: usize, b: usize, now: Time) -> Option<(usize, Time)> {
        let (qa, qb) = (self.quiet_since[a]?, self.quiet_since[b]?);
        self.cfg
            .paths
            .iter()
            .enumerate()
            .filter(|(_, p)| p.has((a + 1) as NodeId) && p.has((b + 1) as NodeId))
            .filter(|&(p, _)| !net.is_cut(p as u8, a, b) && !net.is_cut(p as u8, b, a))
            .map(|(p, spec)| {
                let since = self.dirty[p][a][b].max(qa).max(qb);
                (p, since, window(spec))
            })
            .find(|&(_, since, w)| since + w <= now)
            .map(|(p, since, _)| (p, since))
    }

    /// Checks one step of node `i`: what caused it and the events it
    /// emitted, then its whole view.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        nodes: &[SimNode],
        i: usize,
        now: Time,
        step: u64,
        cause: &Cause,
        events: &[Event],
        net: &Net,
    ) {
        self.stats.steps += 1;
        let me = i + 1;
        let engine = nodes[i].engine.as_ref().expect("checked node runs");
        for e in events {
            self.note(now, format!("n{me}: {e:?}"));
            self.events.push((now, me as NodeId, e.clone()));
        }
        if let Cause::Deliver { packet, before } = cause {
            self.delivery(engine, i, now, step, packet, *before, events);
        }
        // (h) stalls
        // Only timers and datagrams run the engine's stall check.
        let reports_stall = !matches!(
            cause,
            Cause::Start | Cause::Leave | Cause::Noise | Cause::Client
        );
        let stall = events.iter().find_map(|e| match e {
            Event::Stall { late } => Some(*late),
            _ => None,
        });
        match (self.obs[i].expect_stall, stall) {
            (Some(expected), got) if reports_stall => {
                self.obs[i].expect_stall = None;
                if expected != got {
                    self.fail(
                        now,
                        step,
                        "(h) stall detection",
                        format!(
                            "n{me} resumed with its timer late by {expected:?} past tolerance, \
                             engine reported stall {got:?}"
                        ),
                    );
                }
            }
            (_, Some(late)) => self.fail(
                now,
                step,
                "(h) stall detection",
                format!(
                    "n{me} reported a stall of {late:?} it did not have ({cause_s})",
                    cause_s = cause_name(cause)
                ),
            ),
            _ => {}
        }
        if stall.is_some() {
            self.obs[i].stalls += 1;
            self.stats.stalls += 1;
        }
        // (a), (f), (g): the events one by one
        for e in events {
            self.event(nodes, net, i, now, step, e);
        }
        // (g) state agrees with events
        let o = &self.obs[i];
        let mut bad = Vec::new();
        for peer in engine.peers() {
            let b = usize::from(peer.id) - 1;
            if peer.up != o.peer_up[b] {
                bad.push(format!(
                    "peer {} up={} but events say {}",
                    peer.id, peer.up, o.peer_up[b]
                ));
            }
            for (p, l) in peer.links.iter().enumerate() {
                let up = l.as_ref().is_some_and(|l| l.up);
                if up != o.link_up[b][p] {
                    bad.push(format!(
                        "link {}/{p} up={up} but events say {}",
                        peer.id, o.link_up[b][p]
                    ));
                }
            }
        }
        if engine.epoch() != o.epoch {
            bad.push(format!(
                "epoch {} but events say {}",
                engine.epoch(),
                o.epoch
            ));
        }
        if engine.stalls().0 != o.stalls {
            bad.push(format!(
                "stalls() {} but {} Stall events",
                engine.stalls().0,
                o.stalls
            ));
        }
        if !bad.is_empty() {
            self.fail(
                now,
                step,
                "(g) state vs events",
                format!("n{me}: {}", bad.join("; ")),
            );
        }
        // A big cluster is swept at each timer step only (at least once an
        // interval); NodeDown events are checked against the deadlines
        // when they happen, so no late one is missed.
        if self.cfg.nodes <= 8 || matches!(cause, Cause::Timer) {
            self.sweep(nodes, i, now, step, net);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn delivery(
        &mut self,
        engine: &Node,
        i: usize,
        now: Time,
        step: u64,
        packet: &Packet,
        before: Snap,
        events: &[Event],
    ) {
        self.stats.deliveries += 1;
        let me = i + 1;
        let from = packet.from + 1;
        if packet.kind == Kind::Replay {
            self.stats.attacker_replays += 1;
        } else {
            self.heard[packet.from][i] = Some(now);
            // Only the engine that sent it counts as reaching (c).
            if packet.sent_at >= self.started_at[packet.from] {
                self.reached[packet.from][i] = Some(now);
            }
        }
        if packet.sent_at >= self.started_at[packet.from] {
            let proof = &mut self.proof[packet.from][i][usize::from(packet.path)];
            *proof = Some(proof.map_or(packet.sent_at, |t| t.max(packet.sent_at)));
        }
        let after = Snap::of(engine, packet.path);
        let accepted = after.received > before.received;
        let repeat = !self.obs[i].seen.insert((packet.path, packet.tag()));
        if self.verbose {
            let b = &packet.bytes;
            let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
            let verdict = if accepted {
                "accepted"
            } else if after.replay > before.replay {
                "refused as replay"
            } else if after.old > before.old {
                "refused as old incarnation"
            } else {
                "refused"
            };
            self.note(
                now,
                format!(
                    "n{me} <- n{from} path {} {:?}{} sent {} inc {} seq {} ack {}: {verdict}",
                    packet.path,
                    packet.kind,
                    if repeat { " (repeat)" } else { "" },
                    fmt_t(packet.sent_at),
                    u32_at(11),
                    u32_at(15),
                    u32_at(19)
                ),
            );
        }
        let what = format!(
            "{:?} datagram from n{from} on path {} sent at {} (age {:?})",
            packet.kind,
            packet.path,
            fmt_t(packet.sent_at),
            now - packet.sent_at
        );
        if repeat {
            self.stats.repeats += 1;
            let as_replay = after.replay > before.replay || after.old > before.old;
            if accepted || !as_replay {
                let reason = if accepted {
                    "accepted it".to_string()
                } else {
                    format!(
                        "refused it for another reason (rejected {} -> {})",
                        before.rejected, after.rejected
                    )
                };
                self.fail(
                    now,
                    step,
                    "(e) replay",
                    format!("n{me} got the same {what} a second time and {reason}"),
                );
            }
        } else if packet.kind != Kind::Replay && after.replay > before.replay {
            self.stats.false_replays += 1;
        }
        if repeat {
            let up = events.iter().find(|e| {
                matches!(
                    e,
                    Event::LinkUp { .. } | Event::NodeUp { .. } | Event::IncarnationAccepted { .. }
                )
            });
            if let Some(e) = up {
                self.fail(
                    now,
                    step,
                    "(e) replay",
                    format!("n{me} got the same {what} a second time and it caused {e:?}"),
                );
            }
        }
    }

    fn event(&mut self, nodes: &[SimNode], net: &Net, i: usize, now: Time, step: u64, e: &Event) {
        let me = i + 1;
        let err = |s: String| Some(("(g) events", s));
        let problem: Option<(&str, String)> = match *e {
            Event::LinkUp { peer, path } => {
                let (b, p) = (usize::from(peer) - 1, usize::from(path));
                let was = std::mem::replace(&mut self.obs[i].link_up[b][p], true);
                let deadtime = self.cfg.paths[p].deadtime();
                let proof = self.proof[i][b][p];
                if was {
                    err(format!("n{me}: LinkUp {peer}/{path} while up"))
                } else if proof.is_none_or(|sent| sent + deadtime < now) {
                    Some((
                        "(c') two-way proof",
                        format!(
                            "n{me} brought its link to n{peer} on path {path} up, but n{peer} got \
                             no frame of n{me}'s current engine on that path sent within the \
                             deadtime {deadtime:?} (latest sent at {})",
                            proof.map_or("never".to_string(), fmt_t)
                        ),
                    ))
                } else {
                    None
                }
            }
            Event::LinkDown { peer, path, .. } => {
                let (b, p) = (usize::from(peer) - 1, usize::from(path));
                let was = std::mem::replace(&mut self.obs[i].link_up[b][p], false);
                if !was {
                    err(format!("n{me}: LinkDown {peer}/{path} while down"))
                } else {
                    None
                }
            }
            Event::NodeUp { peer, incarnation } => {
                self.stats.node_ups += 1;
                let b = usize::from(peer) - 1;
                let was = std::mem::replace(&mut self.obs[i].peer_up[b], true);
                if was {
                    err(format!("n{me}: NodeUp {peer} while up"))
                } else if self.obs[i].accepted[b] != Some(incarnation) {
                    err(format!(
                        "n{me}: NodeUp {peer} incarnation {incarnation}, accepted {:?}",
                        self.obs[i].accepted[b]
                    ))
                } else {
                    None
                }
            }
            Event::NodeDown { peer, cause } => {
                self.stats.node_downs += 1;
                let b = usize::from(peer) - 1;
                let was = std::mem::replace(&mut self.obs[i].peer_up[b], false);
                if !was {
                    err(format!("n{me}: NodeDown {peer} while down"))
                } else if let Some(late) = self.overdue(i, b, now) {
                    Some(late)
                } else if let Some((p, since)) = self.clean_path(net, i, b, now) {
                    Some((
                        "(a) one medium is enough",
                        format!(
                            "n{me} declared n{peer} dead ({cause:?}) although path {p} between them \
                             has been clean both ways since {} (window {:?}) and neither node \
                             crashed, restarted or stalled since",
                            fmt_t(since),
                            window(&self.cfg.paths[p])
                        ),
                    ))
                } else {
                    None
                }
            }
            Event::Membership { epoch, ref members } => {
                let o = &mut self.obs[i];
                let mut want: Vec<NodeId> = (0..self.cfg.nodes)
                    .filter(|&b| o.peer_up[b])
                    .map(|b| (b + 1) as NodeId)
                    .collect();
                want.push(me as NodeId);
                want.sort_unstable();
                let prev = std::mem::replace(&mut o.epoch, epoch);
                if epoch != prev + 1 {
                    Some(("(f) epochs", format!("n{me}: epoch {prev} -> {epoch}")))
                } else if *members != want {
                    err(format!(
                        "n{me}: Membership {members:?}, peers up say {want:?}"
                    ))
                } else {
                    None
                }
            }
            Event::IncarnationAccepted {
                peer,
                previous,
                incarnation,
                rebooted: _,
            } => {
                self.stats.incarnations += 1;
                let b = usize::from(peer) - 1;
                let prev = self.obs[i].accepted[b].replace(incarnation);
                if prev != previous || previous.is_some_and(|p| p >= incarnation) {
                    err(format!(
                        "n{me}: IncarnationAccepted {peer} {previous:?} -> {incarnation}, \
                         previously accepted {prev:?}"
                    ))
                } else if incarnation > nodes[b].incarnation {
                    err(format!(
                        "n{me}: accepted incarnation {incarnation} of n{peer}, which is only at {}",
                        nodes[b].incarnation
                    ))
                } else {
                    None
                }
            }
            Event::ConfigMismatch { peer, theirs } => err(format!(
                "n{me}: ConfigMismatch from n{peer} ({theirs:#x}) but all configs are equal"
            )),
            Event::Stall { .. } => None,
            Event::OwnIdentity { path } => err(format!("n{me}: own frame on path {path}")),
            Event::Message { .. } => None,
            Event::RenewIncarnation => err(format!(
                "n{me}: RenewIncarnation after a few thousand frames (due at 2^31)"
            )),
        };
        if let Some((what, detail)) = problem {
            self.fail(now, step, what, detail);
        }
    }

    /// (b) and (c): whether node `i` seeing `b` up at `now` (until this
    /// step) is past a deadline.
    fn overdue(&self, i: usize, b: usize, now: Time) -> Option<(&'static str, String)> {
        let (me, peer) = (i + 1, b + 1);
        let bound = self.cfg.silence_bound();
        let one_way = bound + self.cfg.max_interval();
        let stall_end = self.last_stall_end[i];
        let heard = self.heard[b][i].unwrap_or(Time::ZERO);
        let reached = self.reached[i][b].unwrap_or(self.started_at[i]);
        if now > heard + bound && stall_end <= heard {
            return Some((
                "(b) silent node declared dead",
                format!(
                    "n{me} saw n{peer} up at {}; the last frame from it was delivered at {} \
                     (bound {bound:?}, deadline {})",
                    fmt_t(now),
                    fmt_t(heard),
                    fmt_t(heard + bound)
                ),
            ));
        }
        if now > reached + one_way && stall_end <= reached {
            return Some((
                "(c) two-way liveness",
                format!(
                    "n{me} saw n{peer} up at {}; no frame of n{me}'s current engine has reached \
                     it since {} (bound {one_way:?}, deadline {})",
                    fmt_t(now),
                    fmt_t(reached),
                    fmt_t(reached + one_way)
                ),
            ));
        }
        None
    }

    /// Checks node `i`'s view of every peer against the deadlines.
    pub fn sweep(&mut self, nodes: &[SimNode], i: usize, now: Time, step: u64, net: &Net) {
        let Some(engine) = nodes[i].engine.as_ref() else {
            return;
        };
        let me = i + 1;
        let mut problem = None;
        for peer in engine.peers() {
            let b = usize::from(peer.id) - 1;
            if peer.up {
                if let Some(p) = self.overdue(i, b, now) {
                    problem = Some(p);
                    break;
                }
                for (p, link) in peer.links.iter().enumerate() {
                    if !link.as_ref().is_some_and(|l| l.up) {
                        continue;
                    }
                    let bound = window(&self.cfg.paths[p]);
                    let proof = self.proof[i][b][p].unwrap_or(self.started_at[i]);
                    if now > proof + bound && self.last_stall_end[i] <= proof {
                        problem = Some((
                            "(c) two-way liveness per path",
                            format!(
                                "n{me} still has its link to n{} on path {p} up; the latest frame \
                                 of n{me}'s current engine that it got on that path was sent at {} \
                                 (bound deadtime + 2 intervals = {bound:?})",
                                peer.id,
                                fmt_t(proof)
                            ),
                        ));
                        break;
                    }
                }
                if problem.is_some() {
                    break;
                }
            } else if nodes[b].live()
                && let Some((p, since)) = self.clean_path(net, i, b, now)
            {
                problem = Some((
                    "(a') one medium is enough",
                    format!(
                        "n{me} does not see n{} up although path {p} between them has been \
                             clean both ways since {} (window {:?}) and neither node crashed, \
                             restarted or stalled since",
                        peer.id,
                        fmt_t(since),
                        window(&self.cfg.paths[p])
                    ),
                ));
                break;
            }
        }
        if let Some((what, detail)) = problem {
            self.fail(now, step, what, detail);
        }
    }

    /// (d): after the heal, every live node sees every live node up.
    pub fn heal_check(&mut self, nodes: &[SimNode], now: Time, step: u64) {
        let live: Vec<NodeId> = nodes.iter().filter(|n| n.live()).map(|n| n.id).collect();
        let mut bad = Vec::new();
        for n in nodes.iter().filter(|n| n.live()) {
            let e = n.engine.as_ref().unwrap();
            if e.members() != live {
                bad.push(format!("n{} sees {:?}", n.id, e.members()));
            }
        }
        if !bad.is_empty() {
            self.fail(
                now,
                step,
                "(d) heal",
                format!(
                    "{} after the heal at {}, live nodes are {live:?} but {}",
                    fmt_t(now),
                    fmt_t(self.cfg.heal_at),
                    bad.join(", ")
                ),
            );
        }
    }
}

/// deadtime + 2 intervals of the path.
fn window(p: &PathSpec) -> Duration {
    p.deadtime() + p.interval * 2
}

fn cause_name(c: &Cause) -> &'static str {
    match c {
        Cause::Start => "start",
        Cause::Timer => "timer",
        Cause::Leave => "leave",
        Cause::Deliver { .. } => "datagram",
        Cause::Noise => "serial noise",
        Cause::Client => "client call",
    }
}
