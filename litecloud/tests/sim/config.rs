//! What one simulation run is made of: the cluster (nodes, paths and their
//! timing), the packet fault rates while faults are on, and the plan of
//! timed faults (cuts, crashes, clean stops, restarts, stalls, operators'
//! fence confirmations, false ones included) and lock client calls. A
//! random configuration is a pure function of its seed, so every failing
//! seed replays exactly.

use litecloud::Time;
use litecloud::wire::NodeId;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::time::Duration;

pub const MS: Duration = Duration::from_millis(1);

/// One private network: an all-to-all datagram network among `members`, or
/// a point-to-point serial line (exactly two members) at `serial_baud`.
#[derive(Clone, Debug)]
pub struct PathSpec {
    pub interval: Duration,
    pub maxmiss: u32,
    pub members: Vec<NodeId>,
    pub serial_baud: Option<u32>,
}

impl PathSpec {
    pub fn udp(interval: Duration, maxmiss: u32, members: Vec<NodeId>) -> PathSpec {
        PathSpec {
            interval,
            maxmiss,
            members,
            serial_baud: None,
        }
    }

    pub fn deadtime(&self) -> Duration {
        self.interval * self.maxmiss
    }

    pub fn has(&self, id: NodeId) -> bool {
        self.members.contains(&id)
    }
}

/// Per-packet fault rates, applied while faults are on (before the heal).
#[derive(Clone, Debug, Default)]
pub struct Rates {
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a datagram is delivered twice.
    pub dup: f64,
    /// Fraction of the path interval used as the largest ordinary delay
    /// (at most 0.5: "one medium is enough" only promises that much).
    pub max_delay: f64,
    /// Probability of a delay spike beyond interval/2 (up to 3 intervals).
    pub spike: f64,
    /// Probability a serial frame is damaged by line noise.
    pub corrupt: f64,
    /// Probability, per datagram sent, that an attacker also replays an old
    /// captured datagram (older than the path's deadtime plus an interval).
    pub replay: f64,
}

/// A timed fault.
#[derive(Clone, Debug)]
pub enum Action {
    /// Drops everything `from` sends to `to` on `path` (None: every path)
    /// for `len`. A two-way cut is two actions.
    Cut {
        path: Option<u8>,
        from: NodeId,
        to: NodeId,
        len: Duration,
    },
    /// The node's daemon disappears; after `restart` (if any, from the
    /// action's time) it comes back as a new engine with the next
    /// incarnation. With `release`, the node first stops its services: it
    /// releases every lock and waits (up to a deadtime) until its peers
    /// acknowledged every message, as a graceful shutdown does. With
    /// `leave` it announces a clean leave as it goes (without `release`:
    /// a daemon restart, the services keep running). With `reboot` the OS
    /// goes down with it (its services are gone) and it comes back with a
    /// new boot id; without, its services keep running while the daemon is
    /// down, and the restarted daemon restores its lock replica on the same
    /// boot.
    Crash {
        node: NodeId,
        leave: bool,
        release: bool,
        restart: Option<Duration>,
        reboot: bool,
    },
    /// The node's lock client asks for `lock` (skipped while its daemon is
    /// down or stopping).
    Request {
        node: NodeId,
        lock: u32,
        priority: u8,
    },
    /// The node's lock client stops the service of `lock` and gives it back
    /// (or withdraws its request).
    Release { node: NodeId, lock: u32 },
    /// The node processes nothing for `len`: packets for it queue, its
    /// timer fires late.
    Stall { node: NodeId, len: Duration },
    /// An operator swears `node` is powered off (`hactl fence confirm`):
    /// every live daemon is told. While its OS runs (cut off, stalled, or
    /// only its daemon down) the confirmation is false: the checker
    /// excuses the double holds it makes possible, until the heal.
    ConfirmOff { node: NodeId },
    /// An attacker replays to `to` the `nth` latest datagram (0 = the
    /// latest) that `from` sent it on `path` before `sent_before`.
    Replay {
        path: u8,
        from: NodeId,
        to: NodeId,
        sent_before: Time,
        nth: usize,
    },
}

/// One simulation run.
#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    pub nodes: usize,
    pub paths: Vec<PathSpec>,
    /// Each node starts at a time drawn in `[0, start_jitter)`.
    pub start_jitter: Duration,
    /// Packet faults are on before this time, and every planned fault ends
    /// by then.
    pub heal_at: Time,
    /// The run ends here.
    pub end_at: Time,
    pub rates: Rates,
    pub plan: Vec<(Time, Action)>,
    /// Ordinary delay (as a fraction of the interval) once healed.
    pub healed_delay: f64,
    /// Lock clients request and release locks at random until the heal.
    pub random_locks: bool,
    /// A fencer powers off nodes their peers lost (and confirms it).
    pub fencer: bool,
    /// Nodes send each other random messages until the heal (a few kB/s:
    /// more than a serial line alone carries).
    pub mail: bool,
}

