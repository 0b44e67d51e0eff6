//! The heartbeat engine of one node, as a pure state machine: the driver
//! feeds it received datagrams and timeouts with the current time, and
//! drains frames to send and events to log. It authenticates frames, checks
//! incarnations (with a nonce round trip for a new one) and sequence
//! numbers, keeps two-way link health per peer and path, node liveness and
//! the membership view with its epoch, and notices its own stalls.

use crate::Time;
use crate::channel::{Channel, SendError};
use crate::link::{Link, LinkCause, SentLog};
use crate::wire::{Class, ClusterKey, Frame, Header, Item, NodeId, Reject};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// One private network as this node uses it.
#[derive(Clone, Debug)]
pub struct PathParams {
    pub interval: Duration,
    pub maxmiss: u32,
    /// The other nodes reachable on this path.
    pub peers: Vec<NodeId>,
    /// Bytes of messages one frame may carry here (small on a slow
    /// serial line, about a datagram on UDP).
    pub budget: usize,
}

impl PathParams {
    /// Silence after which a link on this path is down.
    pub fn deadtime(&self) -> Duration {
        self.interval * self.maxmiss
    }
}

/// Everything the engine needs to know about its node and cluster.
#[derive(Clone, Debug)]
pub struct Params {
    pub netid: u16,
    pub me: NodeId,
    pub boot: u32,
    pub incarnation: u32,
    pub config_hash: u32,
    /// Private networks, indexed by path number.
    pub paths: Vec<PathParams>,
}

/// Sequence number at which the engine asks for a new incarnation.
pub const RENEW_AT: u32 = 1 << 31;

/// Why a node went down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeCause {
    /// Every link to it went down.
    LinksDown,
    /// It announced a clean leave.
    Left,
}

impl NodeCause {
    /// Stable text for logs and status.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeCause::LinksDown => "all links down",
            NodeCause::Left => "left cleanly",
        }
    }
}

/// Something worth logging (and, later, acting on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    LinkUp {
        peer: NodeId,
        path: u8,
    },
    LinkDown {
        peer: NodeId,
        path: u8,
        cause: LinkCause,
    },
    NodeUp {
        peer: NodeId,
        incarnation: u32,
    },
    NodeDown {
        peer: NodeId,
        cause: NodeCause,
    },
    /// A nonce round trip proved a peer's new incarnation.
    IncarnationAccepted {
        peer: NodeId,
        previous: Option<u32>,
        incarnation: u32,
        /// The peer's boot id changed too: its OS restarted.
        rebooted: bool,
    },
    /// The peer's config hash differs from ours.
    ConfigMismatch {
        peer: NodeId,
        theirs: u32,
    },
    /// This node was not scheduled for `late`; silence overlapping it was
    /// forgiven and every link is re-checked.
    Stall {
        late: Duration,
    },
    /// An authenticated frame with this node's own id arrived on `path`:
    /// the line loops back, or another node runs under the same name.
    OwnIdentity {
        path: u8,
    },
    /// Sequence numbers to some peer are half used up: persist a new
    /// incarnation and call [`Node::renew_incarnation`] (years away at
    /// heartbeat rates, but a cluster may run that long).
    RenewIncarnation,
    /// A reliable message from a peer (see [`Node::send_message`]).
    Message {
        from: NodeId,
        data: Vec<u8>,
    },
    /// The set of live nodes changed.
    Membership {
        epoch: u64,
        members: Vec<NodeId>,
    },
}

/// A frame for the driver to put on a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub path: u8,
    pub dest: NodeId,
    pub class: Class,
    pub bytes: Vec<u8>,
}

/// What the engine asks of its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Send(Transmit),
    Event(Event),
}

/// Frame and byte counters of one path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub frames_sent: u64,
    pub frames_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub rejected: BTreeMap<Reject, u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Claim {
    incarnation: u32,
    boot: u32,
}

