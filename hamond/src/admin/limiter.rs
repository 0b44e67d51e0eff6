//! Failed-login limiting per source address: after [`MAX_FAILURES`] failed
//! logins in a row (none more than [`LOCKOUT`] after the previous one), the
//! source is locked out for [`LOCKOUT`], even with the right password. A
//! success clears the count. Logins being checked count against the limit
//! too, so parallel guesses cannot slip past it. IPv6 sources are grouped
//! by /64 (one host usually owns a whole /64), IPv4-mapped IPv6 as IPv4.
//!
//! Pure: the caller passes the time, so tests need no clock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failed logins in a row that lock a source out.
pub const MAX_FAILURES: u32 = 5;
/// How long a lockout lasts, and how long a failure is remembered.
pub const LOCKOUT: Duration = Duration::from_secs(60);
/// Sources tracked before idle ones are forgotten.
const PRUNE_AT: usize = 1024;

/// Why a login may not even be tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Locked out for this much longer.
    LockedOut(Duration),
    /// [`MAX_FAILURES`] logins from this source are being checked already.
    Busy,
}

/// What a failed login did to its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Failures in a row, this one included (0 once it locked the source).
    pub count: u32,
    /// Set when this failure locked the source out: for how long.
    pub locked_for: Option<Duration>,
}

#[derive(Debug, Default)]
struct Entry {
    failures: u32,
    last_failure: Option<Instant>,
    locked_until: Option<Instant>,
    in_flight: u32,
}

impl Entry {
    /// Forgets what has expired by `now`.
    fn expire(&mut self, now: Instant) {
        if self.locked_until.is_some_and(|t| t <= now) {
            self.locked_until = None;
        }
        if self
            .last_failure
            .is_some_and(|t| now.saturating_duration_since(t) >= LOCKOUT)
        {
            self.failures = 0;
            self.last_failure = None;
        }
    }

    fn idle(&self) -> bool {
        self.failures == 0 && self.locked_until.is_none() && self.in_flight == 0
    }
}

/// The failure counts of every source that failed lately.
#[derive(Debug, Default)]
pub struct Limiter {
    entries: HashMap<IpAddr, Entry>,
}

/// The address a source is counted under.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut s = v6.segments();
                s[4..].fill(0);
                IpAddr::V6(s.into())
            }
        },
    }
}

impl Limiter {
    pub fn new() -> Limiter {
        Limiter::default()
    }

    /// A login from `ip` starts at `now`; on Ok, end it with
    /// [`Limiter::failed`], [`Limiter::succeeded`] or [`Limiter::abandoned`].
    pub fn begin(&mut self, ip: IpAddr, now: Instant) -> Result<(), Refused> {
        if self.entries.len() >= PRUNE_AT {
            self.entries.retain(|_, e| {
                e.expire(now);
                !e.idle()
            });
        }
        let e = self.entries.entry(source_key(ip)).or_default();
        e.expire(now);
        if let Some(until) = e.locked_until {
            return Err(Refused::LockedOut(until - now));
        }
        if e.failures + e.in_flight >= MAX_FAILURES {
            return Err(Refused::Busy);
        }
        e.in_flight += 1;
        Ok(())
    }

    /// The login from `ip` gave a wrong password.
    pub fn failed(&mut self, ip: IpAddr, now: Instant) -> Failure {
        let e = self.end(ip, now);
        e.failures += 1;
        e.last_failure = Some(now);
        if e.failures >= MAX_FAILURES {
            e.failures = 0;
            e.last_failure = None;
            e.locked_until = Some(now + LOCKOUT);
            return Failure {
                count: 0,
                locked_for: Some(LOCKOUT),
            };
        }
        Failure {
            count: e.failures,
            locked_for: None,
        }
    }

    /// The login from `ip` gave the right password: its failures are
    /// forgiven.
    pub fn succeeded(&mut self, ip: IpAddr, now: Instant) {
        let e = self.end(ip, now);
        e.failures = 0;
        e.last_failure = None;
    }

    /// The login from `ip` ended without a verdict (no password set, the
    /// client went away).
    pub fn abandoned(&mut self, ip: IpAddr, now: Instant) {
        self.end(ip, now);
    }

