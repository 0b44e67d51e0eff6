//! [`PetGate`]: whether hamond may pet the watchdog now. Pure: no I/O, no
//! clock; every time is passed in (on CLOCK_BOOTTIME, as [`Time`]).
//!
//! A pet is allowed only while all of these hold:
//!
//! 1. **hamond is healthy**: the tick that asks fired on time (the caller
//!    passes how late its timer was, [`Check::timer_lateness`]), at most
//!    [`GateLimits::max_lateness`].
//! 2. **the other daemon is healthy**: hasvrd's last supervision report
//!    ([`PetGate::other_daemon_ok`]) is at most
//!    [`GateLimits::other_daemon_deadline`] old. Before its first report
//!    the gate stays closed (no grace: hamond arms the watchdog and hasvrd
//!    must report within W).
//! 3. **the event loop has not stalled**: the gap since the previous
//!    [`PetGate::check`] is at most [`GateLimits::max_stall`]. The check
//!    right after a stall refuses, so the loop goes round once more
//!    (reading the world afresh, renewing or dropping leases) before the
//!    next pet. Time going backwards is refused too.
//! 4. **every held lease is valid**: [`Check::leases_valid_until`] is the
//!    earliest deadline of the leases this node holds (None: it holds
//!    none). No pet at or after it, ever: the node then resets within W of
//!    its lease deadline, which is what a taker relies on (`L x (1 + rho)
//!    + W + margin`, safety rule 3).
//!
//! And never after [`PetGate::self_fence`] (safety rule 7: a stop that
//! failed with `force_reboot` stops the pets for good).

use litecloud::Time;
use std::fmt;
use std::time::Duration;

/// The gate's thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GateLimits {
    /// Most lateness of hamond's tick for it to count as healthy.
    pub max_lateness: Duration,
    /// Longest gap between two checks before it counts as a stall.
    pub max_stall: Duration,
    /// How long one healthy report of the other daemon (hasvrd) stays good.
    /// None: no other daemon is supervised (until hasvrd reports to hamond;
    /// only then is condition 2 dropped).
    pub other_daemon_deadline: Option<Duration>,
}

impl GateLimits {
    /// Limits for watchdog timeout `w`, with pets every [`pet_interval`]
    /// (`w / 4`): a tick may be `w / 4` late, checks may be `w / 2` apart,
    /// and hasvrd must have reported within `w / 2`. All of them well
    /// inside W, so a sick daemon stops the pets in time for the watchdog
    /// to fire.
    pub fn for_timeout(w: Duration) -> GateLimits {
        GateLimits {
            max_lateness: w / 4,
            max_stall: w / 2,
            other_daemon_deadline: Some(w / 2),
        }
    }
}

/// How often to ask the gate (and pet when it says so) for timeout `w`.
pub fn pet_interval(w: Duration) -> Duration {
    w / 4
}

/// One question to the gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Check {
    /// Now (CLOCK_BOOTTIME).
    pub now: Time,
    /// How late hamond's timer fired for this tick.
    pub timer_lateness: Duration,
    /// The earliest deadline of the leases this node holds; None: none held.
    pub leases_valid_until: Option<Time>,
}

/// The gate's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Pet now.
    Pet,
    /// Do not pet, and why (the first condition that failed).
    Withhold(Withheld),
}

impl Verdict {
    /// Whether it says to pet.
    pub fn is_pet(&self) -> bool {
        matches!(self, Verdict::Pet)
    }
}

/// Why a pet is withheld.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Withheld {
    /// [`PetGate::self_fence`] was called: no pet ever again.
    SelfFenced {
        /// What the caller gave.
        reason: String,
    },
    /// `now` is before the previous check's.
    ClockWentBack { previous: Time, now: Time },
    /// The gap since the previous check is too long.
    Stalled { gap: Duration, max: Duration },
    /// hamond's tick fired too late.
    HamondLate { lateness: Duration, max: Duration },
    /// The other daemon has not reported healthy within its deadline.
    OtherDaemonSilent {
        /// Its last healthy report; None: none yet.
        last_report: Option<Time>,
        deadline: Duration,
    },
    /// A held lease has run out.
    LeaseExpired { valid_until: Time },
}