/// Another node as this node sees it.
#[derive(Clone, Debug)]
pub struct Peer {
    pub id: NodeId,
    pub up: bool,
    pub since: Time,
    pub cause: Option<NodeCause>,
    /// Proven incarnation and boot id.
    pub incarnation: Option<u32>,
    pub boot: Option<u32>,
    pub config_hash: Option<u32>,
    /// Per path: the link, or None if the peer is not on that path.
    pub links: Vec<Option<Link>>,
    accepted: Option<Claim>,
    pending: Option<(Claim, u64)>,
    left: bool,
    channel: Channel,
}

struct PathState {
    params: PathParams,
    next_send: Time,
    /// A frame with our own id arrived here (reported once).
    own_seen: bool,
    counters: Counters,
}

/// The heartbeat engine of one node.
pub struct Node {
    params: Params,
    key: ClusterKey,
    rng: StdRng,
    peers: Vec<Peer>,
    index: BTreeMap<NodeId, usize>,
    paths: Vec<PathState>,
    out: VecDeque<Output>,
    epoch: u64,
    promised: Option<Time>,
    stall_threshold: Duration,
    stalls: u64,
    last_stall: Option<Duration>,
}

impl Node {
    /// A node that has heard nobody yet. `seed` feeds the nonce generator.
    pub fn new(params: Params, key: ClusterKey, seed: u64, now: Time) -> Node {
        let mut ids: Vec<NodeId> = params
            .paths
            .iter()
            .flat_map(|p| p.peers.iter().copied())
            .filter(|&id| id != params.me)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let peers: Vec<Peer> = ids
            .iter()
            .map(|&id| Peer {
                id,
                up: false,
                since: now,
                cause: None,
                incarnation: None,
                boot: None,
                config_hash: None,
                links: params
                    .paths
                    .iter()
                    .map(|p| p.peers.contains(&id).then(|| Link::new(now)))
                    .collect(),
                accepted: None,
                pending: None,
                left: false,
                channel: Channel::new(),
            })
            .collect();
        let index = ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        let min_interval = params
            .paths
            .iter()
            .map(|p| p.interval)
            .min()
            .unwrap_or(Duration::from_secs(1));
        let paths = params
            .paths
            .iter()
            .map(|p| PathState {
                params: p.clone(),
                next_send: now,
                own_seen: false,
                counters: Counters::default(),
            })
            .collect();
        Node {
            params,
            key,
            rng: StdRng::seed_from_u64(seed),
            peers,
            index,
            paths,
            out: VecDeque::new(),
            epoch: 0,
            promised: None,
            stall_threshold: min_interval.max(Duration::from_millis(50)),
            stalls: 0,
            last_stall: None,
        }
    }

    /// Next output for the driver, if any.
    pub fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When the driver must call [`Node::handle_timeout`] next. Calling
    /// later than this (plus a tolerance) counts as a stall.
    pub fn poll_timeout(&mut self) -> Time {
        let sends = self.paths.iter().map(|p| p.next_send);
        let expiries = self.peers.iter().flat_map(|peer| {
            peer.links
                .iter()
                .zip(&self.paths)
                .filter_map(|(l, p)| l.as_ref()?.expiry(p.params.deadtime()))
                .map(|t| t + Duration::from_micros(1))
        });
        let next = sends.chain(expiries).min().unwrap_or(Time::MAX);
        self.promised = Some(next);
        next
    }

    /// Timers: sends due heartbeats and takes expired links down.
    pub fn handle_timeout(&mut self, now: Time) {
        self.check_stall(now);
        for p in 0..self.paths.len() {
            let path = &mut self.paths[p];
            if now < path.next_send {
                continue;
            }
            let interval = path.params.interval;
            // Keep the cadence unless we fell a whole interval behind.
            path.next_send = (path.next_send + interval).max(now + interval / 2);
            for dest in path.params.peers.clone() {
                let items = self.channel_items(now, p, dest);
                let class = if items.is_empty() {
                    Class::Heartbeat
                } else {
                    Class::Normal
                };
                self.send(now, p, dest, class, items);
            }
        }
        for pi in 0..self.peers.len() {
            for p in 0..self.paths.len() {
                let deadtime = self.paths[p].params.deadtime();
                let Some(link) = self.peers[pi].links[p].as_mut() else {
                    continue;
                };
                if let Some(cause) = link.check(now, deadtime) {
                    let peer = self.peers[pi].id;
                    self.emit(Event::LinkDown {
                        peer,
                        path: p as u8,
                        cause,
                    });
                }
            }
            self.refresh_peer(pi, now, NodeCause::LinksDown);
        }
    }

