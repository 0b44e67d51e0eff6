//! hamond starts this node's hasvrd (`--hasvrd PATH`) and keeps it running:
//! a hasvrd that dies (crash, SIGKILL, exit) is started again at once the
//! first time, then after a growing pause while it keeps dying, with an
//! emergency log line (`haschema::process::restarts`). The restarted
//! hasvrd adopts what runs (its own reconcile), so a restart never restarts
//! a service. On hamond's shutdown hasvrd is asked to stop first (SIGTERM:
//! it stops and releases every service), and hamond leaves the cluster only
//! after it exited.
//!
//! A restarted hamond adopts the hasvrd that still runs rather than start a
//! second one: every hasvrd it starts is named in `STATE_DIR/hasvrd.pid`
//! (pid, start time, boot id), and a hasvrd found there alive, with that
//! start time on this boot, is watched through its pidfd like a child.
//! hamond gives the hasvrd it starts its own command line
//! ([`haschema::process::HamondCommand`]), so that hasvrd restarts a dead
//! hamond in turn (not under systemd, which restarts hamond itself).

use haschema::process::procfs;
use haschema::process::restarts::Restarts;
use haschema::process::watch::Watched;
use haschema::process::{HAMOND_ENV, HamondCommand};
use nix::sys::signal::Signal;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The file naming the running hasvrd, in the state dir.
pub const HASVRD_PID_FILE: &str = "hasvrd.pid";
/// How long a SIGKILLed hasvrd may take to be gone.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// How to start hasvrd.
pub struct HasvrdCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// How long hasvrd may take to stop every service at shutdown before
    /// it is killed.
    pub stop_timeout: Duration,
    /// Where the running hasvrd is named ([`HASVRD_PID_FILE`]).
    pub pid_file: PathBuf,
    /// This boot's id: a hasvrd named on another boot is long gone.
    pub boot: u32,
    /// Given to hasvrd so that it restarts a dead hamond; None under
    /// systemd.
    pub hamond: Option<HamondCommand>,
}

/// The supervisor's handle: ask it to stop hasvrd; the answer comes when
/// hasvrd has exited.
pub struct Supervisor {
    stop: mpsc::Sender<oneshot::Sender<()>>,
}

impl Supervisor {
    /// Adopts the hasvrd that runs, or starts one, and watches it.
    pub fn start(cmd: HasvrdCommand) -> Supervisor {
        let (stop, stops) = mpsc::channel(1);
        tokio::spawn(supervise(cmd, stops));
        Supervisor { stop }
    }

