//! hasvrd's half of the mutual supervision: the hamond that started it
//! (named, with its command line, in `HACLUSTER_HAMOND`) is watched through
//! its pidfd; when it dies (SIGKILL, crash, exit) it is started again at
//! once, then with a growing pause and an emergency log if it keeps dying
//! (`haschema::process::restarts`). The new hamond adopts this hasvrd, and
//! this hasvrd's link reconnects to it; services keep running. Without the
//! variable (hasvrd started by hand, or hamond run by systemd, which
//! restarts it itself) hamond is not watched.

use haschema::process::restarts::Restarts;
use haschema::process::watch::Watched;
use haschema::process::{HAMOND_ENV, HamondCommand};
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};

/// The hamond to supervise, from the environment, which loses the variable
/// (the services' scripts never see it). Call before any thread starts.
pub fn from_env() -> Result<Option<HamondCommand>, String> {
    let Some(value) = std::env::var_os(HAMOND_ENV) else {
        return Ok(None);
    };
    // SAFETY: called first thing in main, before any other thread exists
    // that could read the environment.
    unsafe { std::env::remove_var(HAMOND_ENV) };
    value
        .to_str()
        .ok_or_else(|| "not UTF-8".to_owned())
        .and_then(HamondCommand::from_json)
        .map(Some)
        .map_err(|e| {
            format!(
                "{HAMOND_ENV}: {e}; it is set by hamond for the hasvrd it starts: do not set it \
                 by hand"
            )
        })
}

/// Watches hamond, and starts it again whenever it dies, for hasvrd's life.
pub async fn keep_running(cmd: HamondCommand) {
    let mut restarts = Restarts::new("hamond");
    let mut watched = match Watched::parent(cmd.pid) {
        Ok(Some(hamond)) => Some(hamond),
        Ok(None) => {
            restarts.died(&format!("pid {} exited before hasvrd started", cmd.pid));
            None
        }
        Err(e) => {
            tracing::error!(
                severity = "crit",
                "cannot watch hamond (pid {}): {e}; a crashed hamond will not be restarted \
                 (pidfds need Linux 5.3): restart hacluster by hand if it dies",
                cmd.pid
            );
            return;
        }
    };
    loop {
        if let Some(hamond) = watched.take() {
            let how = hamond.exited().await;
            tokio::time::sleep(restarts.died(&how)).await;
        }
        watched = match Watched::spawn(
            Command::new(&cmd.argv[0])
                .args(&cmd.argv[1..])
                .stdin(Stdio::null())
                .process_group(0),
        ) {
            Ok(hamond) => {
                tracing::info!(
                    "started hamond (pid {}): it adopts this hasvrd",
                    hamond.pid()
                );
                Some(hamond)
            }
            Err(e) => {
                tracing::error!(
                    severity = "crit",
                    "cannot start hamond ({}): {e}; this node is silent to its peers until it \
                     runs (check the program), retrying",
                    cmd.argv[0]
                );
                tokio::time::sleep(restarts.record()).await;
                None
            }
        };
    }
}
