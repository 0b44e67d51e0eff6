//! The simulated world: a virtual clock, an event queue (a heap of
//! (time, sequence, event)) and N nodes, each driven exactly like the real
//! daemon drives its engine: after every `handle_*` call it drains `poll()`
//! and re-arms its single timer at `poll_timeout()`. Crashes drop the
//! engine (a restart builds a new one with the next incarnation); stalls
//! hold every event for the node until it resumes. Each node also has the
//! services its lock client runs (one per held lock): they keep running
//! while only the daemon is down, and are gone when the OS is (a power
//! loss, a reboot, a fence).

use super::check::{Cause, Checker, Snap};
use super::config::{Action, Config, MS};
use super::locks::{self, FalseConfirm, LOCKS};
use super::mail::Mail;
use super::net::{Fate, Net, Packet};
use super::views::Views;
use litecloud::Time;
use litecloud::lock::{self, LockId, LockTable};
use litecloud::node::{Event, Node, NodeCause, Output, Params};
use litecloud::serial::{self, Deframer};
use litecloud::view::{self, Agreement, NodeSet};
use litecloud::wire::{ClusterKey, NodeId};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::Duration;

pub const NETID: u16 = 42;
/// How often some node sends some peer a message, until the heal.
const MAIL_EVERY: Duration = Duration::from_millis(37);
/// How often some node requests or releases a lock, until the heal.
const LOCK_EVERY: Duration = Duration::from_millis(53);
/// How often lost nodes are fenced.
const FENCE_EVERY: Duration = Duration::from_millis(700);
pub const CONFIG_HASH: u32 = 0xc0ff_ee00;

pub fn cluster_key() -> ClusterKey {
    ClusterKey::new(b"simulated cluster key, 32 bytes!").unwrap()
}

pub enum Ev {
    Start(usize),
    Timer {
        node: usize,
        instance: u32,
        generation: u64,
    },
    Deliver(Packet),
    Act(Action),
    /// The node's daemon starts again (after a reboot if its OS is down).
    Restart(usize),
    /// A node stopping cleanly leaves once its peers acknowledged every
    /// message, or at the deadline (after its stall, if stalled), then
    /// restarts at `restart_at` (or at once, if that passed).
    Stop {
        node: usize,
        instance: u32,
        deadline: Time,
        leave: bool,
        reboot: bool,
        restart_at: Option<Time>,
    },
    StallEnd(usize),
    /// A random node sends a random peer a message.
    Mail,
    /// After the heal: one agreed view of the live nodes.
    ViewCheck,
    /// A random live node requests or releases a random lock.
    LockOp,
    /// Live nodes' lost peers are powered off and the fence confirmed.
    FenceSweep,
    /// Node `j` is off: every live node learns it from its fence device.
    Fenced(usize),
    CutEnd(Vec<(u8, usize, usize)>),
    Heal,
    HealCheck,
    /// At the end, if everything settled: no wanted lock is lost.
    LockCheck,
}

struct Queued {
    at: Time,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    /// Reversed: the heap pops the earliest (time, sequence) first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// One node as the simulator sees it: its engine (None while crashed or
/// before its first start) and its driver state.
pub struct SimNode {
    pub id: NodeId,
    pub engine: Option<Node>,
    /// Number of engines built so far (1 after the first start).
    pub instance: u32,
    pub incarnation: u32,
    pub boot: u32,
    pub started_at: Time,
    timer_at: Option<Time>,
    timer_gen: u64,
    timer_queued: bool,
    pub stalled_until: Option<Time>,
    deferred: Vec<Ev>,
    deframers: Vec<Deframer>,
    /// The node's view agreement (None while crashed).
    pub agreement: Option<Agreement>,
    /// The epoch it promised, kept across restarts like a file on disk.
    pub disk_epoch: u64,
    /// Its side of the lock service (None while crashed).
    pub locks: Option<LockTable>,
    /// Its lock replica, kept across restarts like a file on disk.
    pub disk_locks: Vec<u8>,
    /// Whether its OS runs (its services may, with or without the daemon).
    pub os_up: bool,
    /// The services its lock client runs: one per lock it was granted,
    /// until it lost or released it, or the OS went down.
    pub running: BTreeSet<LockId>,
    /// When it last began to run the service of each lock (a daemon
    /// restart that holds it again does not begin anew).
    pub run_since: BTreeMap<LockId, Time>,
    /// Stopping cleanly: its lock client takes nothing more.
    pub stopping: bool,
    /// Peers this daemon heard leave, or was told were fenced, since it
    /// last installed a view with them (for the stats only).
    heard_left: NodeSet,
    told_fenced: NodeSet,
}

impl SimNode {
    /// Whether this daemon was told that node `id` is off (since it
    /// started, and since `id` was last in its view).
    pub fn told_fenced(&self, id: NodeId) -> bool {
        self.told_fenced.contains(id)
    }

