//! The fail counts of this node's services, kept across hasvrd restarts
//! (a crash, a `kill -9`, hamond restarting it): each failure still counted
//! ([`hasvrd::service::Service::failure_times`]) is stored in a small file
//! of hasvrd's state directory, `failures.NODE`, one line per failure,
//! `SERVICE UNIX_MS` (its wall-clock time in milliseconds), written
//! atomically (temp file, fsync, rename: `haschema::private_file`) each time
//! a count changes (a failure, an expiry, a cleanup). A restarted hasvrd
//! reads it back, turns each time into its own monotonic clock and hands
//! them to the machines, which drop those older than `failure_timeout`, so
//! `migration_threshold` still applies.
//!
//! Also here: where `hactl service cleanup SERVICE NODE` acts
//! ([`cleanup_target`]).

use haschema::service::ServiceConfig;
use hasvrd::service::Time;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// The file for node `me` in `state_dir`.
pub fn path(state_dir: &Path, me: &str) -> PathBuf {
    state_dir.join(format!("failures.{me}"))
}

/// The daemon's clock origin: far enough in the past that a restored
/// failure still within the longest `failure_timeout` of `configs` has a
/// time on it (older ones are expired anyway; without a timeout a failure
/// counts until cleanup whatever its time).
pub fn origin(configs: &[Arc<ServiceConfig>]) -> Instant {
    let now = Instant::now();
    let back = configs
        .iter()
        .filter_map(|c| c.failure_timeout)
        .max()
        .unwrap_or_default();
    now.checked_sub(back).unwrap_or(now)
}

/// Milliseconds since the epoch, now.
fn wall_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The wall-clock time of `t`, given that it is `now` on the daemon's
/// clock and `wall_ms` on the wall clock.
fn to_wall_ms(t: Time, now: Time, wall_ms: u64) -> u64 {
    let age = u64::try_from(now.saturating_sub(t).as_millis()).unwrap_or(u64::MAX);
    wall_ms.saturating_sub(age)
}

/// The daemon's clock time of the wall-clock time `ms` (a time in the
/// future, after the wall clock was set back, counts as now; one before
/// the origin as the origin).
fn to_time(ms: u64, now: Time, wall_ms: u64) -> Time {
    now.saturating_sub(Duration::from_millis(wall_ms.saturating_sub(ms)))
}

/// Reads the failures stored in `path`, as wall-clock milliseconds per
/// service (empty when there is no file yet).
fn read(path: &Path) -> Result<BTreeMap<String, Vec<u64>>, String> {
    let lines = crate::service_lines::read(
        path,
        "the fail count file",
        "SERVICE UNIX_MS",
        "remove the file (the fail counts start from zero) or fix the line",
        |ms| ms.parse::<u64>().ok(),
    )?;
    let mut all: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (service, ms) in lines {
        all.entry(service).or_default().push(ms);
    }
    Ok(all)
}

/// The fail counts as last stored, and where.
pub struct Saved {
    path: PathBuf,
    /// Each service's failure times as last written (or read).
    times: BTreeMap<String, Vec<Time>>,
}

impl Saved {
    /// Reads `path` at `now` (the daemon's clock): the store, and each
    /// service's failure times on the daemon's clock. An unreadable file
    /// is an error logged by the caller; the counts then start from zero.
    pub fn load(path: PathBuf, now: Time) -> (Saved, Result<(), String>) {
        let wall = wall_now_ms();
        let (times, result) = match read(&path) {
            Ok(all) => {
                let times = all
                    .into_iter()
                    .map(|(service, ms)| {
                        let mut t: Vec<Time> = ms.iter().map(|&m| to_time(m, now, wall)).collect();
                        t.sort();
                        (service, t)
                    })
                    .collect();
                (times, Ok(()))
            }
            Err(e) => (BTreeMap::new(), Err(e)),
        };
        (Saved { path, times }, result)
    }

    /// The failure times of `service` read at start (oldest first).
    pub fn restored(&self, service: &str) -> Vec<Time> {
        self.times.get(service).cloned().unwrap_or_default()
    }

    /// `service` counts failures at `times` now (`now` on the daemon's
    /// clock): the file is written again if that changed. A failed write
    /// is logged with what to do, and tried again at the next change.
    pub fn note(&mut self, service: &str, times: impl Iterator<Item = Time>, now: Time) {
        let times: Vec<Time> = times.collect();
        let was = self.times.get(service).map_or(&[][..], Vec::as_slice);
        if was == times.as_slice() {
            return;
        }
        if times.is_empty() {
            self.times.remove(service);
        } else {
            self.times.insert(service.to_owned(), times);
        }
        if let Err(e) = self.write(now) {
            tracing::error!(
                "cannot write {}: {e}; make hasvrd's --state-dir writable (until then the fail \
                 counts here are lost if hasvrd restarts)",
                self.path.display()
            );
        }
    }

