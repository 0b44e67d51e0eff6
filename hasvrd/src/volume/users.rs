//! Who keeps a mounted file system busy, and making them let go, as
//! `fuser -m` and `fuser -km` do: every process whose working directory,
//! root, executable, open file or memory-mapped file lies on the file
//! system (matched by device number) is a user.
//!
//! Signals go through a pidfd opened *before* the process is re-identified
//! by its start time, so a pid reused by an unrelated process in the
//! meantime is never signalled (plain kill(2) after the same check where
//! pidfds are missing, before Linux 5.3).

use super::{Error, blocking};
use crate::mountinfo::DevNo;
use crate::procfs;
use haschema::process::{pidfd_open, pidfd_send_signal};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;

/// Longest wait between SIGTERM and SIGKILL (half the release timeout when
/// that is shorter). By the time volumes are released the service's stop
/// script has run: what is left is stragglers (a shell with its working
/// directory there, a backup job), not the application.
pub const TERM_GRACE: Duration = Duration::from_secs(5);

/// Time between scans while waiting for users to go.
const POLL: Duration = Duration::from_millis(50);

/// One process that uses a file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub pid: i32,
    /// Its command name (`/proc/<pid>/comm`).
    pub name: String,
    /// Its state letter (`S` sleeping, `D` uninterruptible I/O, ...).
    pub state: char,
    /// The first use found: `cwd`, `root`, `exe`, `open file PATH`,
    /// `memory map PATH`.
    pub how: String,
    /// This process (hasvrd): never signalled.
    pub is_self: bool,
    /// Start time in clock ticks since boot: with the pid, the process's
    /// identity.
    start_time: u64,
}

impl fmt::Display for User {
    /// `pid 4242 (tail, open file /srv/data/log)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} ({}, {}", self.pid, self.name, self.how)?;
        match self.state {
            'D' => f.write_str(", in uninterruptible I/O")?,
            'T' | 't' => f.write_str(", stopped")?,
            _ => {}
        }
        if self.is_self {
            f.write_str(", hasvrd itself")?;
        }
        f.write_str(")")
    }
}

/// Several users, shown comma-separated (`no process` when empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users(pub Vec<User>);

impl fmt::Display for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no process");
        }
        for (i, u) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{u}")?;
        }
        Ok(())
    }
}

/// The device of what a `/proc` link points at (following it).
fn dev_of(link: &Path) -> Option<DevNo> {
    fs::metadata(link).ok().map(|m| DevNo::from_raw(m.dev()))
}

/// How process `pid` uses the file system `dev`, if it does.
fn use_of(proc_dir: &Path, dev: DevNo) -> Option<String> {
    for link in ["cwd", "root", "exe"] {
        if dev_of(&proc_dir.join(link)) == Some(dev) {
            return Some(link.to_owned());
        }
    }
    if let Ok(fds) = fs::read_dir(proc_dir.join("fd")) {
        for fd in fds.flatten() {
            if dev_of(&fd.path()) == Some(dev) {
                let target = fs::read_link(fd.path()).unwrap_or_else(|_| PathBuf::from("?"));
                return Some(format!("open file {}", target.display()));
            }
        }
    }
    let maps = fs::read_to_string(proc_dir.join("maps")).ok()?;
    for line in maps.lines() {
        // address perms offset dev inode path
        let mut f = line.split_ascii_whitespace();
        let (Some(map_dev), Some(inode)) = (f.nth(3), f.next()) else {
            continue;
        };
        if inode != "0" && DevNo::parse(map_dev, 16) == Some(dev) {
            let path: Vec<&str> = f.collect();
            return Some(format!("memory map {}", path.join(" ")));
        }
    }
    None
}

/// Every live process using the file system with device number `dev`,
/// hasvrd itself included (marked), in pid order.
pub fn scan(dev: DevNo) -> Vec<User> {
    let me = std::process::id() as i32;
    let mut users = Vec::new();
    for pid in procfs::pids() {
        // A zombie holds nothing; a process that vanished is no user.
        let Some(stat) = procfs::stat(pid).filter(|s| !s.is_zombie()) else {
            continue;
        };
        let dir = PathBuf::from(format!("/proc/{pid}"));
        let Some(how) = use_of(&dir, dev) else {
            continue;
        };
        let name = fs::read_to_string(dir.join("comm"))
            .map(|s| s.trim_end().to_owned())
            .unwrap_or_else(|_| "?".into());
        users.push(User {
            pid,
            name,
            state: stat.state,
            how,
            is_self: pid == me,
            start_time: stat.start_time,
        });
    }
    users.sort_by_key(|u| u.pid);
    users
}

