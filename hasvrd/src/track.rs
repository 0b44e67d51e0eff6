//! Process tracking per service: every process a service's scripts start,
//! and everything those processes start in turn, so that a stop can kill
//! them all and prove that nothing is left (safety rule 7, "stopped means
//! proven stopped").
//!
//! Two modes, chosen by [`Tracker::for_service`]:
//!
//! * **cgroup v2** (the normal mode): one cgroup per service,
//!   `<cgroup2 mount>/hacluster/<service>`. [`crate::script::run`] starts each
//!   script *inside* it: the forked child writes `0` (itself) to the
//!   cgroup's `cgroup.procs`, through a file opened by the parent beforehand,
//!   before it calls `execve`, so no instruction of the script ever runs
//!   outside the cgroup, and neither does anything it forks. A daemon that
//!   double-forks and calls `setsid` leaves the script's process group and
//!   session, but never its cgroup: only root writing to `cgroup.procs`
//!   can move it out. [`Tracker::kill_all`] uses `cgroup.kill` (Linux 5.14),
//!   which the kernel applies atomically even to processes forking at that
//!   moment; on older kernels it sends SIGKILL to every listed pid until the
//!   cgroup is empty.
//!
//! * **process groups** (the fallback when no cgroup2 file system is mounted,
//!   or the service's cgroup cannot be created): every script is the leader
//!   of its own session and process group, and hasvrd makes itself a child
//!   subreaper (`PR_SET_CHILD_SUBREAPER`), so orphaned descendants of its
//!   scripts are re-parented to hasvrd rather than to init. A service's
//!   processes are those descended from hasvrd that are in one of the
//!   process groups of its scripts, or descended from such a process while
//!   their ancestry is intact. **In this mode a daemon that double-forks and
//!   calls `setsid` (or `setpgid`) escapes**: once its intermediate parent
//!   has exited, nothing ties it to the service any more. Daemons that
//!   double-fork without leaving the process group stay tracked.
//!
//! Zombies are not processes any more: they are not listed and do not keep
//! a tracker non-empty.

use crate::{mountinfo, procfs};
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The directory under the cgroup2 mount that holds one cgroup per service.
pub const SUBTREE: &str = "hacluster";

/// Longest service name a tracker accepts (a cgroup directory name).
pub const MAX_SERVICE_NAME: usize = 64;

/// How often [`Tracker::kill_all`] re-checks (and re-kills) while waiting.
const KILL_POLL: Duration = Duration::from_millis(10);

/// How a tracker finds a service's processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The service's own cgroup v2 directory.
    Cgroup(PathBuf),
    /// Process groups of its scripts, under hasvrd as child subreaper (see
    /// the module documentation for what can escape).
    ProcessGroup,
}

/// Why tracking, listing or killing failed.
#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    #[error(
        "invalid service name {0:?} for process tracking: use 1 to {MAX_SERVICE_NAME} of \
         A-Z a-z 0-9 _ . -, not starting with '.' or '-' nor with \"cgroup.\""
    )]
    InvalidName(String),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{} is not a cgroup v2 directory (no cgroup.procs in it)", .0.display())]
    NotCgroup(PathBuf),
    #[error("cannot become a child subreaper (PR_SET_CHILD_SUBREAPER): {0}")]
    Subreaper(Errno),
    #[error(
        "service {service}: {} process(es) still alive after {waited:?} of SIGKILL: pids {pids:?}",
        pids.len()
    )]
    Survivors {
        service: String,
        pids: Vec<i32>,
        waited: Duration,
    },
    #[error("service {service}: cannot remove cgroup {}: processes still in it: pids {pids:?}", path.display())]
    NotEmpty {
        service: String,
        path: PathBuf,
        pids: Vec<i32>,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> TrackError + 'a {
    move |source| TrackError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// What [`Tracker::kill_all`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillReport {
    /// The service's processes when the kill began (processes forked during
    /// the kill are killed too but may be missing here).
    pub pids: Vec<i32>,
    /// From the first SIGKILL until the tracker was empty.
    pub elapsed: Duration,
}

/// The processes of one service. Cheap to clone: clones share the service's
/// cgroup (or process-group set).
#[derive(Debug, Clone)]
pub struct Tracker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    service: String,
    /// Key of this tracker in [`GROUPS`] (process-group mode).
    id: u64,
    mode: Mode,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.mode == Mode::ProcessGroup {
            lock(&GROUPS).retain(|_, owner| *owner != self.id);
        }
    }
}

/// Process-group mode: the process groups of the scripts started by each
/// tracker (pgid -> tracker id). A new script's pid overwrites any old entry:
/// the kernel never hands out a pid still in use as a process group id, so
/// an older entry with that number names a group that had died out.
static GROUPS: Mutex<BTreeMap<i32, u64>> = Mutex::new(BTreeMap::new());