    pub fn live(&self) -> bool {
        self.engine.is_some() && self.stalled_until.is_none()
    }
}

pub struct World {
    pub cfg: Config,
    pub now: Time,
    pub step: u64,
    seq: u64,
    queue: BinaryHeap<Queued>,
    pub nodes: Vec<SimNode>,
    pub net: Net,
    rng: StdRng,
    key: ClusterKey,
    pub check: Checker,
    pub mail: Mail,
    pub views: Views,
    /// When the fencer last confirmed a node off.
    last_fenced: Option<Time>,
}

/// The engine's stall tolerance: max(shortest interval, 50 ms).
pub fn stall_threshold(cfg: &Config) -> Duration {
    cfg.min_interval().max(Duration::from_millis(50))
}

impl World {
    pub fn new(cfg: Config, test: &str) -> World {
        let nodes = (0..cfg.nodes)
            .map(|i| SimNode {
                id: (i + 1) as NodeId,
                engine: None,
                instance: 0,
                incarnation: 1,
                boot: 0x1000 * (i as u32 + 1),
                started_at: Time::ZERO,
                timer_at: None,
                timer_gen: 0,
                timer_queued: false,
                stalled_until: None,
                deferred: Vec::new(),
                deframers: cfg.paths.iter().map(|_| Deframer::default()).collect(),
                agreement: None,
                disk_epoch: 0,
                locks: None,
                disk_locks: Vec::new(),
                os_up: false,
                running: BTreeSet::new(),
                run_since: BTreeMap::new(),
                stopping: false,
                heard_left: NodeSet::default(),
                told_fenced: NodeSet::default(),
            })
            .collect();
        World {
            net: Net::new(&cfg),
            rng: StdRng::seed_from_u64(cfg.seed),
            check: Checker::new(&cfg, test),
            cfg,
            now: Time::ZERO,
            step: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            key: cluster_key(),
            mail: Mail::default(),
            views: Views::default(),
            last_fenced: None,
        }
    }

    fn push(&mut self, at: Time, ev: Ev) {
        self.seq += 1;
        self.queue.push(Queued {
            at,
            seq: self.seq,
            ev,
        });
    }

    /// Runs to the end (or the first violation) and returns the checker.
    pub fn run(mut self) -> Checker {
        for i in 0..self.cfg.nodes {
            let jitter = self.cfg.start_jitter.as_micros() as u64;
            let at = if jitter == 0 {
                Time::ZERO
            } else {
                Duration::from_micros(self.rng.random_range(0..jitter))
            };
            self.push(at, Ev::Start(i));
        }
        for (at, action) in self.cfg.plan.clone() {
            self.push(at, Ev::Act(action));
        }
        let heal_at = self.cfg.heal_at;
        if self.cfg.mail {
            self.push(MAIL_EVERY, Ev::Mail);
        }
        if self.cfg.random_locks {
            self.push(LOCK_EVERY, Ev::LockOp);
        }
        if self.cfg.fencer {
            self.push(FENCE_EVERY, Ev::FenceSweep);
        }
        self.push(heal_at, Ev::Heal);
        if heal_at + self.cfg.heal_bound() <= self.cfg.end_at {
            self.push(heal_at + self.cfg.heal_bound(), Ev::HealCheck);
        }
        // Views are agreed a few round trips after membership converges.
        let view_check = heal_at + self.cfg.heal_bound() + self.cfg.max_interval() * 4;
        if view_check <= self.cfg.end_at {
            self.push(view_check, Ev::ViewCheck);
        }
        if self.cfg.fencer && self.cfg.random_locks {
            self.push(self.cfg.end_at, Ev::LockCheck);
        }
        while let Some(q) = self.queue.pop() {
            if q.at > self.cfg.end_at {
                break;
            }
            self.now = q.at;
            self.dispatch(q.ev);
            if self.check.failed() {
                return self.check;
            }
        }
        self.now = self.cfg.end_at;
        for i in 0..self.nodes.len() {
            if self.nodes[i].live() {
                self.step += 1;
                self.check
                    .sweep(&self.nodes, i, self.now, self.step, &self.net);
            }
        }
        self.check
    }

