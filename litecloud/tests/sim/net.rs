//! The network model: every path is an all-to-all datagram network among
//! its members (or a FIFO serial line), with seeded loss, bounded delay
//! (hence reordering), duplication, delay spikes, line noise, one-way cuts
//! per path and pair, and an on-path attacker that replays old datagrams.
//! It decides the fate of each datagram at send time and tells the checker
//! which (path, pair) just had a fault, for invariant (a).

use super::config::{Config, PathSpec, Rates};
use litecloud::Time;
use litecloud::serial;
use rand::RngExt;
use rand::rngs::StdRng;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// How a datagram came to be delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The copy the sender sent.
    Original,
    /// A second copy made by the network.
    Dup,
    /// An old datagram replayed by an attacker.
    Replay,
}

/// A datagram in flight. Nodes are indexes (id - 1).
#[derive(Clone, Debug)]
pub struct Packet {
    pub from: usize,
    pub to: usize,
    pub path: u8,
    pub bytes: Vec<u8>,
    pub kind: Kind,
    /// When the sender sent it (the original, for a replay).
    pub sent_at: Time,
    /// Serial line only: byte index and xor mask of line noise.
    pub noise: Option<(usize, u8)>,
}

impl Packet {
    /// The datagram's MAC tag, which identifies it.
    pub fn tag(&self) -> [u8; 12] {
        let n = self.bytes.len();
        let mut t = [0u8; 12];
        if n >= 12 {
            t.copy_from_slice(&self.bytes[n - 12..]);
        }
        t
    }
}

/// What the network did to one datagram, for the checker.
pub enum Fate {
    /// Delivered at this time.
    Deliver(Time, Packet),
    /// Lost, cut, damaged or delayed beyond interval/2 on (path, from, to):
    /// a fault for invariant (a).
    Fault { path: u8, from: usize, to: usize },
}

struct Captured {
    from: usize,
    to: usize,
    sent_at: Time,
    bytes: Vec<u8>,
}

pub struct Net {
    paths: Vec<PathSpec>,
    /// Active cuts: (path, from, to) -> number of overlapping cuts.
    cuts: HashMap<(u8, usize, usize), u32>,
    /// Serial lines: when the line from -> to is free again.
    line_free: HashMap<(u8, usize, usize), Time>,
    captured: Vec<VecDeque<Captured>>,
    /// Whether the attacker records datagrams (to replay them).
    capture: bool,
    pub faulty: bool,
    rates: Rates,
    healed_delay: f64,
}

impl Net {
    pub fn new(cfg: &Config) -> Net {
        Net {
            paths: cfg.paths.clone(),
            cuts: HashMap::new(),
            line_free: HashMap::new(),
            captured: cfg.paths.iter().map(|_| VecDeque::new()).collect(),
            capture: cfg.rates.replay > 0.0
                || cfg
                    .plan
                    .iter()
                    .any(|(_, a)| matches!(a, super::config::Action::Replay { .. })),
            faulty: true,
            rates: cfg.rates.clone(),
            healed_delay: cfg.healed_delay,
        }
    }

    /// Starts (`delta` = 1) or ends (`delta` = -1) a one-way cut.
    pub fn cut(&mut self, path: u8, from: usize, to: usize, delta: i32) {
        let n = self.cuts.entry((path, from, to)).or_default();
        *n = n.checked_add_signed(delta).expect("cut ended twice");
        if *n == 0 {
            self.cuts.remove(&(path, from, to));
        }
    }

    pub fn is_cut(&self, path: u8, from: usize, to: usize) -> bool {
        self.cuts.contains_key(&(path, from, to))
    }

    pub fn any_cut(&self) -> bool {
        !self.cuts.is_empty()
    }

    /// The `nth` latest datagram `from` sent `to` on `path` before
    /// `before`, as an attacker's replay.
    pub fn recorded(
        &self,
        path: u8,
        from: usize,
        to: usize,
        before: Time,
        nth: usize,
    ) -> Option<Packet> {
        let c = self.captured[usize::from(path)]
            .iter()
            .rev()
            .filter(|c| c.from == from && c.to == to && c.sent_at < before)
            .nth(nth)?;
        Some(Packet {
            from,
            to,
            path,
            bytes: c.bytes.clone(),
            kind: Kind::Replay,
            sent_at: c.sent_at,
            noise: None,
        })
    }

