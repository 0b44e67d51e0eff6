//! hamond restarts itself to load a new cluster config: the same program
//! (`/proc/self/exe`) with the same arguments and environment, in the same
//! process, so its pid stays what hasvrd, systemd and the pid file know.
//! Like a restart after a crash, it leaves nothing: no leave is sent (the
//! peers see a new incarnation, and the services keep their locks), hasvrd
//! keeps running and is adopted again, the watchdog stays armed until the
//! new hamond opens it, and every file and socket, opened close-on-exec,
//! is closed by the kernel.

use std::os::unix::process::CommandExt as _;

/// Replaces this process with a fresh hamond. Returns only if that failed.
pub fn reexec() -> std::io::Error {
    let mut args = std::env::args_os();
    let mut cmd = std::process::Command::new("/proc/self/exe");
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    cmd.args(args).exec()
}
