//! A daemon watched through its pidfd: one the caller started (a child,
//! reaped here when it exits, its exit status reported) or one it adopted
//! (found running, identified by pid and start time; its status is not
//! ours to read). Either way [`Watched::exited`] resolves when it is gone,
//! and signals reach that very process, never a reused pid.

use super::{pidfd_open, pidfd_send_signal, procfs};
use nix::sys::signal::Signal;
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use std::io;
use std::os::fd::{AsFd as _, OwnedFd};
use std::process::Command;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A process watched through its pidfd.
pub struct Watched {
    pid: i32,
    fd: AsyncFd<OwnedFd>,
    /// Started by this process: reaped here.
    child: bool,
}

impl Watched {
    /// Starts `cmd` and watches it (needs a tokio runtime).
    pub fn spawn(cmd: &mut Command) -> io::Result<Watched> {
        let child = cmd.spawn()?;
        let pid = child.id() as i32;
        // Dropping a std Child neither waits nor kills: the unreaped child
        // keeps its pid until `exited` reaps it, so the pidfd is its own.
        drop(child);
        let watched = pidfd_open(pid).and_then(|fd| Watched::register(pid, fd, true));
        if watched.is_err() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        }
        watched
    }

    /// Adopts `pid` if it is still the process that started at
    /// `start_time` (clock ticks since boot, `/proc/<pid>/stat`) and has not
    /// exited; None when it is gone. Still this process's child (this
    /// process re-executed itself), it is reaped when it exits.
    pub fn adopt(pid: i32, start_time: u64) -> io::Result<Option<Watched>> {
        // The pidfd first, then the identity check: a pid reused after the
        // check could not slip in.
        let fd = match pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(nix::libc::ESRCH) => return Ok(None),
            Err(e) => return Err(e),
        };
        match procfs::stat(pid) {
            Some(st) if st.start_time == start_time && !st.is_zombie() => {
                let child = st.ppid == std::process::id() as i32;
                Watched::register(pid, fd, child).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Watches this process's parent, `pid`; None when the parent is
    /// another process already (`pid` exited and this one was re-parented).
    pub fn parent(pid: i32) -> io::Result<Option<Watched>> {
        let fd = match pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(nix::libc::ESRCH) => return Ok(None),
            Err(e) => return Err(e),
        };
        if nix::unistd::getppid().as_raw() != pid {
            return Ok(None);
        }
        Watched::register(pid, fd, false).map(Some)
    }

    fn register(pid: i32, fd: OwnedFd, child: bool) -> io::Result<Watched> {
        // SAFETY: an OwnedFd is a valid, open descriptor that only its owner
        // closes, and its raw value never changes; the AsyncFd owns it from
        // here on.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Watched { pid, fd, child })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `signal`; Ok also when the process has just exited.
    pub fn signal(&self, signal: Signal) -> io::Result<()> {
        match pidfd_send_signal(self.fd.get_ref(), signal) {
            Err(e) if e.raw_os_error() != Some(nix::libc::ESRCH) => Err(e),
            _ => Ok(()),
        }
    }

    /// Resolves once the process has exited (reaping it if it is a child);
    /// says how it ended.
    pub async fn exited(&self) -> String {
        if let Err(e) = self.fd.readable().await {
            // Never seen: a pidfd is always pollable. Waiting for ever is
            // safer than a restart next to a live daemon.
            tracing::error!(
                severity = "crit",
                "cannot watch pid {} ({e}): its death will not be noticed; restart hacluster",
                self.pid
            );
            return std::future::pending().await;
        }
        if !self.child {
            return format!("pid {} exited", self.pid);
        }
        match waitid(Id::PIDFd(self.fd.get_ref().as_fd()), WaitPidFlag::WEXITED) {
            Ok(WaitStatus::Exited(_, code)) => {
                format!("pid {} exited with status {code}", self.pid)
            }
            Ok(WaitStatus::Signaled(_, signal, _)) => {
                format!("pid {} killed by {signal}", self.pid)
            }
            Ok(other) => format!("pid {}: {other:?}", self.pid),
            // Reaped elsewhere (a subreaper's sweep): gone all the same.
            Err(e) => format!("pid {} exited ({e})", self.pid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_child_is_reaped_with_its_status() {
        runtime().block_on(async {
            let w = Watched::spawn(Command::new("sh").args(["-c", "exit 3"])).unwrap();
            assert!(w.exited().await.ends_with("exited with status 3"));
            assert!(procfs::stat(w.pid()).is_none(), "reaped");
            let w = Watched::spawn(Command::new("sleep").arg("60")).unwrap();
            w.signal(Signal::SIGKILL).unwrap();
            assert!(w.exited().await.ends_with("killed by SIGKILL"));
        });
    }

    #[test]
    fn adoption_checks_the_start_time() {
        runtime().block_on(async {
            let mut child = Command::new("sleep").arg("60").spawn().unwrap();
            let pid = child.id() as i32;
            let start = procfs::stat(pid).unwrap().start_time;
            assert!(Watched::adopt(pid, start + 1).unwrap().is_none());
            let w = Watched::adopt(pid, start).unwrap().expect("adopted");
            w.signal(Signal::SIGKILL).unwrap();
            // Still this process's child (as hasvrd is after hamond
            // re-executed itself): reaped, so no zombie is left.
            let how = tokio::time::timeout(Duration::from_secs(10), w.exited()).await;
            assert_eq!(how.unwrap(), format!("pid {pid} killed by SIGKILL"));
            assert!(child.try_wait().is_err(), "reaped already");
            assert!(Watched::adopt(pid, start).unwrap().is_none());
        });
    }

    #[test]
    fn the_parent_is_watched_only_while_it_is_the_parent() {
        runtime().block_on(async {
            let parent = nix::unistd::getppid().as_raw();
            assert_eq!(Watched::parent(parent).unwrap().unwrap().pid(), parent);
            let me = std::process::id() as i32;
            assert!(Watched::parent(me).unwrap().is_none());
        });
    }
}
