//! Processes as the daemons see each other (with the `daemon` feature):
//! the fields of `/proc/<pid>/stat` that identify a process ([`procfs`]),
//! pidfds ([`pidfd_open`], [`pidfd_send_signal`]), a daemon watched through
//! its pidfd whether it is a child or was adopted ([`watch`]), the backoff
//! of a supervisor whose daemon keeps dying ([`restarts`]), how hamond
//! tells the hasvrd it starts how to start hamond again ([`HamondCommand`]),
//! and how a daemon restarts itself in place to load a new cluster config
//! ([`reexec`]).

pub mod procfs;
pub mod restarts;
pub mod watch;

use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use std::io;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

/// Replaces this process with a fresh copy of its program, same arguments
/// and environment, same pid (what the other daemon, systemd and the pid
/// files know). The program is run by its path, so that the process keeps
/// its name (`pgrep hamond`); `/proc/self/exe` only if that path is gone
/// (the file was replaced). Like a restart after a crash it leaves nothing
/// behind to clean: every file and socket, opened close-on-exec, is closed
/// by the kernel, and the services keep running to be adopted. Returns
/// only if that failed.
pub fn reexec() -> io::Error {
    use std::os::unix::process::CommandExt as _;
    let me = std::path::Path::new("/proc/self/exe");
    let program = std::fs::read_link(me)
        .ok()
        .filter(|p| p.is_file())
        .unwrap_or_else(|| me.to_path_buf());
    let mut args = std::env::args_os();
    let mut cmd = std::process::Command::new(program);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    cmd.args(args).exec()
}

/// The environment variable through which hamond gives the hasvrd it
/// starts a [`HamondCommand`] (JSON).
pub const HAMOND_ENV: &str = "HACLUSTER_HAMOND";

/// What hasvrd needs to supervise the hamond that started it: its pid (it
/// is hasvrd's parent) and the command line that starts it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HamondCommand {
    pub pid: i32,
    /// Program (resolved when hamond started) then arguments.
    pub argv: Vec<String>,
}

impl HamondCommand {
    /// The value of [`HAMOND_ENV`].
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the value of [`HAMOND_ENV`].
    pub fn from_json(text: &str) -> Result<HamondCommand, String> {
        let cmd: HamondCommand = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if cmd.argv.is_empty() {
            return Err("no program to start hamond with".into());
        }
        Ok(cmd)
    }
}

/// pidfd_open(2) (Linux 5.3).
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::from(Errno::EBADF))?;
    // SAFETY: the kernel just returned this descriptor to us, and nothing
    // else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// pidfd_send_signal(2), no siginfo.
pub fn pidfd_send_signal(fd: &OwnedFd, signal: Signal) -> io::Result<()> {
    // SAFETY: a valid descriptor, a signal number, a null siginfo (allowed:
    // the kernel fills in a default one) and no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            signal as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hamond_command_round_trips_as_json() {
        let cmd = HamondCommand {
            pid: 42,
            argv: vec!["/usr/sbin/hamond".into(), "--node".into(), "a b".into()],
        };
        assert_eq!(HamondCommand::from_json(&cmd.to_json()), Ok(cmd));
        let empty = r#"{"pid":1,"argv":[]}"#;
        assert!(HamondCommand::from_json(empty).is_err());
    }
}
