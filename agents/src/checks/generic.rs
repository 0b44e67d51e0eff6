//! `generic`: a process is alive, found by its pid file and/or its name,
//! and optionally a TCP port accepts connections.

use super::Check;
use hasvrd::procfs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The generic agent's flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Generic {
    /// A file holding the pid of the application's main process (its first
    /// word); that process must exist and not be a zombie.
    #[arg(long, value_name = "FILE")]
    pub pidfile: Option<PathBuf>,
    /// A process of this name must exist: the name `ps -e` shows
    /// (/proc/PID/comm, at most 15 characters).
    #[arg(long, value_name = "NAME")]
    pub process: Option<String>,
    /// An address that must accept a TCP connection, HOST:PORT (the
    /// connection is closed at once).
    #[arg(long, value_name = "HOST:PORT")]
    pub tcp: Option<String>,
}

impl Check for Generic {
    const ABOUT: &'static str = "Watches a generic application: its process is alive (pid file and/or process name), \
         and optionally a TCP port accepts connections.";
    const AFTER_HELP: &'static str = "Give at least one of --pidfile, --process and --tcp; \
         every one given must pass.";

    fn validate(&self) -> Result<(), String> {
        if self.pidfile.is_none() && self.process.is_none() && self.tcp.is_none() {
            return Err("nothing to check: give --pidfile, --process or --tcp".to_owned());
        }
        match &self.process {
            Some(name) if name.is_empty() || name.len() > 15 || name.contains('/') => Err(format!(
                "--process {name:?}: a process name is 1 to 15 characters without '/', as `ps -e` \
                 shows it"
            )),
            _ => Ok(()),
        }
    }

    async fn check(&self, _timeout: Duration) -> Result<(), String> {
        if let Some(file) = &self.pidfile {
            pid_alive(file)?;
        }
        if let Some(name) = &self.process
            && !procfs::pids().any(|pid| is_named(pid, name))
        {
            return Err(format!("no process named {name}"));
        }
        if let Some(addr) = &self.tcp {
            tokio::net::TcpStream::connect(addr.as_str())
                .await
                .map_err(|e| format!("no TCP connection to {addr}: {e}"))?;
        }
        Ok(())
    }
}

/// Whether `pid` is a live process called `name`.
fn is_named(pid: i32, name: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim_end_matches('\n') == name)
        && procfs::stat(pid).is_some_and(|s| !s.is_zombie())
}

/// The pid file names a live process.
fn pid_alive(file: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read the pid file {}: {e}", file.display()))?;
    let pid: i32 = text
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .filter(|&pid| pid > 0)
        .ok_or_else(|| format!("the pid file {} holds no pid", file.display()))?;
    match procfs::stat(pid) {
        Some(stat) if !stat.is_zombie() => Ok(()),
        Some(_) => Err(format!(
            "process {pid} (from {}) is a zombie",
            file.display()
        )),
        None => Err(format!("process {pid} (from {}) is gone", file.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_found_by_pid_and_name() {
        let dir = std::env::temp_dir().join(format!("haagents-generic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pid");
        std::fs::write(&file, format!("{}\n", std::process::id())).unwrap();
        assert_eq!(pid_alive(&file), Ok(()));
        std::fs::write(&file, "none").unwrap();
        assert!(pid_alive(&file).unwrap_err().contains("holds no pid"));
        std::fs::remove_dir_all(&dir).unwrap();
        let me = std::fs::read_to_string("/proc/self/comm").unwrap();
        let pid = std::process::id() as i32;
        assert!(is_named(pid, me.trim_end()));
        assert!(!is_named(pid, "no-such-name"));
    }
}