impl fmt::Display for Withheld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Withheld::SelfFenced { reason } => write!(f, "self-fencing: {reason}"),
            Withheld::ClockWentBack { previous, now } => write!(
                f,
                "the clock went back from {previous:?} to {now:?} since the last check"
            ),
            Withheld::Stalled { gap, max } => write!(
                f,
                "the event loop stalled: {gap:?} since the last check (at most {max:?})"
            ),
            Withheld::HamondLate { lateness, max } => {
                write!(f, "hamond's tick was {lateness:?} late (at most {max:?})")
            }
            Withheld::OtherDaemonSilent {
                last_report: None,
                deadline,
            } => write!(
                f,
                "hasvrd has not reported healthy yet (reports must come within {deadline:?})"
            ),
            Withheld::OtherDaemonSilent {
                last_report: Some(at),
                deadline,
            } => write!(
                f,
                "hasvrd's last healthy report (at {at:?}) is older than {deadline:?}"
            ),
            Withheld::LeaseExpired { valid_until } => {
                write!(f, "a held lease ran out at {valid_until:?}")
            }
        }
    }
}

/// The pet gate. See the [module](self) documentation.
#[derive(Clone, Debug)]
pub struct PetGate {
    limits: GateLimits,
    other_ok_at: Option<Time>,
    last_check: Option<Time>,
    self_fenced: Option<String>,
}

impl PetGate {
    /// A gate with no report from the other daemon yet and no check yet.
    pub fn new(limits: GateLimits) -> PetGate {
        PetGate {
            limits,
            other_ok_at: None,
            last_check: None,
            self_fenced: None,
        }
    }

    /// Its limits.
    pub fn limits(&self) -> &GateLimits {
        &self.limits
    }

    /// The other daemon (hasvrd) reported healthy at `now`.
    pub fn other_daemon_ok(&mut self, now: Time) {
        self.other_ok_at = Some(self.other_ok_at.map_or(now, |at| at.max(now)));
    }

    /// The other daemon was stopped on purpose (hamond's clean shutdown
    /// stopped hasvrd): condition 2 is dropped from now on.
    pub fn other_daemon_stopped(&mut self) {
        self.limits.other_daemon_deadline = None;
    }

    /// Stops the pets for good (safety rule 7): the node resets within W.
    pub fn self_fence(&mut self, reason: impl Into<String>) {
        if self.self_fenced.is_none() {
            self.self_fenced = Some(reason.into());
        }
    }

    /// Whether to pet now. Call it once per tick (it notes the time to
    /// see stalls), and pet only on [`Verdict::Pet`].
    pub fn check(&mut self, c: Check) -> Verdict {
        let previous = self.last_check.replace(c.now);
        match self.first_failure(c, previous) {
            None => Verdict::Pet,
            Some(why) => Verdict::Withhold(why),
        }
    }