/// Sends `signal` to `user` if it is still the same process (same pid and
/// start time). False when it is gone.
pub fn signal(user: &User, signal: Signal) -> io::Result<bool> {
    if user.is_self {
        return Ok(false);
    }
    let pidfd = match pidfd_open(user.pid) {
        Ok(fd) => Some(fd),
        Err(e) if e.raw_os_error() == Some(Errno::ESRCH as i32) => return Ok(false),
        Err(e) if e.raw_os_error() == Some(Errno::ENOSYS as i32) => None,
        Err(e) => return Err(e),
    };
    match procfs::stat(user.pid) {
        Some(st) if st.start_time == user.start_time && !st.is_zombie() => {}
        _ => return Ok(false),
    }
    let sent = match &pidfd {
        Some(fd) => pidfd_send_signal(fd, signal),
        None => nix::sys::signal::kill(nix::unistd::Pid::from_raw(user.pid), signal)
            .map_err(io::Error::from),
    };
    match sent {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(Errno::ESRCH as i32) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A process's identity across scans.
fn key(user: &User) -> (i32, u64) {
    (user.pid, user.start_time)
}

/// What [`release`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseReport {
    /// Users sent SIGTERM.
    pub terminated: Vec<User>,
    /// Users still there after the SIGTERM grace (or found after it), sent
    /// SIGKILL.
    pub killed: Vec<User>,
    /// From the first scan until no user was left.
    pub elapsed: Duration,
}

/// Ends every process using the file system `dev` mounted at
/// `mount_point`: SIGTERM first, SIGKILL to what is left after
/// `min(TERM_GRACE, timeout / 2)` (and to any user that appears after
/// that), until none is left or `timeout` has passed. hasvrd itself is
/// neither signalled nor waited for (the unmount then finds the file system
/// busy and names it).
pub async fn release(
    mount_point: &Path,
    dev: DevNo,
    timeout: Duration,
) -> Result<ReleaseReport, Error> {
    let start = Instant::now();
    let deadline = start + timeout;
    let term_end = start + TERM_GRACE.min(timeout / 2);
    let mut report = ReleaseReport::default();
    let mut termed: HashSet<(i32, u64)> = HashSet::new();
    let mut killed: HashSet<(i32, u64)> = HashSet::new();
    let mut failed: HashSet<(i32, u64)> = HashSet::new();
    loop {
        // hasvrd itself is not waited for: umount2 will say it is busy.
        let users: Vec<User> = blocking(move || scan(dev))
            .await?
            .into_iter()
            .filter(|u| !u.is_self)
            .collect();
        if users.is_empty() {
            report.elapsed = start.elapsed();
            return Ok(report);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::StillUsed {
                mount_point: mount_point.to_path_buf(),
                users: Users(users),
                waited: start.elapsed(),
            });
        }
        // SIGTERM to new users during the grace, SIGKILL to all after it.
        let round: Vec<(User, Signal)> = users
            .into_iter()
            .filter_map(|u| {
                if now >= term_end {
                    Some((u, Signal::SIGKILL))
                } else if termed.contains(&key(&u)) {
                    None
                } else {
                    Some((u, Signal::SIGTERM))
                }
            })
            .collect();
        let sent = blocking(move || {
            round
                .into_iter()
                .map(|(u, sig)| {
                    let r = signal(&u, sig);
                    (u, sig, r)
                })
                .collect::<Vec<_>>()
        })
        .await?;
        let mp = mount_point.display();
        for (user, sig, result) in sent {
            match result {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    if failed.insert(key(&user)) {
                        tracing::warn!("volume {mp}: cannot send {} to {user}: {e}", sig.as_str());
                    }
                    continue;
                }
            }
            if sig == Signal::SIGTERM {
                tracing::warn!("volume {mp}: SIGTERM to {user}, which uses it");
                termed.insert(key(&user));
                report.terminated.push(user);
            } else if killed.insert(key(&user)) {
                tracing::warn!("volume {mp}: SIGKILL to {user}, still using it");
                report.killed.push(user);
            }
        }
        tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_this_process_by_its_cwd_and_marks_it() {
        let cwd_dev = DevNo::from_raw(fs::metadata(".").unwrap().dev());
        let me = std::process::id() as i32;
        let users = scan(cwd_dev);
        let mine = users
            .iter()
            .find(|u| u.pid == me)
            .expect("this test's process");
        assert!(mine.is_self);
        assert_eq!(mine.how, "cwd");
        assert!(
            !signal(mine, Signal::SIGTERM).unwrap(),
            "never signals itself"
        );
        let shown = Users(vec![mine.clone()]).to_string();
        assert!(shown.contains("hasvrd itself"), "{shown}");
        assert_eq!(Users::default().to_string(), "no process");
    }
}
