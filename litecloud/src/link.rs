//! Two-way health of the link to one peer over one path (safety rule 2): a
//! link is up only while the peer's fresh frames acknowledge a frame of ours
//! sent within the deadtime. Hearing the peer is not enough: a one-way cut
//! is down on both sides.

use crate::Time;
use crate::replay::ReplayWindow;
use std::collections::VecDeque;
use std::time::Duration;

/// Why a link went down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkCause {
    /// Nothing fresh heard from the peer for the deadtime.
    Silence,
    /// The peer's frames still arrive but acknowledge none of ours sent
    /// within the deadtime: it does not hear us (one-way cut).
    OneWay,
    /// The peer announced a clean leave.
    PeerLeft,
}

impl LinkCause {
    /// Stable text for logs and status.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkCause::Silence => "silence",
            LinkCause::OneWay => "one-way: peer does not hear us",
            LinkCause::PeerLeft => "peer left",
        }
    }
}

/// Health of the link to one peer over one path.
#[derive(Clone, Debug)]
pub struct Link {
    /// Up while `last_fresh + deadtime` is in the future.
    pub up: bool,
    /// When the link last changed state (or was created).
    pub since: Time,
    /// Why it last went down.
    pub cause: Option<LinkCause>,
    /// Last accepted frame from the peer.
    pub last_heard: Option<Time>,
    /// Last accepted frame that acknowledged a fresh frame of ours.
    pub last_fresh: Option<Time>,
    /// The newest frame of ours the peer acknowledged proves it hears us
    /// until that frame's send time + deadtime + interval (see
    /// [`Link::acked`]).
    pub acked_until: Option<Time>,
    /// Round trip measured from the last fresh acknowledgement.
    pub rtt: Option<Duration>,
    /// Sequence window of the peer's accepted incarnation on this path.
    pub window: ReplayWindow,
    /// Sequence window of an incarnation still being verified.
    pub pending_window: ReplayWindow,
    /// When we received the peer's latest accepted frame (for ack delay).
    pub ack_at: Time,
    /// When we last sent this peer a challenge on this path.
    pub challenged_at: Option<Time>,
    /// Sequence number of our last frame to the peer on this path.
    pub seq: u32,
    /// When our recent frames to the peer on this path left.
    pub sent: SentLog,
}

impl Link {
    pub fn new(now: Time) -> Link {
        Link {
            up: false,
            since: now,
            cause: None,
            last_heard: None,
            last_fresh: None,
            acked_until: None,
            rtt: None,
            window: ReplayWindow::default(),
            pending_window: ReplayWindow::default(),
            ack_at: now,
            challenged_at: None,
            seq: 0,
            sent: SentLog::default(),
        }
    }

    /// When this link goes down unless a fresh frame arrives: a deadtime
    /// after the last fresh frame, and no later than
    /// [`Link::acked_until`], so that a peer that stopped hearing us (its
    /// acknowledgements are stuck on an old frame of ours) is down within
    /// deadtime + interval of that frame, not up to twice the deadtime.
    pub fn expiry(&self, deadtime: Duration) -> Option<Time> {
        self.up.then(|| {
            let silence = self.last_fresh.unwrap_or(self.since) + deadtime;
            self.acked_until.map_or(silence, |until| until.min(silence))
        })
    }

    /// Records that the peer acknowledged a frame of ours which proves it
    /// hears us until `until` (the frame's send time + deadtime +
    /// interval). Acknowledgements may arrive out of order: keeps the
    /// latest.
    pub fn acked(&mut self, until: Time) {
        self.acked_until = Some(self.acked_until.map_or(until, |u| u.max(until)));
    }

    /// Records an accepted frame; `fresh` is the round trip if it
    /// acknowledged a frame of ours sent within the deadtime.
    /// Returns true if the link just came up.
    pub fn heard(&mut self, now: Time, fresh: Option<Duration>) -> bool {
        self.last_heard = Some(now);
        let Some(rtt) = fresh else { return false };
        self.last_fresh = Some(now);
        self.rtt = Some(rtt);
        if self.up {
            return false;
        }
        self.up = true;
        self.since = now;
        self.cause = None;
        true
    }

    /// Takes the link down if its deadline passed; returns the cause.
    pub fn check(&mut self, now: Time, deadtime: Duration) -> Option<LinkCause> {
        let expiry = self.expiry(deadtime)?;
        if now <= expiry {
            return None;
        }
        let cause = match (self.last_heard, self.last_fresh) {
            (Some(heard), Some(fresh)) if heard > fresh => LinkCause::OneWay,
            _ => LinkCause::Silence,
        };
        self.down(now, cause);
        Some(cause)
    }

    /// Takes the link down now.
    pub fn down(&mut self, now: Time, cause: LinkCause) {
        self.up = false;
        self.since = now;
        self.cause = Some(cause);
    }

    /// Silence that overlaps our own stall does not count: move the
    /// evidence forward by the length of the stall.
    pub fn forgive(&mut self, stall: Duration) {
        if let Some(fresh) = self.last_fresh.as_mut() {
            *fresh += stall;
        }
        if let Some(until) = self.acked_until.as_mut() {
            *until += stall;
        }
    }
}

/// When each of our recent frames on one path was sent, to judge whether an
/// acknowledgement is fresh and to measure round trips.
#[derive(Clone, Debug, Default)]
pub struct SentLog {
    sent: VecDeque<(u32, Time)>,
}

impl SentLog {
    /// Records that `seq` left at `now`, forgetting frames older than `keep`.
    pub fn record(&mut self, seq: u32, now: Time, keep: Duration) {
        while let Some(&(_, t)) = self.sent.front() {
            if t + keep >= now {
                break;
            }
            self.sent.pop_front();
        }
        self.sent.push_back((seq, now));
    }

    /// Send time of `seq` if it is still remembered.
    pub fn sent_at(&self, seq: u32) -> Option<Time> {
        let i = self.sent.binary_search_by_key(&seq, |&(s, _)| s).ok()?;
        Some(self.sent[i].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn up_on_fresh_ack_down_after_deadtime() {
        let mut l = Link::new(Time::ZERO);
        assert!(!l.heard(MS * 10, None), "hearing alone is not enough");
        assert!(l.heard(MS * 20, Some(MS * 3)));
        assert_eq!(l.check(MS * 1020, MS * 1000), None);
        assert_eq!(l.check(MS * 1021, MS * 1000), Some(LinkCause::Silence));
        assert!(!l.up);
    }

    #[test]
    fn hearing_without_fresh_acks_is_one_way() {
        let mut l = Link::new(Time::ZERO);
        l.heard(MS * 10, Some(MS));
        l.heard(MS * 500, None);
        assert_eq!(l.check(MS * 1011, MS * 1000), Some(LinkCause::OneWay));
    }

    #[test]
    fn sent_log_forgets_old_frames() {
        let mut log = SentLog::default();
        log.record(1, MS, MS * 100);
        log.record(2, MS * 50, MS * 100);
        log.record(3, MS * 150, MS * 100);
        assert_eq!(log.sent_at(1), None);
        assert_eq!(log.sent_at(2), Some(MS * 50));
        assert_eq!(log.sent_at(3), Some(MS * 150));
        assert_eq!(log.sent_at(4), None);
    }
}