    fn dispatch(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::Start(i) | Ev::Restart(i) => self.start(i),
            ev @ Ev::Stop { .. } => self.stop(ev),
            Ev::Timer {
                node,
                instance,
                generation,
            } => {
                let n = &mut self.nodes[node];
                if n.engine.is_none() || n.instance != instance || n.timer_gen != generation {
                    return;
                }
                if n.stalled_until.is_some() {
                    n.deferred.push(Ev::Timer {
                        node,
                        instance,
                        generation,
                    });
                    return;
                }
                n.timer_queued = false;
                self.drive(node, Cause::Timer, |e, now| e.handle_timeout(now));
            }
            Ev::Deliver(p) => self.deliver(p),
            Ev::Act(action) => self.act(action),
            Ev::StallEnd(i) => self.resume(i),
            Ev::CutEnd(keys) => {
                for (p, a, b) in keys {
                    self.net.cut(p, a, b, -1);
                    self.check.fault(p, a, b, now);
                    self.check
                        .note(now, format!("cut {p}: {}->{} healed", a + 1, b + 1));
                }
            }
            Ev::Heal => {
                self.net.faulty = false;
                assert!(!self.net.any_cut(), "plan left a cut past the heal");
                self.check.note(now, "heal: faults off".into());
            }
            Ev::HealCheck => {
                self.check.heal_check(&self.nodes, now, self.step);
                if let Some(v) = self.mail.heal_check(&self.nodes) {
                    self.check
                        .fail(now, self.step, "(h) messages after the heal", v);
                }
            }
            Ev::LockCheck => {
                // The last confirmation needs a few round trips to become
                // a grant.
                let settling = self.cfg.max_interval() * 8;
                if self.last_fenced.is_some_and(|t| now < t + settling) {
                    return;
                }
                match locks::never_lost(&self.nodes) {
                    Ok(checked) => self.check.stats.never_lost_checks += u64::from(checked),
                    Err(v) => self.check.fail(now, self.step, "(k) never lost", v),
                }
            }
            Ev::Mail => self.mail(),
            Ev::LockOp => self.lock_op(),
            Ev::FenceSweep => self.fence_sweep(),
            Ev::Fenced(j) => {
                self.confirm_off(j);
            }
            Ev::ViewCheck => {
                if let Some(v) = self.views.heal_check(&self.nodes) {
                    self.check
                        .fail(now, self.step, "(i) one view after the heal", v);
                }
            }
        }
    }

    /// The live daemons other than node `j` whose view leaves `j` out: the
    /// ones that take note when told it is off (a table ignores a member).
    fn out_of_view(&self, j: usize) -> Vec<usize> {
        let node = self.nodes[j].id;
        (0..self.nodes.len())
            .filter(|&i| i != j && self.nodes[i].live())
            .filter(|&i| {
                let view = self.nodes[i].agreement.as_ref().and_then(|a| a.view());
                !view.is_some_and(|v| v.members.contains(node))
            })
            .collect()
    }

    /// A node falsely confirmed off whose daemon is down while its OS runs
    /// is heard by no one, so nothing can settle what the confirmation
    /// made possible: that stays excused until its daemon is back and had
    /// the time to settle it (a daemon that never comes back leaves the
    /// operator's double hold in place).
    fn excuse_while_unheard(&mut self, now: Time) {
        let settle = self.cfg.settle_bound();
        for f in &mut self.check.false_confirms {
            let n = &self.nodes[usize::from(f.of) - 1];
            if n.os_up && n.engine.is_none() {
                f.until = f.until.max(now + settle);
            }
        }
    }

    /// Every live daemon is told that node `j` is off.
    fn confirm_off(&mut self, j: usize) {
        let node = self.nodes[j].id;
        for i in self.out_of_view(j) {
            self.nodes[i].told_fenced.insert(node);
        }
        for i in 0..self.nodes.len() {
            let n = &mut self.nodes[i];
            if n.live()
                && let Some(l) = n.locks.as_mut()
            {
                l.node_fenced(node);
                self.drive(i, Cause::Client, |_, _| {});
            }
        }
        self.last_fenced = Some(self.now);
    }

