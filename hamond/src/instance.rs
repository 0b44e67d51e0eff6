//! Never two hamonds for one state dir: hamond holds an exclusive flock on
//! `STATE_DIR/hamond.pid` for its whole life and writes its pid there (how
//! tests, the rc script and the operator find a hamond that hasvrd
//! restarted), and removes the file when it exits (a crash leaves it, with
//! a dead pid). A second hamond finds the lock taken and exits with a
//! message naming the first.

use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// The lock file in the state dir.
pub const PID_FILE: &str = "hamond.pid";

/// The held lock; released when hamond exits (or this is dropped, which
/// also removes the file).
pub struct Instance {
    path: PathBuf,
    _lock: Flock<File>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        // Still locked here: a hamond starting now either finds it locked
        // or creates a new file.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Takes the lock of `state_dir` and writes this process's pid in it.
pub fn lock(state_dir: &Path) -> Result<Instance, String> {
    let path = state_dir.join(PID_FILE);
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    std::fs::create_dir_all(state_dir).map_err(|e| fail(&e))?;
    // Opened close-on-exec (std's default): hasvrd and helpers never
    // inherit the lock.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(&path)
        .map_err(|e| fail(&e))?;
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(format!(
                "another hamond (pid {}) runs with the state dir {}: only one hamond may run per \
                 node; stop that one first (or give this one its own --state-dir)",
                pid.trim(),
                state_dir.display()
            ));
        }
        Err((_, e)) => return Err(fail(&e)),
    };
    lock.set_len(0)
        .and_then(|()| lock.rewind())
        .and_then(|()| writeln!(lock, "{}", std::process::id()))
        .map_err(|e| fail(&e))?;
    Ok(Instance { path, _lock: lock })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_instance_is_refused_until_the_first_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path()).unwrap();
        let written = std::fs::read_to_string(dir.path().join(PID_FILE)).unwrap();
        assert_eq!(written, format!("{}\n", std::process::id()));
        let err = lock(dir.path()).err().unwrap();
        let me = std::process::id();
        assert!(err.contains(&format!("another hamond (pid {me})")), "{err}");
        drop(first);
        assert!(!dir.path().join(PID_FILE).exists(), "removed at exit");
        drop(lock(dir.path()).unwrap());
    }
}
