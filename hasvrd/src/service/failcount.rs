//! The fail count of one service on this node: the time of each failure
//! (application failure or failed start) since the last Cleanup, dropped
//! once older than the service's `failure_timeout` (kept until Cleanup
//! without one). Pure: the machine passes the time in. A restarted hasvrd
//! hands the failures it persisted back ([`Service::restore_failures`]).

use super::{Input, Level, Service, Time};
use std::collections::VecDeque;
use std::time::Duration;

impl Service {
    /// A restarted hasvrd's failures of this service here, as persisted
    /// before the restart, at `times` on the machine's clock: counted
    /// again at `now` (those older than `failure_timeout` expire at once),
    /// so `migration_threshold` goes on applying.
    pub fn restore_failures(&mut self, now: Time, times: &[Time]) {
        if times.is_empty() {
            return;
        }
        let mut all: Vec<Time> = self
            .fail_count
            .times()
            .chain(times.iter().copied())
            .collect();
        all.sort();
        self.fail_count.times = all.into();
        self.alert(
            Level::Info,
            format!(
                "{} failure(s) counted here before hasvrd restarted",
                times.len()
            ),
        );
        self.handle(now, Input::Timer);
    }
}

/// Failures still counted, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailCount {
    times: VecDeque<Time>,
}

impl FailCount {
    /// Counts a failure at `now`.
    pub fn record(&mut self, now: Time) {
        self.times.push_back(now);
    }

    /// Drops the failures older than `timeout` at `now`; returns how many.
    pub fn expire(&mut self, now: Time, timeout: Option<Duration>) -> usize {
        let Some(timeout) = timeout else {
            return 0;
        };
        let before = self.times.len();
        while self.times.front().is_some_and(|&t| t + timeout <= now) {
            self.times.pop_front();
        }
        before - self.times.len()
    }

    /// When the oldest failure expires, if one does.
    pub fn next_expiry(&self, timeout: Option<Duration>) -> Option<Time> {
        Some(*self.times.front()? + timeout?)
    }

    /// Forgets every failure (Cleanup).
    pub fn clear(&mut self) {
        self.times.clear();
    }

    /// Failures still counted.
    pub fn count(&self) -> u32 {
        u32::try_from(self.times.len()).unwrap_or(u32::MAX)
    }

    /// When each counted failure happened, oldest first.
    pub fn times(&self) -> impl Iterator<Item = Time> + '_ {
        self.times.iter().copied()
    }
}
