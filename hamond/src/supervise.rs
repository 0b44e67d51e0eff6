//! hamond starts this node's hasvrd (`--hasvrd PATH`) and keeps it running:
//! a hasvrd that dies (crash, SIGKILL, exit) is started again at once the
//! first time, then after a growing pause while it keeps dying, with an
//! emergency log line. The restarted hasvrd adopts what runs (its own
//! reconcile), so a restart never restarts a service. On hamond's shutdown
//! hasvrd is asked to stop first (SIGTERM: it stops and releases every
//! service), and hamond leaves the cluster only after it exited.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Deaths within [`FLAP_WINDOW`] before the pause grows and the log says
/// so at emergency level.
const FLAP_DEATHS: usize = 3;
const FLAP_WINDOW: Duration = Duration::from_secs(60);
/// Longest pause between two starts of a hasvrd that keeps dying.
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// How to start hasvrd.
pub struct HasvrdCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// How long hasvrd may take to stop every service at shutdown before
    /// it is killed.
    pub stop_timeout: Duration,
}

/// The supervisor's handle: ask it to stop hasvrd; the answer comes when
/// hasvrd has exited.
pub struct Supervisor {
    stop: mpsc::Sender<oneshot::Sender<()>>,
}

impl Supervisor {
    /// Starts hasvrd and watches it.
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
    let mut deaths: Vec<Instant> = Vec::new();
    loop {
        let mut child = match spawn(&cmd) {
            Ok(child) => child,
            Err(e) => {
                tracing::error!(
                    severity = "crit",
                    "cannot start hasvrd ({}): {e}; services are not run on this node until it starts",
                    cmd.program.display()
                );
                deaths.push(Instant::now());
                let pause = pause_after(&mut deaths);
                tokio::select! {
                    () = tokio::time::sleep(pause) => continue,
                    Some(done) = stops.recv() => { let _ = done.send(()); return; }
                }
            }
        };
        tracing::info!("started hasvrd (pid {:?})", child.id());
        tokio::select! {
            status = child.wait() => {
                let how = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                deaths.push(Instant::now());
                let pause = pause_after(&mut deaths);
                if deaths.len() >= FLAP_DEATHS {
                    tracing::error!(
                        severity = "emerg",
                        "hasvrd died again ({how}), {} times within {FLAP_WINDOW:?}; restarting it in \
                         {pause:?}; see its log lines above for why",
                        deaths.len()
                    );
                } else {
                    tracing::error!("hasvrd died ({how}); restarting it");
                }
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    Some(done) = stops.recv() => { let _ = done.send(()); return; }
                }
            }
            Some(done) = stops.recv() => {
                stop(&mut child, cmd.stop_timeout).await;
                let _ = done.send(());
                return;
            }
        }
    }
}

fn spawn(cmd: &HasvrdCommand) -> std::io::Result<Child> {
    Command::new(&cmd.program)
        .args(&cmd.args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
}

/// The pause before the next start: none for an occasional death, then
/// doubling from 1 s while deaths keep coming within the window.
fn pause_after(deaths: &mut Vec<Instant>) -> Duration {
    let now = Instant::now();
    deaths.retain(|&t| now.duration_since(t) < FLAP_WINDOW);
    match deaths.len() {
        0..FLAP_DEATHS => Duration::ZERO,
        n => {
            let doublings = u32::try_from(n - FLAP_DEATHS).unwrap_or(u32::MAX).min(5);
            (Duration::from_secs(1) * 2u32.pow(doublings)).min(MAX_PAUSE)
        }
    }
}

/// SIGTERM, then SIGKILL after `timeout`.
async fn stop(child: &mut Child, timeout: Duration) {
    tracing::info!("stopping hasvrd: it stops and releases every service on this node");
    if let Some(pid) = child.id() {
        let pid = nix::unistd::Pid::from_raw(pid as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    }
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => tracing::info!("hasvrd stopped ({status})"),
        Ok(Err(e)) => tracing::warn!("waiting for hasvrd: {e}"),
        Err(_) => {
            tracing::error!(
                severity = "crit",
                "hasvrd did not stop within {timeout:?}: killed; services it was stopping may \
                 still run here, and the peers will fence this node before taking them"
            );
            let _ = child.kill().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occasional_deaths_restart_at_once_repeated_ones_back_off() {
        let now = Instant::now();
        let mut deaths = vec![now];
        assert_eq!(pause_after(&mut deaths), Duration::ZERO);
        deaths.push(now);
        assert_eq!(pause_after(&mut deaths), Duration::ZERO);
        deaths.push(now);
        assert_eq!(pause_after(&mut deaths), Duration::from_secs(1));
        deaths.push(now);
        assert_eq!(pause_after(&mut deaths), Duration::from_secs(2));
        deaths.extend([now; 20]);
        assert_eq!(pause_after(&mut deaths), MAX_PAUSE);
    }
}