/// Scripts that [`crate::script::run`] started and has not reaped yet: the
/// zombie reaper of process-group mode must leave them to their `Child`.
static RUNNING: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Checks a service name for use as a cgroup directory name.
pub fn valid_service_name(name: &str) -> bool {
    (1..=MAX_SERVICE_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && !name.starts_with(['.', '-'])
        && !name.starts_with("cgroup.")
}

/// Where the cgroup v2 file system is mounted (the first `cgroup2` entry of
/// `/proc/self/mountinfo`), if anywhere: `/sys/fs/cgroup` on a pure v2
/// system, `/sys/fs/cgroup/unified` on a hybrid one.
pub fn cgroup2_mount() -> Option<PathBuf> {
    cgroup2_in(&mountinfo::read().ok()?)
}

/// The first `cgroup2` mount point in a mount table.
fn cgroup2_in(table: &[mountinfo::Entry]) -> Option<PathBuf> {
    let entry = table.iter().find(|e| e.fstype == "cgroup2")?;
    Some(entry.mount_point.clone())
}

impl Tracker {
    /// The tracker of `service` on node `node`: its cgroup
    /// `<cgroup2 mount>/hacluster/<node>/<service>` (created, with its
    /// parents, if missing; the node's name keeps the nodes of a test
    /// cluster on one kernel apart), or process-group mode when no
    /// cgroup2 is mounted or the cgroup cannot be created (logged as a
    /// warning: that mode can lose daemons that call `setsid`).
    ///
    /// Make one tracker per service and clone it: in process-group mode the
    /// set of groups lives in the tracker, so a second tracker made for the
    /// same name would not see the first one's scripts.
    pub fn for_service(node: &str, service: &str) -> Result<Tracker, TrackError> {
        if !valid_service_name(service) {
            return Err(TrackError::InvalidName(service.to_owned()));
        }
        if !valid_service_name(node) {
            return Err(TrackError::InvalidName(node.to_owned()));
        }
        let Some(mount) = cgroup2_mount() else {
            tracing::warn!(
                "service {service}: no cgroup2 file system mounted: tracking its processes by \
                 process group; a daemon that double-forks and calls setsid can escape a stop"
            );
            return Tracker::process_group(service);
        };
        match Tracker::cgroup(&mount.join(SUBTREE).join(node), service) {
            Ok(t) => Ok(t),
            Err(e) => {
                tracing::warn!(
                    "service {service}: {e}: tracking its processes by process group instead; \
                     a daemon that double-forks and calls setsid can escape a stop"
                );
                Tracker::process_group(service)
            }
        }
    }

    /// Cgroup mode with the service's cgroup at `parent/<service>`; `parent`
    /// must be inside a cgroup2 file system. Creates both if missing.
    pub fn cgroup(parent: &Path, service: &str) -> Result<Tracker, TrackError> {
        if !valid_service_name(service) {
            return Err(TrackError::InvalidName(service.to_owned()));
        }
        let dir = parent.join(service);
        let tracker = Tracker::new(service, Mode::Cgroup(dir));
        tracker.ensure_cgroup()?;
        Ok(tracker)
    }

    /// Process-group mode (see the module documentation), making this
    /// process a child subreaper.
    pub fn process_group(service: &str) -> Result<Tracker, TrackError> {
        if !valid_service_name(service) {
            return Err(TrackError::InvalidName(service.to_owned()));
        }
        static SUBREAPER: OnceLock<Result<(), Errno>> = OnceLock::new();
        (*SUBREAPER.get_or_init(|| nix::sys::prctl::set_child_subreaper(true)))
            .map_err(TrackError::Subreaper)?;
        Ok(Tracker::new(service, Mode::ProcessGroup))
    }

    fn new(service: &str, mode: Mode) -> Tracker {
        Tracker {
            inner: Arc::new(Inner {
                service: service.to_owned(),
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                mode,
            }),
        }
    }

    /// The service this tracker belongs to.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// How this tracker finds the service's processes.
    pub fn mode(&self) -> &Mode {
        &self.inner.mode
    }

    /// The service's cgroup directory (cgroup mode).
    pub fn cgroup_dir(&self) -> Option<&Path> {
        match &self.inner.mode {
            Mode::Cgroup(dir) => Some(dir),
            Mode::ProcessGroup => None,
        }
    }

    /// Creates the service's cgroup (and its parents) if missing and checks
    /// that it is one.
    fn ensure_cgroup(&self) -> Result<(), TrackError> {
        let Some(dir) = self.cgroup_dir() else {
            return Ok(());
        };
        fs::create_dir_all(dir).map_err(io_err("cannot create cgroup", dir))?;
        if !dir.join("cgroup.procs").is_file() {
            return Err(TrackError::NotCgroup(dir.to_path_buf()));
        }
        Ok(())
    }

    /// Opens what a child needs to join this tracker before `execve` (see
    /// [`SpawnHook::enter`]); re-creates the cgroup if it was removed.
    pub(crate) fn prepare_spawn(&self) -> Result<SpawnHook, TrackError> {
        let Some(dir) = self.cgroup_dir() else {
            return Ok(SpawnHook { procs: None });
        };
        self.ensure_cgroup()?;
        let path = dir.join("cgroup.procs");
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io_err("cannot open", &path))?;
        Ok(SpawnHook { procs: Some(file) })
    }

    /// Records a script just spawned (its pid is its process group id).
    /// The returned guard marks it reaped when dropped.
    pub(crate) fn spawned(&self, pid: i32) -> SpawnedGuard {
        if self.inner.mode == Mode::ProcessGroup {
            lock(&GROUPS).insert(pid, self.inner.id);
        }
        lock(&RUNNING).insert(pid);
        SpawnedGuard { pid }
    }

    /// The service's live processes (zombies excluded), in no particular
    /// order. In cgroup mode this includes nested cgroups a process made.
    pub fn pids(&self) -> Result<Vec<i32>, TrackError> {
        match &self.inner.mode {
            Mode::Cgroup(dir) => {
                let mut pids = Vec::new();
                cgroup_pids(dir, &mut pids)?;
                Ok(pids)
            }
            Mode::ProcessGroup => Ok(self.scan_groups()),
        }
    }

    /// True when the service has no live process.
    pub fn is_empty(&self) -> Result<bool, TrackError> {
        match &self.inner.mode {
            Mode::Cgroup(dir) => {
                let path = dir.join("cgroup.events");
                match fs::read_to_string(&path) {
                    Ok(events) => Ok(events.lines().any(|l| l == "populated 0")),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
                    Err(e) => Err(io_err("cannot read", &path)(e)),
                }
            }
            Mode::ProcessGroup => Ok(self.scan_groups().is_empty()),
        }
    }

    /// Sends SIGKILL to every process of the service, again and again, until
    /// none is left or `timeout` has passed (a process in uninterruptible
    /// sleep, say on a hung NFS server, dies only when its I/O ends). Only
    /// `Ok` proves the service's processes are gone.
    pub async fn kill_all(&self, timeout: Duration) -> Result<KillReport, TrackError> {
        let start = Instant::now();
        let pids = self.pids()?;
        loop {
            if self.is_empty()? {
                return Ok(KillReport {
                    pids,
                    elapsed: start.elapsed(),
                });
            }
            self.kill_once()?;
            if start.elapsed() >= timeout {
                if self.is_empty()? {
                    continue;
                }
                return Err(TrackError::Survivors {
                    service: self.inner.service.clone(),
                    pids: self.pids()?,
                    waited: start.elapsed(),
                });
            }
            tokio::time::sleep(KILL_POLL).await;
        }
    }

    /// One round of SIGKILL.
    fn kill_once(&self) -> Result<(), TrackError> {
        if let Mode::Cgroup(dir) = &self.inner.mode {
            let kill_file = dir.join("cgroup.kill");
            match OpenOptions::new().write(true).open(&kill_file) {
                Ok(mut f) => {
                    return f
                        .write_all(b"1")
                        .map_err(io_err("cannot write", &kill_file));
                }
                // Before Linux 5.14: no cgroup.kill, kill pid by pid below.
                Err(e) if e.kind() == io::ErrorKind::NotFound && dir.is_dir() => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(io_err("cannot open", &kill_file)(e)),
            }
        }
        for pid in self.pids()? {
            match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => {
                    return Err(TrackError::Io {
                        op: "cannot send SIGKILL to",
                        path: PathBuf::from(format!("/proc/{pid}")),
                        source: e.into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Removes the service's cgroup (and any cgroup nested in it) once it is
    /// empty: `NotEmpty` while a process is left. Removing a cgroup that does
    /// not exist succeeds; so does `remove` in process-group mode. The next
    /// script run re-creates the cgroup.
    pub fn remove(&self) -> Result<(), TrackError> {
        let Some(dir) = self.cgroup_dir() else {
            return Ok(());
        };
        match remove_cgroup_tree(dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) if e.raw_os_error() == Some(Errno::EBUSY as i32) => Err(TrackError::NotEmpty {
                service: self.inner.service.clone(),
                path: dir.to_path_buf(),
                pids: self.pids().unwrap_or_default(),
            }),
            Err(e) => Err(io_err("cannot remove cgroup", dir)(e)),
        }
    }

    /// Process-group mode: this tracker's live processes; reaps the zombies
    /// of its groups that were re-parented to this process.
    fn scan_groups(&self) -> Vec<i32> {
        let groups: HashSet<i32> = lock(&GROUPS)
            .iter()
            .filter(|(_, owner)| **owner == self.inner.id)
            .map(|(pgid, _)| *pgid)
            .collect();
        if groups.is_empty() {
            return Vec::new();
        }
        let table = proc_table();
        let me = std::process::id() as i32;
        let running = lock(&RUNNING).clone();
        let mut members = Vec::new();
        for (&pid, st) in &table {
            // Walk up to this process: a process not descended from it is
            // never ours, whatever its process group number says.
            let mut in_group = false;
            let mut cur = pid;
            let mut ours = false;
            for _ in 0..table.len() + 1 {
                let Some(s) = table.get(&cur) else { break };
                in_group |= groups.contains(&s.pgid);
                if s.ppid == me {
                    ours = true;
                    break;
                }
                cur = s.ppid;
            }
            if !(ours && in_group) {
                continue;
            }
            if st.is_zombie() {
                if st.ppid == me && !running.contains(&pid) {
                    let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
                }
            } else {
                members.push(pid);
            }
        }
        members
    }
}

/// The exit-time part of [`Tracker::spawned`].
#[derive(Debug)]
pub(crate) struct SpawnedGuard {
    pid: i32,
}

impl Drop for SpawnedGuard {
    fn drop(&mut self) {
        lock(&RUNNING).remove(&self.pid);
    }
}

/// What a freshly forked child does, before `execve`, to join its tracker.
#[derive(Debug)]
pub(crate) struct SpawnHook {
    /// The service cgroup's `cgroup.procs`, opened by the parent (close on
    /// exec, so the script never inherits it).
    procs: Option<File>,
}

impl SpawnHook {
    /// Runs in the forked child: moves it into the service's cgroup by
    /// writing `0` ("the writer") to `cgroup.procs`. Only `write(2)` on an
    /// already open descriptor: async-signal-safe, no allocation, so it is
    /// sound between `fork` and `execve` of a multi-threaded process. An
    /// error aborts the spawn: a script never runs untracked.
    pub(crate) fn enter(&self) -> io::Result<()> {
        if let Some(f) = &self.procs {
            match nix::unistd::write(f, b"0") {
                Ok(1) => {}
                Ok(_) => return Err(io::Error::from(Errno::EIO)),
                Err(e) => return Err(io::Error::from(e)),
            }
        }
        Ok(())
    }
}

/// Appends the pids in `dir`'s cgroup.procs and in those of nested cgroups.
fn cgroup_pids(dir: &Path, out: &mut Vec<i32>) -> Result<(), TrackError> {
    let procs = dir.join("cgroup.procs");
    match fs::read_to_string(&procs) {
        Ok(text) => out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        // A nested cgroup made "threaded" refuses cgroup.procs reads of its
        // domain parent only in odd setups; surface it.
        Err(e) => return Err(io_err("cannot read", &procs)(e)),
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("cannot list", dir)(e)),
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            cgroup_pids(&entry.path(), out)?;
        }
    }
    Ok(())
}

/// rmdir of nested cgroups, deepest first, then of `dir` (cgroup
/// directories hold only kernel files, which rmdir takes along).
fn remove_cgroup_tree(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)?.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup_tree(&entry.path())?;
        }
    }
    fs::remove_dir(dir)
}