impl Config {
    /// A fault-free cluster of `nodes` nodes with the given paths.
    pub fn quiet(seed: u64, nodes: usize, paths: Vec<PathSpec>, end_at: Time) -> Config {
        Config {
            seed,
            nodes,
            paths,
            start_jitter: Duration::ZERO,
            heal_at: end_at,
            end_at,
            rates: Rates::default(),
            plan: Vec::new(),
            healed_delay: 0.1,
            random_locks: true,
            fencer: true,
            mail: true,
        }
    }

    pub fn max_interval(&self) -> Duration {
        self.paths.iter().map(|p| p.interval).max().unwrap()
    }

    pub fn min_interval(&self) -> Duration {
        self.paths.iter().map(|p| p.interval).min().unwrap()
    }

    pub fn max_deadtime(&self) -> Duration {
        self.paths.iter().map(|p| p.deadtime()).max().unwrap()
    }

    /// Bound (b): a silent node is declared dead this long after its last
    /// frame was delivered: interval x (maxmiss + 1), the largest over paths.
    pub fn silence_bound(&self) -> Duration {
        self.paths
            .iter()
            .map(|p| p.interval * (p.maxmiss + 1))
            .max()
            .unwrap()
    }

    /// Bound (d): after the heal, everyone sees everyone up within this.
    pub fn heal_bound(&self) -> Duration {
        self.max_deadtime() * 2 + self.max_interval() * 4
    }

    /// Time the lock service has to settle a false fence confirmation,
    /// from the heal (or from the return of the daemon of the node falsely
    /// confirmed off, if later).
    pub fn settle_bound(&self) -> Duration {
        self.heal_bound() + self.max_interval() * 8
    }

    /// Engine parameters of node `id`.
    pub fn path_params(&self, id: NodeId) -> Vec<litecloud::node::PathParams> {
        self.paths
            .iter()
            .map(|p| litecloud::node::PathParams {
                interval: p.interval,
                maxmiss: p.maxmiss,
                peers: if p.has(id) {
                    p.members.iter().copied().filter(|&m| m != id).collect()
                } else {
                    Vec::new()
                },
                budget: 512,
            })
            .collect()
    }

    /// A random cluster of `nodes` nodes (2, 3 or 64) with random packet
    /// faults and a random fault plan, all drawn from `seed`; now and then
    /// an operator's false fence confirmation.
    pub fn random(seed: u64, nodes: usize) -> Config {
        Config::random_with(seed, nodes, 0.1)
    }