    fn start(&mut self, i: usize) {
        let now = self.now;
        let cfg = &self.cfg;
        let n = &mut self.nodes[i];
        n.heard_left = NodeSet::default();
        n.told_fenced = NodeSet::default();
        n.instance += 1;
        if n.instance > 1 {
            n.incarnation += 1;
            if !n.os_up {
                n.boot = n.boot.wrapping_add(1);
            }
        }
        assert!(n.os_up || n.running.is_empty(), "services without an OS");
        n.os_up = true;
        n.stopping = false;
        let params = Params {
            netid: NETID,
            me: n.id,
            boot: n.boot,
            incarnation: n.incarnation,
            config_hash: CONFIG_HASH,
            paths: cfg.path_params(n.id),
        };
        let seed = cfg
            .seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(u64::from(n.id) << 32 | u64::from(n.instance));
        n.engine = Some(Node::new(params, self.key.clone(), seed, now));
        n.agreement = Some(Agreement::new(n.id, n.disk_epoch));
        let all = NodeSet::of((1..=cfg.nodes).map(|k| k as u8));
        n.locks = Some(if n.disk_locks.is_empty() {
            LockTable::new(n.id, all, n.boot)
        } else {
            LockTable::restore(n.id, all, &n.disk_locks, n.boot).expect("the replica it wrote")
        });
        let kept = n.running.len() as u64;
        self.check.stats.locks_kept += kept;
        n.started_at = now;
        n.timer_queued = false;
        n.timer_at = None;
        for d in &mut n.deframers {
            d.reset();
        }
        let (instance, incarnation, boot) = (n.instance, n.incarnation, n.boot);
        self.mail.started(i);
        self.check.started(i, now, instance, incarnation, boot);
        self.drive(i, Cause::Start, |_, _| {});
    }

