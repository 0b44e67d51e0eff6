//! [`Keeper`]: the watchdog as hamond's daemon loop drives it. It owns the
//! opened [`Watchdog`] and its [`PetGate`], and on every tick
//! ([`Keeper::tick`], every [`Keeper::interval`]) asks the gate and pets
//! when it says so, logging each change of verdict once.
//!
//! hasvrd's health comes from pings: the loop sends `ToHasvrd::Ping` with
//! [`Keeper::ping`]'s number every tick, hasvrd's daemon loop answers
//! `ToHamond::Pong`, and [`Keeper::pong`] reports hasvrd healthy *as of
//! the time that ping was sent* (the answer proves its loop ran after
//! then). No answer within the gate's deadline closes the gate; a hasvrd
//! that hamond restarts within that deadline never does.
//!
//! The lease ([`Lease`]): every tick the daemon says whether this node has
//! the right to hold services now (renewing the lease) and whether it holds
//! any; while it holds one, the gate gets the lease's deadline, so the pets
//! stop at the deadline of a node that lost the right and still holds a
//! service. A node that holds nothing is not bound by its lease. Before the
//! node first had the right (no deadline taken since boot, none kept from
//! before a restart) nothing is bound either.
//!
//! [`Keeper::self_fence`] (a stop failed with `force_reboot`, safety rule 7)
//! stops the pets for good, and [`Keeper::close`] then leaves the watchdog
//! armed: the node resets within W. hamond never calls `reboot(2)`.

use super::{Check, GateLimits, Lease, PetGate, Verdict, Watchdog, Withheld, pet_interval};
use haschema::ctl::{PeerWatchdog, WatchdogStatus};
use litecloud::Time;
use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

/// Pings remembered while their answers are awaited (a few deadlines'
/// worth at one per tick).
const PINGS_KEPT: usize = 16;

/// The watchdog, its gate and hasvrd's pings. See the [module](self)
/// documentation.
#[derive(Debug)]
pub struct Keeper {
    wd: Watchdog,
    gate: PetGate,
    /// (number, time sent) of the pings not answered yet, oldest first.
    pings: VecDeque<(u64, Time)>,
    next_ping: u64,
    /// The last verdict, for the log and the status.
    last: Option<Verdict>,
    self_fence: Option<String>,
    lease: Lease,
    /// The deadline the last check gave the gate (a service held).
    bound: Option<Time>,
    /// The last check renewed the lease.
    renewed: bool,
}

/// What the daemon says of this node at a tick ([`Keeper::tick`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing {
    /// It has the right to hold services now (not isolated; with three or
    /// more nodes, in a view with quorum): the lease is renewed.
    pub entitled: bool,
    /// It holds at least one service lock: the lease binds it.
    pub holding: bool,
}

impl Keeper {
    /// Opens the watchdog at `device` asking for `timeout` (the device may
    /// round it: [`Keeper::timeout`] is the one read back). With
    /// `hasvrd_supervised`, hasvrd must answer pings within the gate's
    /// deadline; without (hamond runs no hasvrd), its health is not asked.
    /// `lease` is this node's lease (restored from its file).
    pub fn open(
        device: &Path,
        timeout: Duration,
        hasvrd_supervised: bool,
        lease: Lease,
    ) -> std::io::Result<Keeper> {
        let wd = Watchdog::open(device, timeout)?;
        Ok(Keeper::new(wd, hasvrd_supervised, lease))
    }

    fn new(wd: Watchdog, hasvrd_supervised: bool, lease: Lease) -> Keeper {
        let mut limits = GateLimits::for_timeout(wd.timeout());
        if !hasvrd_supervised {
            limits.other_daemon_deadline = None;
        }
        Keeper {
            wd,
            gate: PetGate::new(limits),
            pings: VecDeque::new(),
            next_ping: 1,
            last: None,
            self_fence: None,
            lease,
            bound: None,
            renewed: false,
        }
    }

    /// The watchdog timeout W read back from the device.
    pub fn timeout(&self) -> Duration {
        self.wd.timeout()
    }

    /// What this node advertises of its watchdog to its peers.
    pub fn advert(&self) -> PeerWatchdog {
        PeerWatchdog::Enabled {
            armed_device: self.wd.is_reliable(),
            timeout_s: self.timeout().as_secs(),
            lease_s: self.lease.length().as_secs(),
        }
    }

    /// The lease's length L.
    pub fn lease_length(&self) -> Duration {
        self.lease.length()
    }

