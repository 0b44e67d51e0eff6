//! The backoff of a supervisor whose daemon keeps dying: an occasional
//! death is restarted at once; from the third death within a minute the
//! pause doubles from 1 s (up to 30 s) and each death is logged at
//! emergency level.

use std::time::Duration;
use tokio::time::Instant;

/// Deaths within [`FLAP_WINDOW`] before the pause grows and the log says
/// so at emergency level.
const FLAP_DEATHS: usize = 3;
const FLAP_WINDOW: Duration = Duration::from_secs(60);
/// Longest pause between two starts of a daemon that keeps dying.
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// The recent deaths of one supervised daemon.
pub struct Restarts {
    daemon: &'static str,
    deaths: Vec<Instant>,
}

impl Restarts {
    /// No death yet of `daemon` (its name in the log).
    pub fn new(daemon: &'static str) -> Restarts {
        Restarts {
            daemon,
            deaths: Vec::new(),
        }
    }

    /// The daemon died (`how`): logs it and returns the pause before the
    /// next start.
    pub fn died(&mut self, how: &str) -> Duration {
        let pause = self.record();
        let daemon = self.daemon;
        if self.deaths.len() >= FLAP_DEATHS {
            tracing::error!(
                severity = "emerg",
                "{daemon} died again ({how}), {} times within {FLAP_WINDOW:?}; restarting it in \
                 {pause:?}; see its log lines above for why, and fix that (config, disk, \
                 binary) before it stops the node",
                self.deaths.len()
            );
        } else {
            tracing::error!("{daemon} died ({how}); restarting it");
        }
        pause
    }

    /// Counts a death (or a failed start) without logging it; returns the
    /// pause before the next start.
    pub fn record(&mut self) -> Duration {
        self.record_at(Instant::now())
    }

    /// The pause: none for an occasional death, then doubling from 1 s
    /// while deaths keep coming within the window.
    fn record_at(&mut self, now: Instant) -> Duration {
        self.deaths.push(now);
        self.deaths
            .retain(|&t| now.saturating_duration_since(t) < FLAP_WINDOW);
        match self.deaths.len() {
            0..FLAP_DEATHS => Duration::ZERO,
            n => {
                let doublings = u32::try_from(n - FLAP_DEATHS).unwrap_or(u32::MAX).min(5);
                (Duration::from_secs(1) * 2u32.pow(doublings)).min(MAX_PAUSE)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occasional_deaths_restart_at_once_repeated_ones_back_off() {
        let now = Instant::now();
        let mut r = Restarts::new("x");
        assert_eq!(r.record_at(now), Duration::ZERO);
        assert_eq!(r.record_at(now), Duration::ZERO);
        assert_eq!(r.record_at(now), Duration::from_secs(1));
        assert_eq!(r.record_at(now), Duration::from_secs(2));
        for _ in 0..20 {
            r.record_at(now);
        }
        assert_eq!(r.record_at(now), MAX_PAUSE);
        // A minute of quiet: the next death is occasional again.
        assert_eq!(r.record_at(now + FLAP_WINDOW), Duration::ZERO);
    }
}