    /// One call into node `i`'s engine, then what a driver does after it.
    fn drive(&mut self, i: usize, cause: Cause, f: impl FnOnce(&mut Node, Time)) {
        let now = self.now;
        self.step += 1;
        let engine = self.nodes[i].engine.as_mut().expect("driving a live node");
        f(engine, now);
        let mut sends = Vec::new();
        let mut events = Vec::new();
        let mut installs = Vec::new();
        let mut notes = Vec::new();
        loop {
            let n = &mut self.nodes[i];
            let engine = n.engine.as_mut().expect("driving a live node");
            let mut fresh = Vec::new();
            while let Some(out) = engine.poll() {
                match out {
                    Output::Send(t) => sends.push(t),
                    Output::Event(e) => fresh.push(e),
                }
            }
            let agreement = n.agreement.as_mut().expect("a live node agrees");
            let locks = n.locks.as_mut().expect("a live node locks");
            for e in &fresh {
                match e {
                    Event::NodeDown {
                        peer,
                        cause: NodeCause::Left,
                    } => {
                        self.check.stats.leaves_heard += 1;
                        n.heard_left.insert(*peer);
                        locks.node_left(*peer);
                    }
                    Event::Membership { members, .. } => {
                        agreement.live_changed(NodeSet::of(members.iter().copied()))
                    }
                    Event::IncarnationAccepted { peer, .. } => agreement.peer_reset(*peer),
                    Event::Message { from, data } if data.first() == Some(&view::PROTOCOL) => {
                        agreement
                            .handle_message(*from, data)
                            .expect("well-formed view message");
                    }
                    Event::Message { from, data } if data.first() == Some(&lock::PROTOCOL) => {
                        locks
                            .handle_message(*from, data)
                            .expect("well-formed lock message");
                    }
                    _ => {}
                }
            }
            let mut messages = Vec::new();
            while let Some(action) = agreement.poll() {
                match action {
                    view::Action::Send { to, data } => messages.push((to, data)),
                    view::Action::Persist { epoch } => n.disk_epoch = epoch,
                    view::Action::Installed(v) => {
                        notes.push(format!("n{} installs {:?} {:?}", n.id, v.id, v.members));
                        installs.push(v);
                        locks.view_installed(v);
                        let others =
                            |s: NodeSet| NodeSet::of(s.iter().filter(|&p| !v.members.contains(p)));
                        n.heard_left = others(n.heard_left);
                        n.told_fenced = others(n.told_fenced);
                    }
                }
            }
            while let Some(action) = locks.poll() {
                match action {
                    lock::Action::Send { to, data } => messages.push((to, data)),
                    lock::Action::Granted(l) => {
                        // Restored after a daemon restart: already running.
                        if n.running.insert(l) {
                            n.run_since.insert(l, now);
                            self.check.stats.lock_grants += 1;
                            let alone = agreement
                                .view()
                                .is_some_and(|v| v.members == NodeSet::of([n.id]));
                            let peer = (1..=self.cfg.nodes as NodeId).find(|&p| p != n.id);
                            if self.cfg.nodes == 2
                                && alone
                                && peer.is_some_and(|p| {
                                    n.heard_left.contains(p) && !n.told_fenced.contains(p)
                                })
                            {
                                self.check.stats.grants_after_leave += 1;
                            }
                            self.check.lock_log.push((now, n.id, l, true));
                            notes.push(format!("n{} granted lock {l}", n.id));
                        } else {
                            notes.push(format!("n{} holds lock {l} again", n.id));
                        }
                    }
                    lock::Action::Lost(l) => {
                        n.running.remove(&l);
                        self.check.lock_log.push((now, n.id, l, false));
                        notes.push(format!("n{} lost lock {l}", n.id));
                    }
                    lock::Action::Persist(data) => n.disk_locks = data,
                    lock::Action::FalseFence(of) => {
                        self.check.false_fences.push((now, n.id, of));
                        notes.push(format!(
                            "n{}: EMERGENCY the fence confirmation of n{of} was false",
                            n.id
                        ));
                    }
                }
            }
            events.extend(fresh);
            if messages.is_empty() {
                break;
            }
            for (to, data) in messages {
                // Not connected: the view is proposed again when it is.
                let _ = engine.send_message(now, to, data);
            }
        }
        let engine = self.nodes[i].engine.as_mut().expect("driving a live node");
        let next = engine.poll_timeout();
        if matches!(cause, Cause::Timer) {
            self.check.armed_after_timer(i, next, now, self.step);
        }
        self.arm(i, next);
        self.check
            .step(&self.nodes, i, now, self.step, &cause, &events, &self.net);
        if let Some(v) = self.mail.observe(i, &self.nodes, &events) {
            self.check.fail(now, self.step, "(h) messages", v);
        }
        for line in notes {
            self.check.note(now, line);
        }
        self.excuse_while_unheard(now);
        if let Some(v) = locks::check(&self.nodes, now, &self.check.false_confirms) {
            self.check.fail(now, self.step, "(j) never twice", v);
        }
        if let Some(v) = locks::runs_what_it_holds(&self.nodes[i]) {
            self.check
                .fail(now, self.step, "(j) services follow the locks", v);
        }
        let id = self.nodes[i].id;
        for view in installs {
            if let Some(v) = self.views.installed(i, id, view) {
                self.check.fail(now, self.step, "(i) agreed views", v);
            }
        }
        for t in sends {
            let dests: Vec<usize> = if t.dest == 0 {
                let me = self.nodes[i].id;
                self.cfg.paths[usize::from(t.path)]
                    .members
                    .iter()
                    .filter(|&&m| m != me)
                    .map(|&m| usize::from(m) - 1)
                    .collect()
            } else {
                vec![usize::from(t.dest) - 1]
            };
            for to in dests {
                if !self
                    .check
                    .sendable(&self.cfg, i, to, t.path, now, self.step)
                {
                    return;
                }
                let fates = self
                    .net
                    .send(&mut self.rng, now, i, to, t.path, t.bytes.clone());
                for fate in fates {
                    match fate {
                        Fate::Deliver(at, p) => self.push(at, Ev::Deliver(p)),
                        Fate::Fault { path, from, to } => self.check.fault(path, from, to, now),
                    }
                }
            }
        }
    }