    /// The fates of a datagram `from` sent on `path` to node index `to`.
    pub fn send(
        &mut self,
        rng: &mut StdRng,
        now: Time,
        from: usize,
        to: usize,
        path: u8,
        bytes: Vec<u8>,
    ) -> Vec<Fate> {
        let spec = &self.paths[usize::from(path)];
        let interval = spec.interval;
        let serial_baud = spec.serial_baud;
        let mut fates = Vec::new();
        let faulty = self.faulty;
        let r = if faulty {
            self.rates.clone()
        } else {
            Rates {
                max_delay: self.healed_delay,
                ..Rates::default()
            }
        };
        let fault = Fate::Fault { path, from, to };
        // The attacker sees everything on the wire, even what a cut drops.
        if self.capture && serial_baud.is_none() {
            if faulty && r.replay > 0.0 && rng.random_bool(r.replay) {
                let old_enough = spec.deadtime() + interval;
                let cap = &self.captured[usize::from(path)];
                let old: Vec<&Captured> = cap
                    .iter()
                    .filter(|c| c.sent_at + old_enough <= now)
                    .collect();
                if !old.is_empty() {
                    let c = old[rng.random_range(0..old.len())];
                    let delay = Duration::from_micros(rng.random_range(0..1000));
                    fates.push(Fate::Deliver(
                        now + delay,
                        Packet {
                            from: c.from,
                            to: c.to,
                            path,
                            bytes: c.bytes.clone(),
                            kind: Kind::Replay,
                            sent_at: c.sent_at,
                            noise: None,
                        },
                    ));
                }
            }
            let cap = &mut self.captured[usize::from(path)];
            cap.push_back(Captured {
                from,
                to,
                sent_at: now,
                bytes: bytes.clone(),
            });
            if cap.len() > 512 {
                cap.pop_front();
            }
        }
        if self.is_cut(path, from, to) || (r.loss > 0.0 && rng.random_bool(r.loss)) {
            fates.push(fault);
            return fates;
        }
        let packet = Packet {
            from,
            to,
            path,
            bytes,
            kind: Kind::Original,
            sent_at: now,
            noise: None,
        };
        if let Some(baud) = serial_baud {
            // FIFO line: each frame waits for the previous one, then takes
            // its airtime; noise damages exactly this frame.
            let line = serial::encode(&packet.bytes).len();
            let free = self.line_free.entry((path, from, to)).or_insert(now);
            let at = (*free).max(now) + serial::airtime(line, baud);
            *free = at;
            let mut packet = packet;
            if r.corrupt > 0.0 && rng.random_bool(r.corrupt) {
                // Any byte but the final delimiter, never turned into a
                // delimiter: the frame is lost, its neighbours are not.
                let i = rng.random_range(0..line - 1);
                packet.noise = Some((i, rng.random_range(1..=255u8)));
                fates.push(Fate::Fault { path, from, to });
            } else if at - now > interval / 2 {
                fates.push(Fate::Fault { path, from, to });
            }
            fates.push(Fate::Deliver(at, packet));
            return fates;
        }
        let max = interval.mul_f64(r.max_delay.min(0.5));
        let delay = |rng: &mut StdRng| {
            if r.spike > 0.0 && rng.random_bool(r.spike) {
                let lo = interval.as_micros() as u64 / 2 + 1;
                Duration::from_micros(rng.random_range(lo..=lo * 6))
            } else {
                Duration::from_micros(rng.random_range(0..=max.as_micros() as u64))
            }
        };
        let d = delay(rng);
        if d > interval / 2 {
            fates.push(Fate::Fault { path, from, to });
        }
        if r.dup > 0.0 && rng.random_bool(r.dup) {
            // A late copy is harmless (the original came, or was a fault).
            let d2 = delay(rng);
            let mut copy = packet.clone();
            copy.kind = Kind::Dup;
            fates.push(Fate::Deliver(now + d2, copy));
        }
        fates.push(Fate::Deliver(now + d, packet));
        fates
    }
}
