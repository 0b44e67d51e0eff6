//! The daemon's clock: CLOCK_BOOTTIME, which keeps counting through suspend
//! and VM pauses, so time the daemon did not run is seen as a stall.

use litecloud::Time;
use nix::time::{ClockId, clock_gettime};

/// Time since boot.
pub fn now() -> Time {
    let ts = clock_gettime(ClockId::CLOCK_BOOTTIME)
        .expect("CLOCK_BOOTTIME is always available on Linux");
    Time::new(ts.tv_sec() as u64, ts.tv_nsec() as u32)
}

/// The tokio instant at which `at` (on [`now`]'s clock) falls.
pub fn instant_at(at: Time) -> tokio::time::Instant {
    let now = now();
    let base = tokio::time::Instant::now();
    match at.checked_sub(now) {
        Some(ahead) => base + ahead.min(std::time::Duration::from_secs(3600)),
        None => base,
    }
}