    /// A random live node sends a random peer a message of random size;
    /// repeats until the heal.
    fn mail(&mut self) {
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].live())
            .collect();
        if live.len() >= 2 {
            let i = live[self.rng.random_range(0..live.len())];
            let mut to = self.rng.random_range(0..self.nodes.len() - 1);
            if to >= i {
                to += 1;
            }
            let pad = self.rng.random_range(0..300);
            let data = self.mail.compose(i, self.nodes[i].instance, to, pad);
            let peer = self.nodes[to].id;
            let mut taken = false;
            self.drive(i, Cause::Client, |e, now| {
                taken = e.send_message(now, peer, data).is_ok()
            });
            if taken {
                self.mail.queued(i, to);
            }
        }
        let next = self.now + MAIL_EVERY;
        if next < self.cfg.heal_at {
            self.push(next, Ev::Mail);
        }
    }

    /// A random live node takes or gives back a random lock; until the heal.
    fn lock_op(&mut self) {
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].live() && !self.nodes[i].stopping)
            .collect();
        if !live.is_empty() {
            let i = live[self.rng.random_range(0..live.len())];
            let lock = LOCKS[self.rng.random_range(0..LOCKS.len())];
            let priority = self.rng.random_range(0..4u8);
            let release = self.rng.random_bool(0.5);
            self.client(i, lock, (!release).then_some(priority));
        }
        let next = self.now + LOCK_EVERY;
        if next < self.cfg.heal_at {
            self.push(next, Ev::LockOp);
        }
    }

    /// Node `i`'s lock client asks for `lock` (with a priority) or stops
    /// its service and gives it back.
    fn client(&mut self, i: usize, lock: LockId, request: Option<u8>) {
        let now = self.now;
        let n = &mut self.nodes[i];
        let Some(l) = n.locks.as_mut() else { return };
        let id = n.id;
        match request {
            Some(priority) => {
                l.request(lock, priority);
                self.check
                    .note(now, format!("n{id} requests lock {lock} ({priority})"));
            }
            None => {
                let held = n.running.remove(&lock);
                if held {
                    self.check.lock_log.push((now, id, lock, false));
                }
                l.release(lock);
                self.check
                    .note(now, format!("n{id} releases lock {lock} (held: {held})"));
            }
        }
        self.drive(i, Cause::Client, |_, _| {});
    }

    /// The OS of node `i` goes down (a fence device, a power loss): its
    /// services with it, and its next start is a new boot.
    fn power_off(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.os_up = false;
        n.running.clear();
    }

    /// A node stopping cleanly (its locks released): `Ev::Stop`.
    fn stop(&mut self, ev: Ev) {
        let Ev::Stop {
            node: i,
            instance,
            deadline,
            leave,
            reboot,
            restart_at,
        } = ev
        else {
            unreachable!("a stop")
        };
        let now = self.now;
        let n = &self.nodes[i];
        if n.instance != instance || n.engine.is_none() {
            return; // taken down meanwhile
        }
        let engine = n.engine.as_ref().unwrap();
        let drained = engine.peers().iter().all(|p| engine.unacked(p.id) == 0);
        // A stalled node goes once it resumes (every stall ends by the
        // heal).
        if !n.live() || (!drained && now < deadline) {
            let next = now + stall_threshold(&self.cfg) / 5;
            self.push(next, ev);
            return;
        }
        // Granted while stopping: stopped too, without waiting.
        let held: Vec<LockId> = self.nodes[i].running.iter().copied().collect();
        for lock in held {
            self.client(i, lock, None);
        }
        self.check
            .note(now, format!("n{} stops (drained: {drained})", i + 1));
        self.down(i, leave, reboot);
        if let Some(at) = restart_at {
            self.push(at.max(now), Ev::Restart(i));
        }
    }

    /// The daemon of node `i` goes (announcing its leave if `leave`), and
    /// its OS with it if `reboot`.
    fn down(&mut self, i: usize, leave: bool, reboot: bool) {
        if leave {
            self.drive(i, Cause::Leave, |e, now| e.leave(now));
        }
        let n = &mut self.nodes[i];
        n.engine = None;
        n.agreement = None;
        n.locks = None;
        n.deferred.clear();
        n.timer_queued = false;
        n.stopping = false;
        if reboot {
            self.power_off(i);
        }
    }

    /// Each node some live node sees down is powered off (if it is not
    /// already) and restarted later; then every live node is told.
    fn fence_sweep(&mut self) {
        let lost: Vec<usize> = (0..self.nodes.len())
            .filter(|&j| {
                let id = self.nodes[j].id;
                self.nodes.iter().any(|n| {
                    n.live()
                        && n.engine
                            .as_ref()
                            .is_some_and(|e| e.peer(id).is_some_and(|p| !p.up))
                })
            })
            .collect();
        // Powered-off nodes restart before the heal, like the fault plan's.
        let room = self
            .cfg
            .heal_at
            .saturating_sub(self.now + Duration::from_millis(100));
        for j in lost {
            // A stalled node is left to its stall (its resume is queued).
            if self.nodes[j].live()
                && room > Duration::from_millis(500)
                && self.rng.random_bool(0.3)
            {
                self.check.stats.fences += 1;
                let ms = self
                    .rng
                    .random_range(500..3000)
                    .min(room.as_millis() as u64);
                let restart = Some(Duration::from_millis(ms));
                let node = self.nodes[j].id;
                self.act(Action::Crash {
                    node,
                    leave: false,
                    release: false,
                    restart,
                    reboot: true,
                });
            } else if self.nodes[j].engine.is_none()
                && self.nodes[j].os_up
                && self.rng.random_bool(0.3)
            {
                // Its daemon is down but its services may run: power off.
                self.check.stats.fences += 1;
                self.check.note(
                    self.now,
                    format!("fencer powers off n{} (daemon down)", j + 1),
                );
                self.power_off(j);
            }
            if self.nodes[j].engine.is_none() && !self.nodes[j].os_up {
                self.push(self.now, Ev::Fenced(j));
            }
        }
        // After the heal too: nodes lost then are powered off and
        // confirmed (no live node is crashed after the heal).
        let next = self.now + FENCE_EVERY;
        if next <= self.cfg.end_at {
            self.push(next, Ev::FenceSweep);
        }
    }

    fn arm(&mut self, i: usize, at: Time) {
        let now = self.now;
        let n = &mut self.nodes[i];
        if n.timer_queued && n.timer_at == Some(at) {
            return;
        }
        n.timer_gen += 1;
        n.timer_at = Some(at);
        n.timer_queued = at != Time::MAX;
        if n.timer_queued {
            let ev = Ev::Timer {
                node: i,
                instance: n.instance,
                generation: n.timer_gen,
            };
            self.push(at.max(now), ev);
        }
    }

    fn deliver(&mut self, p: Packet) {
        let n = &mut self.nodes[p.to];
        if n.engine.is_none() {
            return; // lost with the crashed node
        }
        if n.stalled_until.is_some() {
            n.deferred.push(Ev::Deliver(p));
            return;
        }
        let path = p.path;
        if self.cfg.paths[usize::from(path)].serial_baud.is_none() {
            let before = Snap::of(n.engine.as_ref().unwrap(), path);
            let bytes = p.bytes.clone();
            self.drive(p.to, Cause::Deliver { packet: p, before }, |e, now| {
                e.handle_datagram(now, path, &bytes)
            });
            return;
        }
        // Serial: through the line encoding, noise and the receiver's
        // deframer, in a few arbitrary chunks.
        let mut line = serial::encode(&p.bytes);
        if let Some((i, x)) = p.noise {
            let x = if line[i] ^ x == 0 { x ^ 1 } else { x };
            line[i] ^= x;
        }
        let mut results = Vec::new();
        let mut rest = &line[..];
        while !rest.is_empty() {
            let cut = self.rng.random_range(1..=rest.len());
            results.extend(n.deframers[usize::from(path)].push(&rest[..cut]));
            rest = &rest[cut..];
        }
        for r in results {
            match r {
                Ok(frame) if frame == p.bytes => {
                    let before = Snap::of(self.nodes[p.to].engine.as_ref().unwrap(), path);
                    let packet = p.clone();
                    self.drive(p.to, Cause::Deliver { packet, before }, |e, now| {
                        e.handle_datagram(now, path, &frame)
                    });
                }
                Ok(frame) => self.drive(p.to, Cause::Noise, |e, now| {
                    e.handle_datagram(now, path, &frame)
                }),
                Err(reason) => self.drive(p.to, Cause::Noise, |e, _| e.count_reject(path, reason)),
            }
        }
    }

    fn act(&mut self, action: Action) {
        let now = self.now;
        match action {
            Action::Cut {
                path,
                from,
                to,
                len,
            } => {
                let (a, b) = (usize::from(from) - 1, usize::from(to) - 1);
                let keys: Vec<(u8, usize, usize)> = (0..self.cfg.paths.len())
                    .filter(|&p| path.is_none_or(|q| usize::from(q) == p))
                    .filter(|&p| self.cfg.paths[p].has(from) && self.cfg.paths[p].has(to))
                    .map(|p| (p as u8, a, b))
                    .collect();
                for &(p, a, b) in &keys {
                    self.net.cut(p, a, b, 1);
                    self.check.fault(p, a, b, now);
                }
                let which = path.map_or("all paths".to_string(), |p| format!("path {p}"));
                self.check
                    .note(now, format!("cut {which}: {from}->{to} for {len:?}"));
                self.push(now + len, Ev::CutEnd(keys));
            }
            Action::Crash {
                node,
                leave,
                release,
                restart,
                reboot,
            } => {
                let i = usize::from(node) - 1;
                if !self.nodes[i].live() || self.nodes[i].stopping {
                    self.check
                        .note(now, format!("crash of {node} skipped (down or stalled)"));
                    return;
                }
                self.check.crashed(i, now, leave, release, reboot, restart);
                if !release {
                    self.down(i, leave, reboot);
                    if let Some(after) = restart {
                        self.push(now + after, Ev::Restart(i));
                    }
                    return;
                }
                // A clean stop: services stopped, locks released, then it
                // waits for its peers' acks (not past its restart, nor the
                // heal) before it goes.
                self.nodes[i].stopping = true;
                for lock in LOCKS {
                    self.client(i, lock, None);
                }
                let wait = restart
                    .map_or(self.cfg.max_deadtime(), |r| r / 2)
                    .min(self.cfg.max_deadtime());
                let deadline = (now + wait).min(self.cfg.heal_at.saturating_sub(MS));
                let ev = Ev::Stop {
                    node: i,
                    instance: self.nodes[i].instance,
                    deadline,
                    leave,
                    reboot,
                    restart_at: restart.map(|r| now + r),
                };
                self.stop(ev);
            }
            Action::Request {
                node,
                lock,
                priority,
            } => {
                let i = usize::from(node) - 1;
                if self.nodes[i].live() && !self.nodes[i].stopping {
                    self.client(i, lock, Some(priority));
                }
            }
            Action::Release { node, lock } => {
                let i = usize::from(node) - 1;
                if self.nodes[i].live() && !self.nodes[i].stopping {
                    self.client(i, lock, None);
                }
            }
            Action::Replay {
                path,
                from,
                to,
                sent_before,
                nth,
            } => {
                let (a, b) = (usize::from(from) - 1, usize::from(to) - 1);
                match self.net.recorded(path, a, b, sent_before, nth) {
                    Some(p) => {
                        self.check.note(
                            now,
                            format!(
                                "attacker replays to n{to} a datagram n{from} sent at {:?}",
                                p.sent_at
                            ),
                        );
                        self.push(now, Ev::Deliver(p));
                    }
                    None => self
                        .check
                        .note(now, "attacker has nothing to replay".into()),
                }
            }
            Action::ConfirmOff { node } => {
                let j = usize::from(node) - 1;
                let runs = self.nodes[j].os_up;
                let what = if runs { "falsely" } else { "rightly" };
                self.check
                    .note(now, format!("an operator {what} confirms n{node} off"));
                // Recorded first: the next step may take over its locks.
                if runs && !self.out_of_view(j).is_empty() {
                    let until = self.cfg.heal_at + self.cfg.settle_bound();
                    let f = FalseConfirm {
                        of: node,
                        at: now,
                        until,
                    };
                    self.check.false_confirms.push(f);
                }
                self.confirm_off(j);
            }
            Action::Stall { node, len } => {
                let i = usize::from(node) - 1;
                if !self.nodes[i].live() {
                    self.check
                        .note(now, format!("stall of {node} skipped (down or stalled)"));
                    return;
                }
                self.nodes[i].stalled_until = Some(now + len);
                self.check.stalled(i, now, len);
                self.push(now + len, Ev::StallEnd(i));
            }
        }
    }

    fn resume(&mut self, i: usize) {
        let now = self.now;
        let threshold = stall_threshold(&self.cfg);
        let n = &mut self.nodes[i];
        n.stalled_until = None;
        let late = n
            .timer_at
            .filter(|&t| n.timer_queued && now > t + threshold)
            .map(|t| now - t);
        let mut deferred = std::mem::take(&mut n.deferred);
        // A real runtime wakes the timer and the sockets in no set order.
        let timer_first = self.rng.random_bool(0.5);
        deferred.sort_by_key(|ev| matches!(ev, Ev::Timer { .. }) != timer_first);
        self.check.resumed(i, now, late);
        for ev in deferred {
            self.push(now, ev);
        }
    }
}