    /// A frame received on `path` (a whole datagram, or one unframed from
    /// the serial line).
    pub fn handle_datagram(&mut self, now: Time, path: u8, bytes: &[u8]) {
        self.check_stall(now);
        let p = usize::from(path);
        let Some(state) = self.paths.get_mut(p) else {
            return;
        };
        state.counters.bytes_received += bytes.len() as u64;
        let result = Frame::decode(bytes, &self.key, self.params.netid)
            .and_then(|frame| self.accept(now, p, frame));
        if let Err(reason) = result {
            self.count_reject(path, reason);
        }
    }

    /// Counts a frame the driver dropped before decoding (serial CRC).
    pub fn count_reject(&mut self, path: u8, reason: Reject) {
        if let Some(state) = self.paths.get_mut(usize::from(path)) {
            *state.counters.rejected.entry(reason).or_default() += 1;
        }
    }

    /// Queues a message for `peer`, delivered once and in order
    /// ([`Event::Message`] there) while both keep their incarnations. It
    /// goes out at once on every path to the peer and again with each
    /// heartbeat until acknowledged.
    pub fn send_message(
        &mut self,
        now: Time,
        peer: NodeId,
        data: Vec<u8>,
    ) -> Result<(), SendError> {
        let pi = *self.index.get(&peer).ok_or(SendError::NotConnected)?;
        let p = &mut self.peers[pi];
        if p.incarnation.is_none() || p.left {
            return Err(SendError::NotConnected);
        }
        p.channel.queue(data, self.paths.len())?;
        for path in 0..self.paths.len() {
            if self.peers[pi].links[path].is_some() {
                let items = self.channel_items(now, path, peer);
                self.send(now, path, peer, Class::Normal, items);
            }
        }
        Ok(())
    }

    /// Messages not yet acknowledged by `peer`.
    pub fn unacked(&self, peer: NodeId) -> usize {
        self.peer(peer).map_or(0, |p| p.channel.unacked())
    }

    /// Message items due to `dest` on path `p`: owed ack, then messages not
    /// sent there for an interval.
    fn channel_items(&mut self, now: Time, p: usize, dest: NodeId) -> Vec<Item> {
        let Some(&pi) = self.index.get(&dest) else {
            return Vec::new();
        };
        let path = &self.paths[p].params;
        let peer = &mut self.peers[pi];
        if peer.incarnation.is_none() || peer.left {
            return Vec::new();
        }
        let ack = peer.channel.take_ack().map(Item::MessageAck);
        let due = peer.channel.due(p, now, path.interval, path.budget);
        ack.into_iter()
            .chain(
                due.into_iter()
                    .map(|(seq, data)| Item::Message { seq, data }),
            )
            .collect()
    }