    fn write(&self, now: Time) -> std::io::Result<()> {
        let wall = wall_now_ms();
        let mut text = String::new();
        for (service, times) in &self.times {
            for &t in times {
                let _ = writeln!(text, "{service} {}", to_wall_ms(t, now, wall));
            }
        }
        haschema::private_file::write(&self.path, text.as_bytes())
    }
}

/// Where `hactl service cleanup SERVICE NODE` acts.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// On this node.
    Here,
    /// Forwarded to that node's hasvrd.
    Peer(String),
}

/// Where a cleanup of `service` (whose nodes are `nodes`) on `node` acts,
/// asked on `me` while `up` are the other nodes up; an error that says
/// what to do for a node that is not the service's or not up.
pub fn cleanup_target(
    service: &str,
    nodes: &[&str],
    me: &str,
    up: impl Fn(&str) -> bool,
    node: &str,
) -> Result<Target, String> {
    if !nodes.contains(&node) {
        return Err(format!(
            "{node} is not a node of {service} (its nodes: {}); name one of them, or leave NODE \
             out to clean up on every node",
            nodes.join(", ")
        ));
    }
    if node == me {
        Ok(Target::Here)
    } else if up(node) {
        Ok(Target::Peer(node.to_owned()))
    } else {
        Err(format!(
            "{node} is not up: its fail count of {service} cannot be reset from here; start \
             hacluster there, or run the cleanup on {node} itself"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Time {
        Duration::from_secs(secs)
    }

    #[test]
    fn times_survive_a_restart_on_a_new_clock() {
        let dir = hatests::scratch::ScratchDir::new("failures");
        let file = path(dir.path(), "alpha");
        let (mut saved, read) = Saved::load(file.clone(), s(100));
        assert_eq!(read, Ok(()), "no file: nothing counted");
        assert!(saved.restored("www").is_empty());
        saved.note("www", [s(40), s(90)].into_iter(), s(100));
        saved.note("db", [s(99)].into_iter(), s(100));
        // A new daemon whose clock started later: the same ages.
        let (again, read) = Saved::load(file.clone(), s(1000));
        assert_eq!(read, Ok(()));
        let www = again.restored("www");
        assert_eq!(www.len(), 2);
        // The wall clock moved on a little between the two reads.
        assert!(www[0] <= s(940) && www[0] >= s(930), "{www:?}");
        assert!(www[1] <= s(990) && www[1] >= s(980), "{www:?}");
        assert_eq!(again.restored("db").len(), 1);
        // A cleanup empties it.
        saved.note("www", std::iter::empty(), s(101));
        saved.note("db", std::iter::empty(), s(101));
        let (empty, _) = Saved::load(file, s(5));
        assert!(empty.restored("www").is_empty() && empty.restored("db").is_empty());
    }

    #[test]
    fn clock_conversions_clamp() {
        assert_eq!(to_wall_ms(s(90), s(100), 50_000), 40_000);
        assert_eq!(to_time(40_000, s(100), 50_000), s(90));
        // Older than the origin: the origin.
        assert_eq!(to_time(0, s(10), 50_000), s(0));
        // In the future (the wall clock went back): now.
        assert_eq!(to_time(60_000, s(10), 50_000), s(10));
    }

    #[test]
    fn a_garbled_file_is_an_error_that_says_what_to_do() {
        let dir = hatests::scratch::ScratchDir::new("failures");
        let file = path(dir.path(), "alpha");
        haschema::private_file::write(&file, b"www 12\nwww soon\n").unwrap();
        let (saved, read) = Saved::load(file, s(1));
        let e = read.unwrap_err();
        assert!(e.contains("line 2") && e.contains("remove the file"), "{e}");
        assert!(saved.restored("www").is_empty());
    }

    #[test]
    fn a_cleanup_acts_on_a_node_of_the_service_that_is_up() {
        let nodes = ["alpha", "beta", "gamma"];
        let up = |n: &str| n == "beta";
        let at = |node| cleanup_target("www", &nodes, "alpha", up, node);
        assert_eq!(at("alpha"), Ok(Target::Here));
        assert_eq!(at("beta"), Ok(Target::Peer("beta".into())));
        let e = at("gamma").unwrap_err();
        assert!(e.contains("gamma is not up"), "{e}");
        let e = at("delta").unwrap_err();
        assert!(
            e.contains("delta is not a node of www (its nodes: alpha, beta, gamma)"),
            "{e}"
        );
    }
}