    fn first_failure(&self, c: Check, previous: Option<Time>) -> Option<Withheld> {
        if let Some(reason) = &self.self_fenced {
            return Some(Withheld::SelfFenced {
                reason: reason.clone(),
            });
        }
        if let Some(previous) = previous {
            let Some(gap) = c.now.checked_sub(previous) else {
                return Some(Withheld::ClockWentBack {
                    previous,
                    now: c.now,
                });
            };
            if gap > self.limits.max_stall {
                return Some(Withheld::Stalled {
                    gap,
                    max: self.limits.max_stall,
                });
            }
        }
        if c.timer_lateness > self.limits.max_lateness {
            return Some(Withheld::HamondLate {
                lateness: c.timer_lateness,
                max: self.limits.max_lateness,
            });
        }
        if let Some(deadline) = self.limits.other_daemon_deadline {
            let fresh = self
                .other_ok_at
                .is_some_and(|at| c.now.saturating_sub(at) <= deadline);
            if !fresh {
                return Some(Withheld::OtherDaemonSilent {
                    last_report: self.other_ok_at,
                    deadline,
                });
            }
        }
        if let Some(valid_until) = c.leases_valid_until
            && c.now >= valid_until
        {
            return Some(Withheld::LeaseExpired { valid_until });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(8);

    fn s(secs: f64) -> Time {
        Duration::from_secs_f64(secs)
    }

    /// A gate for W = 8s (lateness 2s, stall 4s, hasvrd 4s) with a fresh
    /// hasvrd report at `t`.
    fn gate_at(t: f64) -> PetGate {
        let mut g = PetGate::new(GateLimits::for_timeout(W));
        g.other_daemon_ok(s(t));
        g
    }

    fn at(t: f64) -> Check {
        Check {
            now: s(t),
            timer_lateness: Duration::ZERO,
            leases_valid_until: None,
        }
    }

    #[test]
    fn limits_for_a_timeout() {
        let l = GateLimits::for_timeout(W);
        assert_eq!(l.max_lateness, Duration::from_secs(2));
        assert_eq!(l.max_stall, Duration::from_secs(4));
        assert_eq!(l.other_daemon_deadline, Some(Duration::from_secs(4)));
        assert_eq!(pet_interval(W), Duration::from_secs(2));
        assert!(pet_interval(W) + l.max_lateness <= l.max_stall);
    }

    #[test]
    fn all_well_pets() {
        let mut g = gate_at(100.0);
        for i in 0..10 {
            let t = 100.0 + f64::from(i) * 2.0;
            g.other_daemon_ok(s(t));
            assert_eq!(g.check(at(t)), Verdict::Pet, "at {t}");
        }
    }

    #[test]
    fn hamond_late_tick_withholds() {
        let mut g = gate_at(100.0);
        let mut c = at(100.0);
        c.timer_lateness = Duration::from_secs(2);
        assert_eq!(g.check(c), Verdict::Pet, "exactly the limit is on time");
        c.now = s(101.0);
        c.timer_lateness = Duration::from_millis(2001);
        assert_eq!(
            g.check(c),
            Verdict::Withhold(Withheld::HamondLate {
                lateness: Duration::from_millis(2001),
                max: Duration::from_secs(2),
            })
        );
        c.now = s(102.0);
        c.timer_lateness = Duration::from_millis(10);
        assert!(g.check(c).is_pet(), "on time again");
    }

    #[test]
    fn other_daemon_must_report_within_its_deadline() {
        let mut g = PetGate::new(GateLimits::for_timeout(W));
        // No report yet: closed, no grace.
        assert_eq!(
            g.check(at(10.0)),
            Verdict::Withhold(Withheld::OtherDaemonSilent {
                last_report: None,
                deadline: Duration::from_secs(4),
            })
        );
        g.other_daemon_ok(s(11.0));
        assert!(g.check(at(12.0)).is_pet());
        assert!(g.check(at(15.0)).is_pet(), "4s old: still within");
        match g.check(at(15.5)) {
            Verdict::Withhold(Withheld::OtherDaemonSilent {
                last_report: Some(t),
                ..
            }) => assert_eq!(t, s(11.0)),
            other => panic!("{other:?}"),
        }
        // A late report stamped earlier never moves the last one back.
        g.other_daemon_ok(s(15.5));
        g.other_daemon_ok(s(12.0));
        assert!(g.check(at(19.0)).is_pet());
    }

    #[test]
    fn without_a_supervised_daemon_condition_two_is_off() {
        let mut g = PetGate::new(GateLimits {
            other_daemon_deadline: None,
            ..GateLimits::for_timeout(W)
        });
        assert!(g.check(at(10.0)).is_pet());
    }

    #[test]
    fn a_cleanly_stopped_other_daemon_no_longer_counts() {
        let mut g = gate_at(100.0);
        assert!(g.check(at(101.0)).is_pet());
        g.other_daemon_stopped();
        assert_eq!(g.limits().other_daemon_deadline, None);
        for t in [103.0, 106.0, 109.0] {
            assert!(g.check(at(t)).is_pet(), "at {t}");
        }
    }

    #[test]
    fn a_stall_withholds_one_pet() {
        let mut g = gate_at(100.0);
        assert!(g.check(at(100.0)).is_pet());
        g.other_daemon_ok(s(104.0));
        assert!(g.check(at(104.0)).is_pet(), "a 4s gap is the limit");
        g.other_daemon_ok(s(108.5));
        assert_eq!(
            g.check(at(108.5)),
            Verdict::Withhold(Withheld::Stalled {
                gap: Duration::from_millis(4500),
                max: Duration::from_secs(4),
            })
        );
        // The loop goes round once more, on time: pets again.
        assert!(g.check(at(109.0)).is_pet());
    }

    #[test]
    fn time_going_back_withholds() {
        let mut g = gate_at(100.0);
        assert!(g.check(at(101.0)).is_pet());
        assert_eq!(
            g.check(at(100.5)),
            Verdict::Withhold(Withheld::ClockWentBack {
                previous: s(101.0),
                now: s(100.5),
            })
        );
    }

    #[test]
    fn expired_lease_withholds() {
        let mut g = gate_at(100.0);
        let lease = |now: f64, until: f64| Check {
            leases_valid_until: Some(s(until)),
            ..at(now)
        };
        assert!(g.check(lease(100.0, 103.0)).is_pet());
        assert!(g.check(lease(102.9, 103.0)).is_pet());
        assert_eq!(
            g.check(lease(103.0, 103.0)),
            Verdict::Withhold(Withheld::LeaseExpired {
                valid_until: s(103.0)
            }),
            "no pet at the deadline itself"
        );
        // Renewed: pets again (the caller passes the new earliest deadline).
        assert!(g.check(lease(103.5, 110.0)).is_pet());
        // No lease held: nothing to expire.
        assert!(g.check(at(104.0)).is_pet());
    }

    #[test]
    fn self_fence_is_for_good() {
        let mut g = gate_at(100.0);
        assert!(g.check(at(100.0)).is_pet());
        g.self_fence("stop of web failed");
        g.self_fence("a later reason is not kept");
        for t in [100.5, 101.0, 101.5] {
            g.other_daemon_ok(s(t));
            assert_eq!(
                g.check(at(t)),
                Verdict::Withhold(Withheld::SelfFenced {
                    reason: "stop of web failed".into()
                })
            );
        }
    }

    #[test]
    fn reasons_read_well() {
        let text = Withheld::OtherDaemonSilent {
            last_report: None,
            deadline: Duration::from_secs(4),
        }
        .to_string();
        assert_eq!(
            text,
            "hasvrd has not reported healthy yet (reports must come within 4s)"
        );
        let text = Withheld::LeaseExpired {
            valid_until: Duration::from_millis(1500),
        }
        .to_string();
        assert_eq!(text, "a held lease ran out at 1.5s");
    }

    /// A small deterministic generator (no extra dev-dependency).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Whatever the inputs — jittered ticks, late timers, stalls, time
    /// going back, hasvrd reports coming and going, leases renewed,
    /// shortened, dropped — the gate never says pet at or past the
    /// earliest lease deadline given, and never with a stale hasvrd report,
    /// a late tick or after a stall.
    #[test]
    fn never_a_pet_past_the_lease_deadline() {
        let limits = GateLimits::for_timeout(W);
        let mut pets = 0u32;
        let mut lease_checks = 0u32;
        for seed in 0..300u64 {
            let mut rng = Lcg(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut g = PetGate::new(limits);
            let mut now = Duration::from_secs(rng.below(1000));
            let mut last_report: Option<Time> = None;
            let mut previous: Option<Time> = None;
            let mut lease: Option<Time> = None;
            for _ in 0..400 {
                // Next tick: mostly ~2s on, sometimes a stall, rarely back.
                now = match rng.below(20) {
                    0 => now.saturating_sub(Duration::from_millis(rng.below(500))),
                    1 => now + Duration::from_millis(4000 + rng.below(6000)),
                    _ => now + Duration::from_millis(1500 + rng.below(1000)),
                };
                if rng.below(4) != 0 {
                    let at = now.saturating_sub(Duration::from_millis(rng.below(6000)));
                    g.other_daemon_ok(at);
                    last_report = Some(last_report.map_or(at, |r: Time| r.max(at)));
                }
                lease = match rng.below(10) {
                    0 => None,
                    1..=3 => Some(now + Duration::from_millis(rng.below(15_000))),
                    4 => Some(now.saturating_sub(Duration::from_millis(rng.below(3000)))),
                    _ => lease,
                };
                let lateness = Duration::from_millis(if rng.below(10) == 0 {
                    rng.below(5000)
                } else {
                    rng.below(200)
                });
                let c = Check {
                    now,
                    timer_lateness: lateness,
                    leases_valid_until: lease,
                };
                let verdict = g.check(c);
                if verdict.is_pet() {
                    pets += 1;
                    if let Some(until) = lease {
                        lease_checks += 1;
                        assert!(
                            now < until,
                            "seed {seed}: pet at {now:?}, lease until {until:?}"
                        );
                    }
                    let report = last_report.expect("a pet needs a report");
                    assert!(now.saturating_sub(report) <= limits.other_daemon_deadline.unwrap());
                    assert!(lateness <= limits.max_lateness);
                    if let Some(p) = previous {
                        assert!(now >= p && now - p <= limits.max_stall);
                    }
                }
                previous = Some(now);
            }
        }
        // The run exercised both sides.
        assert!(
            pets > 10_000 && lease_checks > 5_000,
            "{pets} pets, {lease_checks} with a lease"
        );
    }
}