    /// Announces a clean leave on every path (before shutting down).
    pub fn leave(&mut self, now: Time) {
        for p in 0..self.paths.len() {
            for dest in self.paths[p].params.peers.clone() {
                self.send(now, p, dest, Class::Urgent, vec![Item::Leave]);
            }
        }
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn peers(&self) -> &[Peer] {
        &self.peers
    }

    pub fn peer(&self, id: NodeId) -> Option<&Peer> {
        self.peers.get(*self.index.get(&id)?)
    }

    pub fn counters(&self, path: u8) -> Option<&Counters> {
        Some(&self.paths.get(usize::from(path))?.counters)
    }

    /// Membership epoch: bumped at each change of the live set.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Live nodes, this one included, in id order.
    pub fn members(&self) -> Vec<NodeId> {
        let mut m: Vec<NodeId> = self.peers.iter().filter(|p| p.up).map(|p| p.id).collect();
        m.push(self.params.me);
        m.sort_unstable();
        m
    }

    /// Number of stalls seen and the length of the last one.
    pub fn stalls(&self) -> (u64, Option<Duration>) {
        (self.stalls, self.last_stall)
    }

    fn emit(&mut self, event: Event) {
        self.out.push_back(Output::Event(event));
    }

    fn check_stall(&mut self, now: Time) {
        let Some(promised) = self.promised else {
            return;
        };
        if now <= promised + self.stall_threshold {
            return;
        }
        let late = now - promised;
        self.promised = None;
        self.stalls += 1;
        self.last_stall = Some(late);
        for link in self
            .peers
            .iter_mut()
            .flat_map(|p| p.links.iter_mut().flatten())
        {
            link.forgive(late);
        }
        for path in &mut self.paths {
            path.next_send = now;
        }
        self.emit(Event::Stall { late });
    }

    fn send(&mut self, now: Time, p: usize, dest: NodeId, class: Class, items: Vec<Item>) {
        let Some(&pi) = self.index.get(&dest) else {
            return;
        };
        let path = &mut self.paths[p];
        let peer = &mut self.peers[pi];
        let ack_incarnation = peer.incarnation.map_or(0, |i| i as u16);
        let Some(link) = peer.links[p].as_mut() else {
            return;
        };
        // Past u32::MAX the peer would refuse every frame: stay silent on
        // this link until the daemon renews the incarnation (asked for at
        // RENEW_AT, years earlier).
        let Some(seq) = link.seq.checked_add(1) else {
            return;
        };
        link.seq = seq;
        let ack = if peer.incarnation.is_some() {
            link.window.highest()
        } else {
            0
        };
        let held = now.saturating_sub(link.ack_at).as_micros() / 100;
        let frame = Frame {
            header: Header {
                class,
                netid: self.params.netid,
                sender: self.params.me,
                dest,
                path: p as u8,
                boot: self.params.boot,
                incarnation: self.params.incarnation,
                seq,
                ack,
                ack_incarnation,
                ack_delay: held.min(u128::from(u16::MAX)) as u16,
                config_hash: self.params.config_hash,
            },
            items,
        };
        let bytes = frame.encode(&self.key);
        link.sent.record(seq, now, path.params.deadtime());
        path.counters.frames_sent += 1;
        path.counters.bytes_sent += bytes.len() as u64;
        self.out.push_back(Output::Send(Transmit {
            path: p as u8,
            dest,
            class,
            bytes,
        }));
        if seq == RENEW_AT {
            self.emit(Event::RenewIncarnation);
        }
    }

    /// Continues under a new (persisted, higher) incarnation, with fresh
    /// sequence numbers; peers accept it after a nonce round trip, as for a
    /// restart. The driver calls this when asked by
    /// [`Event::RenewIncarnation`].
    pub fn renew_incarnation(&mut self, incarnation: u32) {
        self.params.incarnation = incarnation;
        for peer in &mut self.peers {
            peer.channel = Channel::new();
            for link in peer.links.iter_mut().flatten() {
                link.seq = 0;
                link.sent = SentLog::default();
            }
        }
    }

    fn accept(&mut self, now: Time, p: usize, frame: Frame) -> Result<(), Reject> {
        let h = frame.header;
        if h.sender == self.params.me {
            if !std::mem::replace(&mut self.paths[p].own_seen, true) {
                self.emit(Event::OwnIdentity { path: p as u8 });
            }
            return Err(Reject::Own);
        }
        let pi = *self.index.get(&h.sender).ok_or(Reject::UnknownSender)?;
        if usize::from(h.path) != p || self.peers[pi].links[p].is_none() {
            return Err(Reject::WrongPath);
        }
        if h.dest != 0 && h.dest != self.params.me {
            return Err(Reject::NotForUs);
        }
        let claim = Claim {
            incarnation: h.incarnation,
            boot: h.boot,
        };
        let verified = self.check_sequence(pi, p, claim, h.seq)?;
        for item in &frame.items {
            if let Item::Challenge(nonce) = item {
                self.send(
                    now,
                    p,
                    h.sender,
                    Class::Normal,
                    vec![Item::Response(*nonce)],
                );
            }
        }
        if !verified {
            let proven = matches!(self.peers[pi].pending,
                Some((_, nonce)) if frame.items.contains(&Item::Response(nonce)));
            if !proven {
                self.challenge(now, pi, p);
                return Err(Reject::Unverified);
            }
            self.promote(pi);
        }
        let peer = &mut self.peers[pi];
        if peer.left {
            return Err(Reject::OldIncarnation);
        }
        if peer.config_hash != Some(h.config_hash) {
            peer.config_hash = Some(h.config_hash);
            if h.config_hash != self.params.config_hash {
                let theirs = h.config_hash;
                self.emit(Event::ConfigMismatch {
                    peer: h.sender,
                    theirs,
                });
            }
        }
        let path = &mut self.paths[p];
        path.counters.frames_received += 1;
        let deadtime = path.params.deadtime();
        let interval = path.params.interval;
        let link = self.peers[pi].links[p].as_mut().expect("checked above");
        if !verified {
            // The response proves this frame fresh: nothing older from the
            // newly accepted incarnation may be replayed on this path.
            link.window.close_through(h.seq);
        }
        // Only an ack of this very incarnation's frames proves the peer
        // hears us (a restarted node reuses sequence numbers).
        let acked = (h.ack != 0 && h.ack_incarnation == self.params.incarnation as u16)
            .then(|| link.sent.sent_at(h.ack))
            .flatten()
            .filter(|&sent| now.saturating_sub(sent) <= deadtime);
        let fresh = acked.map(|sent| {
            let held = Duration::from_micros(u64::from(h.ack_delay) * 100);
            now.saturating_sub(sent).saturating_sub(held)
        });
        if h.seq == link.window.highest() {
            link.ack_at = now;
        }
        if let Some(sent) = acked {
            link.acked(sent + deadtime + interval);
        }
        if link.heard(now, fresh) {
            self.emit(Event::LinkUp {
                peer: h.sender,
                path: p as u8,
            });
        }
        // Messages and their acks belong to one pair of incarnations: only
        // a sender that proved ours (it acks this incarnation) speaks for it.
        if h.ack_incarnation == self.params.incarnation as u16 {
            self.receive_messages(now, p, h.sender, pi, frame.items.iter());
        }
        if frame.items.contains(&Item::Leave) {
            let peer = &mut self.peers[pi];
            peer.left = true;
            for (q, link) in peer.links.iter_mut().enumerate() {
                if let Some(link) = link.as_mut().filter(|l| l.up) {
                    link.down(now, LinkCause::PeerLeft);
                    self.out.push_back(Output::Event(Event::LinkDown {
                        peer: h.sender,
                        path: q as u8,
                        cause: LinkCause::PeerLeft,
                    }));
                }
            }
            self.refresh_peer(pi, now, NodeCause::Left);
        } else {
            self.refresh_peer(pi, now, NodeCause::LinksDown);
        }
        Ok(())
    }

    /// Delivers the messages of an accepted frame and answers with an ack.
    fn receive_messages<'a>(
        &mut self,
        now: Time,
        p: usize,
        from: NodeId,
        pi: usize,
        items: impl Iterator<Item = &'a Item>,
    ) {
        let mut owe = false;
        for item in items {
            match item {
                Item::Message { seq, data } => {
                    owe = true;
                    for data in self.peers[pi].channel.received(*seq, data.clone()) {
                        self.emit(Event::Message { from, data });
                    }
                }
                Item::MessageAck(seq) => self.peers[pi].channel.acked(*seq),
                _ => {}
            }
        }
        if owe {
            let items = self.channel_items(now, p, from);
            self.send(now, p, from, Class::Normal, items);
        }
    }