    /// How often to tick.
    pub fn interval(&self) -> Duration {
        pet_interval(self.wd.timeout())
    }

    /// Logs what was opened, once at start.
    pub fn log_opened(&self) {
        let w = self.wd.timeout().as_secs();
        let peers = if self.wd.is_reliable() {
            "it resets this node if hamond dies or hangs"
        } else {
            "it cannot reset this node"
        };
        let hasvrd = match self.gate.limits().other_daemon_deadline {
            Some(d) => format!("hasvrd must answer within {d:?}"),
            None => "hasvrd is not supervised by hamond: its health is not checked".to_owned(),
        };
        tracing::info!(
            "watchdog {}: {}, timeout W = {w}s (read back), petted every {:?} while the loop is \
             on time, {hasvrd} and the services held here are within the lease ({:?}); {peers}",
            self.wd.path().display(),
            self.wd.kind(),
            self.interval(),
            self.lease.length()
        );
    }

    /// A new ping to send hasvrd at `now`: its number.
    pub fn ping(&mut self, now: Time) -> u64 {
        let seq = self.next_ping;
        self.next_ping += 1;
        if self.pings.len() == PINGS_KEPT {
            self.pings.pop_front();
        }
        self.pings.push_back((seq, now));
        seq
    }

    /// hasvrd answered ping `seq`: healthy as of when it was sent. Unknown
    /// numbers (forgotten, or from before a restart) are ignored.
    pub fn pong(&mut self, seq: u64) {
        let Some(&(_, sent)) = self.pings.iter().find(|(s, _)| *s == seq) else {
            return;
        };
        self.pings.retain(|(s, _)| *s > seq);
        self.gate.other_daemon_ok(sent);
    }

    /// hamond stopped hasvrd on purpose (clean shutdown): its silence from
    /// now on is no reason to withhold a pet.
    pub fn hasvrd_stopped(&mut self) {
        self.gate.other_daemon_stopped();
    }

    /// One tick at `now`, `lateness` after it was due, with this node's
    /// `standing`: renews the lease if entitled, asks the gate and pets
    /// when it says so.
    pub fn tick(&mut self, now: Time, lateness: Duration, standing: Standing) {
        if standing.entitled {
            self.lease.renew(now);
        }
        let bound = if standing.holding {
            self.lease.valid_until()
        } else {
            None
        };
        self.log_lease(now, standing, bound);
        self.renewed = standing.entitled;
        self.bound = bound;
        let verdict = self.gate.check(Check {
            now,
            timer_lateness: lateness,
            leases_valid_until: bound,
        });
        if verdict.is_pet()
            && let Err(e) = self.wd.pet()
        {
            tracing::error!(
                "{e}; the node resets within {}s unless a later pet succeeds: check the device \
                 (or, for a stand-in, its reader)",
                self.timeout().as_secs()
            );
        }
        self.log_change(&verdict);
        self.last = Some(verdict);
    }

    /// Logs the lease starting to run out on a node that holds services,
    /// and its renewal after that.
    fn log_lease(&self, now: Time, standing: Standing, bound: Option<Time>) {
        match (self.renewed, standing.entitled, bound) {
            (true, false, Some(until)) => tracing::error!(
                severity = "crit",
                "lease: no longer renewed (this node lost the right to hold services); the \
                 services held here must be stopped within {:?}, or the watchdog resets this \
                 node",
                until.saturating_sub(now)
            ),
            (false, true, Some(_)) if self.bound.is_some() => {
                tracing::warn!(severity = "notice", "lease: renewed again")
            }
            _ => {}
        }
    }

    /// Logs a verdict that differs from the last one (by kind).
    fn log_change(&self, verdict: &Verdict) {
        let kind = |v: &Verdict| match v {
            Verdict::Pet => None,
            Verdict::Withhold(w) => Some(std::mem::discriminant(w)),
        };
        if self.last.as_ref().map(kind) == Some(kind(verdict)) {
            return;
        }
        let w = self.timeout().as_secs();
        match verdict {
            Verdict::Pet => tracing::info!("watchdog: petted (every {:?})", self.interval()),
            // Logged at emergency by self_fence.
            Verdict::Withhold(Withheld::SelfFenced { .. }) => {}
            // hamond just started: hasvrd is starting too.
            Verdict::Withhold(
                why @ Withheld::OtherDaemonSilent {
                    last_report: None, ..
                },
            ) => tracing::warn!(
                "watchdog: waiting for hasvrd: {why}; this node resets within {w}s otherwise \
                 (see hamond's log lines about starting hasvrd)"
            ),
            Verdict::Withhold(why) => tracing::error!(
                "watchdog: not petted: {why}; this node resets within {w}s unless it clears: \
                 check hasvrd (`hactl service status`), the machine's load and hamond's log"
            ),
        }
    }

