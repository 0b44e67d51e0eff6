//! Names and numbers that stay unique across the tests running at once,
//! in this process (an atomic counter) and in other test processes (the pid).

use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A number never returned twice in this process.
pub fn next() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// This process's id.
pub fn pid() -> u32 {
    std::process::id()
}

/// Keeps `[A-Za-z0-9_]` of `tag` (others become `_`), at most `max` chars.
pub fn sanitize(tag: &str, max: usize) -> String {
    tag.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect()
}

/// A third octet for test subnets `10.91.X.0/24` and `10.92.X.0/24`, in
/// 1..=250, different for each call in this process (for 250 calls) and
/// spread by pid across processes. Subnets live inside private namespaces,
/// so a clash between processes would still not mix traffic; the spread
/// only keeps logs and captures unambiguous.
pub fn subnet_octet() -> u8 {
    let n = pid().wrapping_mul(37).wrapping_add(next());
    (n % 250 + 1) as u8
}
