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
//! Leases: this node keeps no lease deadlines yet (the lock service has no
//! lease expiry), so every check passes `leases_valid_until: None`; the
//! gate's lease condition is wired once leases exist.
//!
//! [`Keeper::self_fence`] (a stop failed with `force_reboot`, safety rule 7)
//! stops the pets for good, and [`Keeper::close`] then leaves the watchdog
//! armed: the node resets within W. hamond never calls `reboot(2)`.

use super::{Check, GateLimits, PetGate, Verdict, Watchdog, Withheld, pet_interval};
use haschema::ctl::WatchdogStatus;
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
}

impl Keeper {
    /// Opens the watchdog at `device` asking for `timeout` (the device may
    /// round it: [`Keeper::timeout`] is the one read back). With
    /// `hasvrd_supervised`, hasvrd must answer pings within the gate's
    /// deadline; without (hamond runs no hasvrd), its health is not asked.
    pub fn open(
        device: &Path,
        timeout: Duration,
        hasvrd_supervised: bool,
    ) -> std::io::Result<Keeper> {
        let wd = Watchdog::open(device, timeout)?;
        Ok(Keeper::new(wd, hasvrd_supervised))
    }

    fn new(wd: Watchdog, hasvrd_supervised: bool) -> Keeper {
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
        }
    }

    /// The watchdog timeout W read back from the device.
    pub fn timeout(&self) -> Duration {
        self.wd.timeout()
    }

    /// How often to tick.
    pub fn interval(&self) -> Duration {
        pet_interval(self.wd.timeout())
    }

    /// Logs what was opened, once at start.
    pub fn log_opened(&self) {
        let w = self.wd.timeout().as_secs();
        let peers = if self.wd.is_reliable() {
            "peers may rely on it"
        } else {
            "not advertised to peers: fencing stays required"
        };
        let hasvrd = match self.gate.limits().other_daemon_deadline {
            Some(d) => format!("hasvrd must answer within {d:?}"),
            None => "hasvrd is not supervised by hamond: its health is not checked".to_owned(),
        };
        tracing::info!(
            "watchdog {}: {}, timeout W = {w}s (read back), petted every {:?} while the loop is \
             on time and {hasvrd}; {peers}",
            self.wd.path().display(),
            self.wd.kind(),
            self.interval()
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

    /// One tick at `now`, `lateness` after it was due: asks the gate and
    /// pets when it says so.
    pub fn tick(&mut self, now: Time, lateness: Duration) {
        let verdict = self.gate.check(Check {
            now,
            timer_lateness: lateness,
            // No lease deadlines on this node yet (see the module doc).
            leases_valid_until: None,
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

    /// For `hactl status`.
    pub fn status(&self) -> WatchdogStatus {
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(4);

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
        let k = Keeper::open(&path, W, hasvrd).unwrap();
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
        k.tick(s(10.0), Duration::ZERO);
        assert!(!k.status().petting);
        assert!(k.status().withheld.unwrap().contains("hasvrd"));
        k.pong(first);
        let mut t = 11.0;
        for _ in 0..3 {
            let seq = k.ping(s(t));
            k.tick(s(t), Duration::ZERO);
            k.pong(seq);
            t += 1.0;
        }
        assert_eq!(bytes(&path), "....");
        // hasvrd goes silent: healthy as of the last answered ping (at
        // 13s) for 2s more, then withheld.
        for _ in 0..4 {
            k.ping(s(t));
            k.tick(s(t), Duration::ZERO);
            t += 1.0;
        }
        assert_eq!(bytes(&path), "......", "pets at 14s and 15s, none after");
        let st = k.status();
        assert!(!st.petting);
        assert!(st.withheld.unwrap().contains("hasvrd"), "{:?}", k.status());
    }

    #[test]
    fn an_answer_counts_from_when_its_ping_was_sent() {
        let (mut k, _dir, path) = keeper("sent", true);
        let old = k.ping(s(10.0));
        k.ping(s(11.0));
        // The answer to the 10s ping arrives late, at 13s: 3s old, beyond
        // the 2s deadline.
        k.pong(old);
        k.tick(s(13.0), Duration::ZERO);
        assert!(!k.status().petting);
        // Unknown or already answered numbers change nothing.
        k.pong(old);
        k.pong(999);
        k.tick(s(13.5), Duration::ZERO);
        assert_eq!(bytes(&path), ".");
    }

    #[test]
    fn without_a_supervised_hasvrd_a_late_tick_still_withholds() {
        let (mut k, _dir, path) = keeper("late", false);
        k.tick(s(10.0), Duration::ZERO);
        assert!(k.status().petting);
        k.tick(s(11.0), Duration::from_millis(1500));
        let st = k.status();
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
            k.tick(s(t), Duration::ZERO);
        }
        assert_eq!(bytes(&path), "......");
        k.close();
        assert_eq!(bytes(&path), "......V");
    }

    #[test]
    fn self_fence_stops_the_pets_and_never_disarms() {
        let (mut k, _dir, path) = keeper("fence", false);
        k.tick(s(10.0), Duration::ZERO);
        k.self_fence("stop of www failed (force_reboot)");
        k.self_fence("a second reason is not kept");
        for t in [11.0, 12.0, 13.0] {
            k.tick(s(t), Duration::ZERO);
        }
        let st = k.status();
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
}
