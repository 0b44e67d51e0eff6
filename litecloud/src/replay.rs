//! Anti-replay window for one (sender, path): accepts each sequence number
//! at most once, tolerating reordering within the last 64 numbers.

use crate::wire::Reject;

/// Sliding window over the highest sequence number seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    highest: u32,
    /// Bit i set: `highest - i` was seen.
    seen: u64,
}

impl ReplayWindow {
    /// Records `seq` if it is new; refuses duplicates and numbers that fell
    /// out of the window.
    pub fn accept(&mut self, seq: u32) -> Result<(), Reject> {
        if seq > self.highest {
            let shift = seq - self.highest;
            self.seen = if shift >= 64 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.highest = seq;
            return Ok(());
        }
        let back = self.highest - seq;
        if back >= 64 || self.seen & (1 << back) != 0 {
            return Err(Reject::Replay);
        }
        self.seen |= 1 << back;
        Ok(())
    }

    /// Counts every number up to `seq` as seen: frames older than a proven
    /// fresh one cannot be replayed into a newly accepted incarnation.
    pub fn close_through(&mut self, seq: u32) {
        if seq >= self.highest {
            self.highest = seq;
            self.seen = u64::MAX;
        } else if self.highest - seq < 64 {
            self.seen |= u64::MAX << (self.highest - seq);
        }
    }

    /// Highest sequence number accepted so far (0 = none).
    pub fn highest(&self) -> u32 {
        self.highest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn duplicates_and_stale_numbers_are_refused() {
        let mut w = ReplayWindow::default();
        assert_eq!(w.accept(5), Ok(()));
        assert_eq!(w.accept(5), Err(Reject::Replay));
        assert_eq!(w.accept(3), Ok(()));
        assert_eq!(w.accept(3), Err(Reject::Replay));
        assert_eq!(w.accept(200), Ok(()));
        assert_eq!(w.accept(100), Err(Reject::Replay));
        assert_eq!(w.highest(), 200);
        w.close_through(190);
        assert_eq!(w.accept(180), Err(Reject::Replay));
        assert_eq!(w.accept(199), Ok(()));
        w.close_through(300);
        assert_eq!(w.accept(299), Err(Reject::Replay));
        assert_eq!(w.accept(301), Ok(()));
    }

    proptest! {
        #[test]
        fn each_number_is_accepted_at_most_once(seqs in proptest::collection::vec(1u32..300, 0..400)) {
            let mut w = ReplayWindow::default();
            let mut accepted = std::collections::HashSet::new();
            for s in seqs {
                if w.accept(s).is_ok() {
                    prop_assert!(accepted.insert(s), "{} accepted twice", s);
                }
            }
        }
    }
}