/// Every process's stat (parent, process group, zombie state) by pid.
fn proc_table() -> HashMap<i32, procfs::Stat> {
    procfs::pids()
        .filter_map(|pid| Some((pid, procfs::stat(pid)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cgroup2_in_hybrid_and_unified_mountinfo() {
        let hybrid = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
            32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_in(&mountinfo::parse(hybrid)),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let unified = "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - \
            cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
        assert_eq!(
            cgroup2_in(&mountinfo::parse(unified)),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        let escaped = "1 2 0:3 / /mnt/my\\040cg rw - cgroup2 none rw\n";
        assert_eq!(
            cgroup2_in(&mountinfo::parse(escaped)),
            Some(PathBuf::from("/mnt/my cg"))
        );
        assert_eq!(
            cgroup2_in(&mountinfo::parse("1 2 0:3 / / rw - ext4 /dev/sda1 rw\n")),
            None
        );
    }

    #[test]
    fn service_names() {
        for ok in ["web", "my-db_1", "a.b", "A9"] {
            assert!(valid_service_name(ok), "{ok}");
        }
        let long = "x".repeat(MAX_SERVICE_NAME + 1);
        for bad in [
            "",
            ".",
            "..",
            ".x",
            "-x",
            "a/b",
            "a b",
            "cgroup.procs",
            &long,
        ] {
            assert!(!valid_service_name(bad), "{bad}");
        }
    }
}
