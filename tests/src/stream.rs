//! Waiting for one item of a stream of test observations (events, request
//! lines, log lines): [`wait_for`] skips the items that do not match until
//! one does or the deadline passes, and names the skipped ones when it
//! fails.

use std::fmt::Debug;
use std::time::{Duration, Instant};

/// Takes items from `next` (called with the time left; `None` means
/// nothing came in that time) until `want` accepts one, within `wait`.
/// Panics with `what` and the last skipped items when none does.
#[track_caller]
pub fn wait_for<T: Debug>(
    what: &str,
    wait: Duration,
    mut next: impl FnMut(Duration) -> Option<T>,
    want: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + wait;
    let mut skipped = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match next(left) {
            Some(item) if want(&item) => return item,
            Some(item) => skipped.push(item),
            None => break,
        }
    }
    let tail = &skipped[skipped.len().saturating_sub(10)..];
    panic!("no {what} within {wait:?}; last others: {tail:?}");
}