    /// Checks incarnation and sequence number; returns whether the frame
    /// belongs to the proven incarnation (false: one still being verified).
    fn check_sequence(
        &mut self,
        pi: usize,
        p: usize,
        claim: Claim,
        seq: u32,
    ) -> Result<bool, Reject> {
        let peer = &mut self.peers[pi];
        if let Some(accepted) = peer.accepted {
            if claim.incarnation == accepted.incarnation {
                let link = peer.links[p].as_mut().expect("peer is on this path");
                link.window.accept(seq)?;
                return Ok(true);
            }
            if claim.incarnation < accepted.incarnation {
                return Err(Reject::OldIncarnation);
            }
        }
        match peer.pending {
            Some((pending, _)) if claim.incarnation < pending.incarnation => {
                return Err(Reject::OldIncarnation);
            }
            Some((pending, _)) if claim == pending => {}
            _ => {
                peer.pending = Some((claim, self.rng.next_u64()));
                for link in peer.links.iter_mut().flatten() {
                    link.pending_window = Default::default();
                    link.challenged_at = None;
                }
            }
        }
        let link = peer.links[p].as_mut().expect("peer is on this path");
        link.pending_window.accept(seq)?;
        Ok(false)
    }

    /// Sends the pending nonce to a peer on `p`, at most once an interval.
    fn challenge(&mut self, now: Time, pi: usize, p: usize) {
        let interval = self.paths[p].params.interval;
        let peer = &mut self.peers[pi];
        let Some((_, nonce)) = peer.pending else {
            return;
        };
        let link = peer.links[p].as_mut().expect("peer is on this path");
        if link.challenged_at.is_some_and(|t| now < t + interval) {
            return;
        }
        link.challenged_at = Some(now);
        let dest = peer.id;
        self.send(now, p, dest, Class::Normal, vec![Item::Challenge(nonce)]);
    }