    fn end(&mut self, ip: IpAddr, now: Instant) -> &mut Entry {
        let e = self.entries.entry(source_key(ip)).or_default();
        e.expire(now);
        e.in_flight = e.in_flight.saturating_sub(1);
        e
    }

    /// Sources tracked (for tests).
    pub fn tracked(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn fail(l: &mut Limiter, a: IpAddr, now: Instant) -> Failure {
        l.begin(a, now).unwrap();
        l.failed(a, now)
    }

    #[test]
    fn five_failures_lock_out_for_a_minute() {
        let mut l = Limiter::new();
        let a = ip("10.0.0.1");
        let t0 = Instant::now();
        for i in 1..MAX_FAILURES {
            let f = fail(&mut l, a, t0 + Duration::from_secs(u64::from(i)));
            assert_eq!(
                f,
                Failure {
                    count: i,
                    locked_for: None
                }
            );
        }
        let t5 = t0 + Duration::from_secs(5);
        assert_eq!(fail(&mut l, a, t5).locked_for, Some(LOCKOUT));
        // Locked, whatever the password would be, and says how long.
        let t = t5 + Duration::from_secs(20);
        assert_eq!(
            l.begin(a, t),
            Err(Refused::LockedOut(Duration::from_secs(40)))
        );
        // Another source is not affected.
        assert_eq!(l.begin(ip("10.0.0.2"), t), Ok(()));
        // The lockout ends, with a clean count.
        let after = t5 + LOCKOUT;
        assert_eq!(l.begin(a, after), Ok(()));
        assert_eq!(l.failed(a, after).count, 1);
    }

    #[test]
    fn success_clears_and_old_failures_expire() {
        let mut l = Limiter::new();
        let a = ip("192.0.2.7");
        let t0 = Instant::now();
        for _ in 0..4 {
            fail(&mut l, a, t0);
        }
        l.begin(a, t0).unwrap();
        l.succeeded(a, t0);
        assert_eq!(fail(&mut l, a, t0).count, 1);
        for _ in 0..3 {
            fail(&mut l, a, t0);
        }
        // A failure more than LOCKOUT after the last one starts over.
        assert_eq!(fail(&mut l, a, t0 + LOCKOUT).count, 1);
    }

    #[test]
    fn parallel_logins_count_against_the_limit() {
        let mut l = Limiter::new();
        let a = ip("10.0.0.1");
        let t = Instant::now();
        for _ in 0..3 {
            fail(&mut l, a, t);
        }
        assert_eq!(l.begin(a, t), Ok(()));
        assert_eq!(l.begin(a, t), Ok(()));
        assert_eq!(l.begin(a, t), Err(Refused::Busy));
        l.abandoned(a, t);
        assert_eq!(l.begin(a, t), Ok(()));
        l.failed(a, t);
        assert_eq!(l.failed(a, t).locked_for, Some(LOCKOUT));
    }

    #[test]
    fn ipv6_by_prefix_and_mapped_ipv4() {
        assert_eq!(
            source_key(ip("2001:db8::1")),
            source_key(ip("2001:db8::ffff:2"))
        );
        assert_ne!(
            source_key(ip("2001:db8::1")),
            source_key(ip("2001:db8:0:1::1"))
        );
        assert_eq!(source_key(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
        let mut l = Limiter::new();
        let t = Instant::now();
        for i in 0..MAX_FAILURES {
            fail(&mut l, ip(&format!("2001:db8::{}", i + 1)), t);
        }
        assert!(matches!(
            l.begin(ip("2001:db8::99"), t),
            Err(Refused::LockedOut(_))
        ));
    }

    #[test]
    fn idle_sources_are_forgotten() {
        let mut l = Limiter::new();
        let t = Instant::now();
        for i in 0..PRUNE_AT as u32 {
            fail(&mut l, IpAddr::V4(i.into()), t);
        }
        assert_eq!(l.tracked(), PRUNE_AT);
        l.begin(ip("10.9.9.9"), t + LOCKOUT).unwrap();
        assert_eq!(l.tracked(), 1);
    }
}
