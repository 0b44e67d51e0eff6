//! Reliable, ordered messages to one peer, carried as items in the frames
//! the engine sends anyway (on every path, so one working medium is
//! enough): each message is retransmitted until the peer's cumulative
//! acknowledgement covers it, and delivered exactly once, in order, for one
//! pair of incarnations. When either side becomes a new incarnation the
//! channel starts over and the layers above are told (they re-synchronise
//! their state, as after a restart).

use crate::Time;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// Largest message, in bytes: one fits a UDP frame with room for an ack.
pub const MAX_MESSAGE: usize = 1024;
/// Messages waiting for an acknowledgement, per peer.
pub const MAX_UNACKED: usize = 256;
/// Messages held for delivery while an earlier one is missing.
const MAX_EARLY: usize = 64;

/// Why a message was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// Not a peer of this node, or its incarnation is not proven yet.
    NotConnected,
    /// Longer than [`MAX_MESSAGE`].
    TooLarge,
    /// [`MAX_UNACKED`] messages already wait for the peer.
    QueueFull,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SendError::NotConnected => "peer not connected (incarnation not proven)",
            SendError::TooLarge => "message larger than 1024 bytes",
            SendError::QueueFull => "256 messages already wait for that peer",
        })
    }
}

impl std::error::Error for SendError {}

#[derive(Clone, Debug)]
struct Outgoing {
    seq: u32,
    data: Vec<u8>,
    /// Per path: when it last went out there.
    sent_at: Vec<Option<Time>>,
}

/// Both directions of the message stream to one peer.
#[derive(Clone, Debug, Default)]
pub struct Channel {
    next_seq: u32,
    unacked: VecDeque<Outgoing>,
    expected: u32,
    early: BTreeMap<u32, Vec<u8>>,
    ack_owed: bool,
}

impl Channel {
    /// A channel for a newly proven pair of incarnations.
    pub fn new() -> Channel {
        Channel {
            next_seq: 1,
            expected: 1,
            ..Channel::default()
        }
    }

    /// Queues a message; it goes out with the next frames to the peer.
    pub fn queue(&mut self, data: Vec<u8>, paths: usize) -> Result<(), SendError> {
        if data.len() > MAX_MESSAGE {
            return Err(SendError::TooLarge);
        }
        if self.unacked.len() >= MAX_UNACKED {
            return Err(SendError::QueueFull);
        }
        self.unacked.push_back(Outgoing {
            seq: self.next_seq,
            data,
            sent_at: vec![None; paths],
        });
        self.next_seq += 1;
        Ok(())
    }

    /// Messages due on `path` (never sent there, or not for `every`),
    /// up to `budget` bytes (at least one), marked as sent now.
    pub fn due(
        &mut self,
        path: usize,
        now: Time,
        every: Duration,
        budget: usize,
    ) -> Vec<(u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut used = 0;
        for m in &mut self.unacked {
            let due = m.sent_at[path].is_none_or(|t| now >= t + every);
            if !due {
                continue;
            }
            if !out.is_empty() && used + m.data.len() > budget {
                break;
            }
            used += m.data.len();
            m.sent_at[path] = Some(now);
            out.push((m.seq, m.data.clone()));
        }
        out
    }

    /// The cumulative ack to put in the next frame, if one is owed.
    pub fn take_ack(&mut self) -> Option<u32> {
        std::mem::take(&mut self.ack_owed).then(|| self.expected - 1)
    }

    /// The peer has every message up to `seq`.
    pub fn acked(&mut self, seq: u32) {
        while self.unacked.front().is_some_and(|m| m.seq <= seq) {
            self.unacked.pop_front();
        }
    }

    /// A received message; returns the messages now deliverable, in order.
    pub fn received(&mut self, seq: u32, data: Vec<u8>) -> Vec<Vec<u8>> {
        self.ack_owed = true;
        if seq < self.expected || (seq > self.expected && self.early.len() >= MAX_EARLY) {
            return Vec::new();
        }
        self.early.insert(seq, data);
        let mut ready = Vec::new();
        while let Some(data) = self.early.remove(&self.expected) {
            ready.push(data);
            self.expected += 1;
        }
        ready
    }

    /// Messages not yet acknowledged.
    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn delivers_in_order_once_despite_loss_duplication_and_reordering() {
        let mut tx = Channel::new();
        let mut rx = Channel::new();
        for i in 0..5u8 {
            tx.queue(vec![i], 1).unwrap();
        }
        let sent = tx.due(0, Time::ZERO, MS * 100, 1000);
        assert_eq!(sent.len(), 5);
        // 2 is lost, 4 arrives before 3, 1 twice.
        let mut got = Vec::new();
        for &i in &[0usize, 1, 1, 4, 3] {
            got.extend(rx.received(sent[i].0, sent[i].1.clone()));
        }
        assert_eq!(got, vec![vec![0], vec![1]]);
        assert_eq!(rx.take_ack(), Some(2));
        tx.acked(2);
        assert_eq!(tx.unacked(), 3);
        assert!(tx.due(0, MS * 50, MS * 100, 1000).is_empty(), "not due yet");
        let again = tx.due(0, MS * 100, MS * 100, 1000);
        assert_eq!(again.len(), 3);
        let got: Vec<Vec<u8>> = again
            .into_iter()
            .flat_map(|(s, d)| rx.received(s, d))
            .collect();
        assert_eq!(got, vec![vec![2], vec![3], vec![4]]);
        assert_eq!(rx.take_ack(), Some(5));
        assert_eq!(rx.take_ack(), None);
    }

    #[test]
    fn limits_are_enforced() {
        let mut tx = Channel::new();
        assert_eq!(
            tx.queue(vec![0; MAX_MESSAGE + 1], 1),
            Err(SendError::TooLarge)
        );
        for _ in 0..MAX_UNACKED {
            tx.queue(vec![1], 1).unwrap();
        }
        assert_eq!(tx.queue(vec![1], 1), Err(SendError::QueueFull));
        let first = tx.due(0, Time::ZERO, MS, 10);
        assert_eq!(first.len(), 10, "budget bounds a frame");
        let big = Channel::new().queue(vec![0; MAX_MESSAGE], 1);
        assert_eq!(big, Ok(()));
    }
}