    /// A nonce round trip proved the pending incarnation.
    fn promote(&mut self, pi: usize) {
        let peer = &mut self.peers[pi];
        let Some((claim, _)) = peer.pending.take() else {
            return;
        };
        let previous = peer.accepted.replace(claim);
        peer.incarnation = Some(claim.incarnation);
        peer.boot = Some(claim.boot);
        peer.left = false;
        peer.channel = Channel::new();
        for link in peer.links.iter_mut().flatten() {
            link.window = std::mem::take(&mut link.pending_window);
        }
        let event = Event::IncarnationAccepted {
            peer: peer.id,
            previous: previous.map(|c| c.incarnation),
            incarnation: claim.incarnation,
            rebooted: previous.is_some_and(|c| c.boot != claim.boot),
        };
        self.emit(event);
    }

    /// Brings the node's state in line with its links.
    fn refresh_peer(&mut self, pi: usize, now: Time, cause: NodeCause) {
        let peer = &mut self.peers[pi];
        let any_up = peer.links.iter().flatten().any(|l| l.up);
        if any_up == peer.up {
            return;
        }
        peer.up = any_up;
        peer.since = now;
        let event = if any_up {
            peer.cause = None;
            Event::NodeUp {
                peer: peer.id,
                incarnation: peer.incarnation.unwrap_or_default(),
            }
        } else {
            peer.cause = Some(cause);
            Event::NodeDown {
                peer: peer.id,
                cause,
            }
        };
        self.emit(event);
        self.epoch += 1;
        let members = self.members();
        self.emit(Event::Membership {
            epoch: self.epoch,
            members,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn node(me: NodeId, peer: NodeId, incarnation: u32) -> Node {
        let params = Params {
            netid: 7,
            me,
            boot: 1,
            incarnation,
            config_hash: 9,
            paths: vec![PathParams {
                interval: MS * 100,
                maxmiss: 5,
                peers: vec![peer],
                budget: 1024,
            }],
        };
        let key = ClusterKey::new(&[7u8; 32]).unwrap();
        Node::new(params, key, u64::from(me), Time::ZERO)
    }

    /// Runs both nodes with instant delivery until `until`, returning events.
    fn run(a: &mut Node, b: &mut Node, from: Time, until: Time, cut: bool) -> Vec<(NodeId, Event)> {
        let mut events = Vec::new();
        let mut now = from;
        while now < until {
            for n in [&mut *a, &mut *b] {
                if n.poll_timeout() <= now {
                    n.handle_timeout(now);
                }
            }
            while pump(a, b, now, cut, &mut events) | pump(b, a, now, cut, &mut events) {}
            now += MS;
        }
        events
    }

    fn pump(
        src: &mut Node,
        dst: &mut Node,
        now: Time,
        cut: bool,
        events: &mut Vec<(NodeId, Event)>,
    ) -> bool {
        let mut moved = false;
        while let Some(out) = src.poll() {
            moved = true;
            match out {
                Output::Send(t) if !cut => dst.handle_datagram(now, t.path, &t.bytes),
                Output::Send(_) => {}
                Output::Event(e) => events.push((src.params().me, e)),
            }
        }
        moved
    }

    #[test]
    fn two_nodes_handshake_come_up_and_detect_silence() {
        let (mut a, mut b) = (node(1, 2, 1), node(2, 1, 1));
        let ev = run(&mut a, &mut b, Time::ZERO, MS * 500, false);
        assert!(
            ev.contains(&(
                1,
                Event::NodeUp {
                    peer: 2,
                    incarnation: 1
                }
            )),
            "{ev:?}"
        );
        assert!(
            ev.contains(&(
                2,
                Event::NodeUp {
                    peer: 1,
                    incarnation: 1
                }
            )),
            "{ev:?}"
        );
        assert_eq!(a.members(), vec![1, 2]);
        let ev = run(&mut a, &mut b, MS * 500, MS * 1200, true);
        assert!(ev.contains(&(
            1,
            Event::NodeDown {
                peer: 2,
                cause: NodeCause::LinksDown
            }
        )));
        assert_eq!(a.epoch(), 2);
    }

    #[test]
    fn restarted_peer_is_accepted_after_a_nonce_round_trip() {
        let (mut a, mut b) = (node(1, 2, 1), node(2, 1, 1));
        run(&mut a, &mut b, Time::ZERO, MS * 500, false);
        let mut b2 = node(2, 1, 2);
        let ev = run(&mut a, &mut b2, MS * 500, MS * 800, false);
        assert!(
            ev.contains(&(
                1,
                Event::IncarnationAccepted {
                    peer: 2,
                    previous: Some(1),
                    incarnation: 2,
                    rebooted: false
                }
            )),
            "{ev:?}"
        );
        assert!(
            !ev.iter().any(|(_, e)| matches!(e, Event::NodeDown { .. })),
            "{ev:?}"
        );
        assert!(
            a.counters(0)
                .unwrap()
                .rejected
                .contains_key(&Reject::Unverified)
        );
    }

    #[test]
    fn clean_leave_is_told_apart_from_a_crash() {
        let (mut a, mut b) = (node(1, 2, 1), node(2, 1, 1));
        run(&mut a, &mut b, Time::ZERO, MS * 500, false);
        b.leave(MS * 500);
        let ev = run(&mut a, &mut b, MS * 500, MS * 502, false);
        assert!(
            ev.contains(&(
                1,
                Event::NodeDown {
                    peer: 2,
                    cause: NodeCause::Left
                }
            )),
            "{ev:?}"
        );
    }

    #[test]
    fn own_frames_are_reported_once_per_path() {
        let mut a = node(1, 2, 1);
        a.handle_timeout(Time::ZERO);
        let Some(Output::Send(t)) = a.poll() else {
            panic!("a heartbeat first")
        };
        a.handle_datagram(MS, 0, &t.bytes);
        a.handle_datagram(MS * 2, 0, &t.bytes);
        let events: Vec<Output> = std::iter::from_fn(|| a.poll()).collect();
        assert_eq!(events, vec![Output::Event(Event::OwnIdentity { path: 0 })]);
        assert_eq!(a.counters(0).unwrap().rejected[&Reject::Own], 2);
    }

    #[test]
    fn a_stall_forgives_overlapping_silence() {
        let (mut a, mut b) = (node(1, 2, 1), node(2, 1, 1));
        run(&mut a, &mut b, Time::ZERO, MS * 500, false);
        a.poll_timeout();
        // a sleeps 700 ms (deadtime 500 ms) while b keeps sending
        let ev = run(&mut a, &mut b, MS * 1200, MS * 1400, false);
        assert!(
            matches!(ev.first(), Some((1, Event::Stall { .. }))),
            "{ev:?}"
        );
        assert!(
            !ev.iter().any(|(_, e)| matches!(e, Event::NodeDown { .. })),
            "{ev:?}"
        );
        assert_eq!(a.stalls().0, 1);
    }
}