    /// Stops hasvrd (its services are stopped and released); resolves when
    /// it has exited.
    pub async fn stop(&self) {
        let (done, wait) = oneshot::channel();
        if self.stop.send(done).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn supervise(cmd: HasvrdCommand, mut stops: mpsc::Receiver<oneshot::Sender<()>>) {
    let mut restarts = Restarts::new("hasvrd");
    let mut running = adopt(&cmd);
    loop {
        let hasvrd = match running.take() {
            Some(hasvrd) => hasvrd,
            None => match spawn(&cmd) {
                Ok(hasvrd) => hasvrd,
                Err(e) => {
                    tracing::error!(
                        severity = "crit",
                        "cannot start hasvrd ({}): {e}; services are not run on this node until \
                         it starts (check that the program exists and runs)",
                        cmd.program.display()
                    );
                    let pause = restarts.record();
                    tokio::select! {
                        () = tokio::time::sleep(pause) => continue,
                        Some(done) = stops.recv() => { let _ = done.send(()); return; }
                    }
                }
            },
        };
        tokio::select! {
            how = hasvrd.exited() => {
                let pause = restarts.died(&how);
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    Some(done) = stops.recv() => {
                        forget(&cmd);
                        let _ = done.send(());
                        return;
                    }
                }
            }
            Some(done) = stops.recv() => {
                stop(&hasvrd, cmd.stop_timeout).await;
                forget(&cmd);
                let _ = done.send(());
                return;
            }
        }
    }
}

/// The hasvrd named in the pid file, if it still runs (a restarted hamond).
fn adopt(cmd: &HasvrdCommand) -> Option<Watched> {
    let text = std::fs::read_to_string(&cmd.pid_file).ok()?;
    let (pid, start_time, boot) = parse_pid_file(&text)?;
    if boot != cmd.boot {
        return None;
    }
    match Watched::adopt(pid, start_time) {
        Ok(Some(hasvrd)) => {
            tracing::info!(
                "adopted the running hasvrd (pid {pid}): its services keep running; it is \
                 restarted if it dies and stopped at shutdown as if this hamond had started it"
            );
            Some(hasvrd)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::error!(
                severity = "crit",
                "cannot watch the running hasvrd (pid {pid}): {e}; starting another one, which \
                 may conflict with it: stop hacluster, kill pid {pid} and start hacluster again"
            );
            None
        }
    }
}

/// `PID START_TIME BOOT`.
fn parse_pid_file(text: &str) -> Option<(i32, u64, u32)> {
    let mut f = text.split_ascii_whitespace();
    let parsed = (
        f.next()?.parse().ok()?,
        f.next()?.parse().ok()?,
        f.next()?.parse().ok()?,
    );
    f.next().is_none().then_some(parsed)
}

fn spawn(cmd: &HasvrdCommand) -> std::io::Result<Watched> {
    let mut command = Command::new(&cmd.program);
    command.args(&cmd.args).stdin(Stdio::null());
    // Never a stale one from the environment this hamond was started in.
    command.env_remove(HAMOND_ENV);
    if let Some(hamond) = &cmd.hamond {
        command.env(HAMOND_ENV, hamond.to_json());
    }
    let hasvrd = Watched::spawn(&mut command)?;
    let pid = hasvrd.pid();
    tracing::info!("started hasvrd (pid {pid})");
    // A hasvrd that exited already has no start time: nothing to adopt.
    if let Some(st) = procfs::stat(pid) {
        let text = format!("{pid} {} {}\n", st.start_time, cmd.boot);
        if let Err(e) = haschema::private_file::write(&cmd.pid_file, text.as_bytes()) {
            tracing::error!(
                severity = "crit",
                "cannot name hasvrd in {}: {e}; a restarted hamond would start a second \
                 hasvrd: make the state dir writable",
                cmd.pid_file.display()
            );
        }
    }
    Ok(hasvrd)
}

/// hasvrd is gone for good (hamond stops): nothing to adopt.
fn forget(cmd: &HasvrdCommand) {
    let _ = std::fs::remove_file(&cmd.pid_file);
}

/// SIGTERM, then SIGKILL after `timeout`.
async fn stop(hasvrd: &Watched, timeout: Duration) {
    tracing::info!("stopping hasvrd: it stops and releases every service on this node");
    if let Err(e) = hasvrd.signal(Signal::SIGTERM) {
        tracing::warn!("cannot send SIGTERM to hasvrd: {e}; it is killed at the timeout");
    }
    match tokio::time::timeout(timeout, hasvrd.exited()).await {
        Ok(how) => tracing::info!("hasvrd stopped ({how})"),
        Err(_) => {
            tracing::error!(
                severity = "crit",
                "hasvrd did not stop within {timeout:?}: killed; services it was stopping may \
                 still run here, and the peers will fence this node before taking them"
            );
            let _ = hasvrd.signal(Signal::SIGKILL);
            if tokio::time::timeout(KILL_WAIT, hasvrd.exited())
                .await
                .is_err()
            {
                tracing::error!(
                    severity = "crit",
                    "hasvrd (pid {}) is still there {KILL_WAIT:?} after SIGKILL (stuck in the \
                     kernel); leaving anyway: reboot this node",
                    hasvrd.pid()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_file_names_pid_start_time_and_boot() {
        assert_eq!(parse_pid_file("12 345 67\n"), Some((12, 345, 67)));
        assert_eq!(parse_pid_file("12 345"), None);
        assert_eq!(parse_pid_file("12 345 67 8"), None);
        assert_eq!(parse_pid_file("x 345 67"), None);
    }
}