    /// [`Config::random`], with false confirmations at `mistakes` (see
    /// [`Config::add_false_confirmations`]).
    pub fn random_with(seed: u64, nodes: usize, mistakes: f64) -> Config {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_c0f1_6000_0000);
        let ids: Vec<NodeId> = (1..=nodes as NodeId).collect();
        let big = nodes > 8;
        let i0 = MS * [50, 100, 200][rng.random_range(0..3usize)];
        let mut paths = vec![PathSpec::udp(i0, rng.random_range(3..=6), ids.clone())];
        let i1 = if rng.random_bool(0.5) { i0 } else { i0 * 2 };
        paths.push(PathSpec::udp(i1, rng.random_range(3..=5), ids.clone()));
        if !big && rng.random_bool(0.5) {
            // A null-modem cable between nodes 1 and 2 only.
            paths.push(PathSpec {
                interval: MS * 200,
                maxmiss: rng.random_range(3..=5),
                members: vec![1, 2],
                serial_baud: Some([9600, 19200, 38400][rng.random_range(0..3usize)]),
            });
        }
        if big {
            paths = vec![
                PathSpec::udp(MS * 100, 3, ids.clone()),
                PathSpec::udp(MS * 200, 3, ids.clone()),
            ];
        }
        let mut cfg = Config::quiet(seed, nodes, paths, Time::ZERO);
        let d = cfg.max_deadtime();
        let i = cfg.max_interval();
        cfg.start_jitter = i;
        // 64 engines cost about 3 s of debug build per simulated second:
        // keep their runs short.
        let fault_phase = if big { d * 2 } else { d * 12 };
        cfg.heal_at = fault_phase;
        cfg.end_at = fault_phase + cfg.heal_bound() + if big { i } else { d * 2 };
        let pick = |rng: &mut StdRng, xs: &[f64]| xs[rng.random_range(0..xs.len())];
        cfg.rates = Rates {
            loss: pick(&mut rng, &[0.0, 0.01, 0.05, 0.2, 0.5]),
            dup: pick(&mut rng, &[0.0, 0.05, 0.2]),
            max_delay: pick(&mut rng, &[0.0, 0.1, 0.25, 0.5]),
            spike: pick(&mut rng, &[0.0, 0.0, 0.02, 0.1]),
            corrupt: pick(&mut rng, &[0.0, 0.02, 0.1]),
            replay: pick(&mut rng, &[0.0, 0.02, 0.1]),
        };
        cfg.healed_delay = pick(&mut rng, &[0.0, 0.1, 0.5]);
        let actions = if big {
            rng.random_range(2..=6)
        } else {
            rng.random_range(0..=8)
        };
        let span = |rng: &mut StdRng, lo: Duration, hi: Duration| {
            let lo = lo.as_micros() as u64;
            let hi = (hi.as_micros() as u64).max(lo + 1);
            Duration::from_micros(rng.random_range(lo..hi))
        };
        let short_or_long = |rng: &mut StdRng| {
            if rng.random_bool(0.5) {
                span(rng, i / 2, d)
            } else {
                span(rng, d, d * 3)
            }
        };
        for _ in 0..actions {
            let at = span(&mut rng, i, fault_phase - i);
            let node = ids[rng.random_range(0..nodes)];
            let left = fault_phase - at - MS;
            let roll = rng.random_range(0..100u32);
            if roll < 50 {
                let len = short_or_long(&mut rng).min(left);
                let path = rng
                    .random_bool(0.7)
                    .then(|| rng.random_range(0..cfg.paths.len()) as u8);
                let isolate = rng.random_bool(0.2);
                let two_way = rng.random_bool(0.5);
                let others: Vec<NodeId> = if isolate {
                    ids.iter().copied().filter(|&o| o != node).collect()
                } else {
                    let mut o = ids[rng.random_range(0..nodes)];
                    while o == node {
                        o = ids[rng.random_range(0..nodes)];
                    }
                    vec![o]
                };
                for o in others {
                    cfg.plan.push((
                        at,
                        Action::Cut {
                            path,
                            from: node,
                            to: o,
                            len,
                        },
                    ));
                    if two_way {
                        cfg.plan.push((
                            at,
                            Action::Cut {
                                path,
                                from: o,
                                to: node,
                                len,
                            },
                        ));
                    }
                }
            } else if roll < 75 {
                let restart = rng
                    .random_bool(0.85)
                    .then(|| short_or_long(&mut rng).min(left));
                // A power loss or a daemon crash; a daemon restart that
                // announces its leave (the services keep running); a clean
                // stop (services stopped, locks released, then the leave).
                let leave = rng.random_bool(0.35);
                let release = leave && rng.random_bool(0.6);
                cfg.plan.push((
                    at,
                    Action::Crash {
                        node,
                        leave,
                        release,
                        restart,
                        reboot: rng.random_bool(0.3),
                    },
                ));
            } else {
                let len = short_or_long(&mut rng).min(left);
                cfg.plan.push((at, Action::Stall { node, len }));
            }
        }
        cfg.plan.sort_by_key(|(t, _)| *t);
        cfg.add_false_confirmations(mistakes);
        cfg
    }

    /// Operators' mistakes: with probability `rate` for each window in
    /// which a node runs on unseen (a cut of every path from it, a stall,
    /// a daemon crash on the same boot), that node is confirmed off during
    /// it. Drawn from a stream of their own, so the rest of each seed's
    /// plan stays what it was.
    fn add_false_confirmations(&mut self, rate: f64) {
        let mut rng = StdRng::seed_from_u64(self.seed ^ 0x0fa1_5ec0_4f14_0000);
        let windows: Vec<(NodeId, Time, Duration)> = self
            .plan
            .iter()
            .filter_map(|(at, a)| match *a {
                Action::Cut {
                    path: None,
                    from,
                    len,
                    ..
                } => Some((from, *at, len)),
                Action::Stall { node, len } => Some((node, *at, len)),
                Action::Crash {
                    node,
                    release: false,
                    reboot: false,
                    restart: Some(len),
                    ..
                } => Some((node, *at, len)),
                _ => None,
            })
            .collect();
        for (node, at, len) in windows {
            if rng.random_bool(rate) {
                let when = at + len.mul_f64(rng.random_range(0.2..0.9));
                self.plan.push((when, Action::ConfirmOff { node }));
            }
        }
        self.plan.sort_by_key(|(t, _)| *t);
    }
}