    /// Stops the pets for good: the node resets within W (safety rule 7).
    pub fn self_fence(&mut self, reason: &str) {
        if self.self_fence.is_none() {
            tracing::error!(
                severity = "emerg",
                "SELF-FENCE: {reason}; the watchdog ({}) is no longer petted and resets this \
                 node within {}s; after the reset, find why the stop failed before running \
                 `hactl service cleanup`",
                self.wd.kind(),
                self.timeout().as_secs()
            );
            self.self_fence = Some(reason.to_owned());
            self.gate.self_fence(reason);
        }
    }

    /// Closes the watchdog at a clean stop: disarmed with the magic close,
    /// unless the node self-fences (then it stays armed and resets).
    pub fn close(self) {
        match &self.self_fence {
            None => {
                let _ = self.wd.close_cleanly();
            }
            Some(reason) => tracing::error!(
                severity = "emerg",
                "watchdog left armed at exit ({reason}): this node resets within {}s",
                self.timeout().as_secs()
            ),
        }
    }

    /// For `hactl status` at `now`.
    pub fn status(&self, now: Time) -> WatchdogStatus {
        WatchdogStatus {
            device: self.wd.path().display().to_string(),
            kind: self.wd.kind().to_string(),
            timeout_s: self.timeout().as_secs(),
            armed_device: self.wd.is_reliable(),
            petting: self.last.as_ref().is_some_and(Verdict::is_pet),
            withheld: match &self.last {
                Some(Verdict::Withhold(why)) => Some(why.to_string()),
                _ => None,
            },
            self_fence: self.self_fence.clone(),
            lease_s: self.lease.length().as_secs(),
            lease_left_ms: self
                .bound
                .map(|until| until.saturating_sub(now).as_millis() as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(4);
    const LEASE: Duration = Duration::from_secs(6);
    /// Entitled, holding nothing.
    const FREE: Standing = Standing {
        entitled: true,
        holding: false,
    };

    fn s(secs: f64) -> Time {
        Duration::from_secs_f64(secs)
    }

    /// A keeper on a regular-file stand-in in a fresh directory, and the
    /// file.
    fn keeper(tag: &str, hasvrd: bool) -> (Keeper, tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::Builder::new()
            .prefix(&format!("keeper-{tag}"))
            .tempdir()
            .unwrap();
        let path = dir.path().join("wd");
        std::fs::write(&path, "").unwrap();
        let lease = Lease::restore(dir.path().join("lease"), 1, LEASE);
        let k = Keeper::open(&path, W, hasvrd, lease).unwrap();
        (k, dir, path)
    }

    fn bytes(path: &Path) -> String {
        String::from_utf8(std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn pets_only_while_hasvrd_answers() {
        let (mut k, _dir, path) = keeper("answers", true);
        assert_eq!(k.interval(), Duration::from_secs(1));
        assert_eq!(bytes(&path), ".", "the open pets once");
        // No answer yet: withheld.
        let first = k.ping(s(10.0));
        k.tick(s(10.0), Duration::ZERO, FREE);
        assert!(!k.status(s(0.0)).petting);
        assert!(k.status(s(0.0)).withheld.unwrap().contains("hasvrd"));
        k.pong(first);
        let mut t = 11.0;
        for _ in 0..3 {
            let seq = k.ping(s(t));
            k.tick(s(t), Duration::ZERO, FREE);
            k.pong(seq);
            t += 1.0;
        }
        assert_eq!(bytes(&path), "....");
        // hasvrd goes silent: healthy as of the last answered ping (at
        // 13s) for 2s more, then withheld.
        for _ in 0..4 {
            k.ping(s(t));
            k.tick(s(t), Duration::ZERO, FREE);
            t += 1.0;
        }
        assert_eq!(bytes(&path), "......", "pets at 14s and 15s, none after");
        let st = k.status(s(0.0));
        assert!(!st.petting);
        assert!(
            st.withheld.unwrap().contains("hasvrd"),
            "{:?}",
            k.status(s(0.0))
        );
    }

    #[test]
    fn an_answer_counts_from_when_its_ping_was_sent() {
        let (mut k, _dir, path) = keeper("sent", true);
        let old = k.ping(s(10.0));
        k.ping(s(11.0));
        // The answer to the 10s ping arrives late, at 13s: 3s old, beyond
        // the 2s deadline.
        k.pong(old);
        k.tick(s(13.0), Duration::ZERO, FREE);
        assert!(!k.status(s(0.0)).petting);
        // Unknown or already answered numbers change nothing.
        k.pong(old);
        k.pong(999);
        k.tick(s(13.5), Duration::ZERO, FREE);
        assert_eq!(bytes(&path), ".");
    }

    #[test]
    fn without_a_supervised_hasvrd_a_late_tick_still_withholds() {
        let (mut k, _dir, path) = keeper("late", false);
        k.tick(s(10.0), Duration::ZERO, FREE);
        assert!(k.status(s(0.0)).petting);
        k.tick(s(11.0), Duration::from_millis(1500), FREE);
        let st = k.status(s(0.0));
        assert!(!st.petting);
        assert!(st.withheld.unwrap().contains("late"));
        assert_eq!(bytes(&path), "..");
    }

    #[test]
    fn a_cleanly_stopped_hasvrd_keeps_the_pets_going() {
        let (mut k, _dir, path) = keeper("stopped", true);
        let seq = k.ping(s(10.0));
        k.pong(seq);
        k.hasvrd_stopped();
        for t in [10.0, 11.0, 12.0, 13.0, 14.0] {
            k.tick(s(t), Duration::ZERO, FREE);
        }
        assert_eq!(bytes(&path), "......");
        k.close();
        assert_eq!(bytes(&path), "......V");
    }

    #[test]
    fn self_fence_stops_the_pets_and_never_disarms() {
        let (mut k, _dir, path) = keeper("fence", false);
        k.tick(s(10.0), Duration::ZERO, FREE);
        k.self_fence("stop of www failed (force_reboot)");
        k.self_fence("a second reason is not kept");
        for t in [11.0, 12.0, 13.0] {
            k.tick(s(t), Duration::ZERO, FREE);
        }
        let st = k.status(s(0.0));
        assert!(!st.petting);
        assert_eq!(
            st.self_fence.as_deref(),
            Some("stop of www failed (force_reboot)")
        );
        assert!(!st.armed_device, "a stand-in is never advertised");
        assert_eq!(st.timeout_s, 4);
        k.close();
        assert_eq!(bytes(&path), "..", "no pet after the self-fence, no `V`");
    }

    #[test]
    fn a_holder_without_the_right_is_petted_only_until_its_lease_runs_out() {
        let (mut k, dir, path) = keeper("lease", false);
        let holding = |entitled| Standing {
            entitled,
            holding: true,
        };
        k.tick(s(10.0), Duration::ZERO, holding(true));
        assert_eq!(k.status(s(10.0)).lease_left_ms, Some(6000));
        assert_eq!(k.status(s(10.0)).lease_s, 6);
        // The right lost at 11s: the lease ran from the last renewal (10s).
        for t in [11.0, 12.0, 13.0, 14.0, 15.0] {
            k.tick(s(t), Duration::ZERO, holding(false));
        }
        assert_eq!(
            bytes(&path),
            ".......",
            "the open, then pets from 10s to 15s"
        );
        k.tick(s(16.0), Duration::ZERO, holding(false));
        let st = k.status(s(16.0));
        assert!(!st.petting);
        assert_eq!(st.lease_left_ms, Some(0));
        assert!(st.withheld.unwrap().contains("lease ran out"));
        // Its services stopped (nothing held): the lease binds no more.
        k.tick(
            s(17.0),
            Duration::ZERO,
            Standing {
                entitled: false,
                holding: false,
            },
        );
        assert!(k.status(s(17.0)).petting);
        assert_eq!(k.status(s(17.0)).lease_left_ms, None);
        // A restarted hamond keeps the deadline written: holding, not
        // entitled, it is petted only until then.
        let lease = Lease::restore(dir.path().join("lease"), 1, LEASE);
        assert_eq!(lease.valid_until(), Some(s(16.0)));
        let mut again = Keeper::open(&path, W, false, lease).unwrap();
        again.tick(s(15.5), Duration::ZERO, holding(false));
        assert!(again.status(s(15.5)).petting);
        again.tick(s(16.0), Duration::ZERO, holding(false));
        assert!(!again.status(s(16.0)).petting);
        // Renewed: petted again.
        again.tick(s(16.5), Duration::ZERO, holding(true));
        assert!(again.status(s(16.5)).petting);
    }
}
