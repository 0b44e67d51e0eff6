//! [`Lease`]: this node's lease (safety rule 3), the deadline on
//! CLOCK_BOOTTIME until which it may keep its services running without
//! having the right to hold them again.
//!
//! The right is decided by the daemon: a node has it while it is not
//! isolated (it sees a peer or reaches a ping address) and, with three or
//! more nodes, while it is a member of an agreed view with quorum. Each
//! time it has it, [`Lease::renew`] moves the deadline to `now + L`
//! (`[watchdog] lease`). Losing the right, the node stops its services;
//! the watchdog is petted only while the services it still holds are
//! within the deadline ([`super::Keeper`]), so a node that cannot stop them
//! in time is reset within W of the deadline.
//!
//! The deadline survives a hamond restart: it is kept in a small file of
//! the state directory with the OS boot it was taken on, written whenever
//! it moved a quarter of L past the one written (so the file is at most
//! that much behind: a restarted hamond may be reset earlier, never
//! later). A restarted hamond on the same boot starts from the written
//! deadline and pets past it only once it has the right again; on another
//! boot (CLOCK_BOOTTIME started again) the file means nothing.
//!
//! This lease binds only this node: no peer relies on it instead of
//! fencing (the taker's side of rule 3's lease path is off), so a lost
//! holder is still fenced.

use litecloud::Time;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file's name in the state directory.
pub const LEASE_FILE: &str = "lease";

/// What the file holds (JSON).
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    /// The OS boot the deadline was taken on.
    boot: u32,
    /// The deadline, milliseconds on CLOCK_BOOTTIME (rounded down).
    valid_until_ms: u64,
}

/// This node's lease. See the [module](self) documentation.
#[derive(Debug)]
pub struct Lease {
    length: Duration,
    valid_until: Option<Time>,
    /// The deadline the file holds (this boot), if any.
    stored: Option<Time>,
    file: PathBuf,
    boot: u32,
    /// The last write failed (logged once until one succeeds).
    failing: bool,
}

impl Lease {
    /// A lease of `length` kept in `file`, starting from the deadline the
    /// file holds when it was written on this boot (`boot`).
    pub fn restore(file: PathBuf, boot: u32, length: Duration) -> Lease {
        let stored = read(&file, boot);
        if let Some(until) = stored {
            tracing::info!(
                "lease: the deadline kept from before this start is {until:?} (boot time); \
                 services still held here must be renewed or stopped by then"
            );
        }
        Lease {
            length,
            valid_until: stored,
            stored,
            file,
            boot,
            failing: false,
        }
    }

    /// The lease's length L.
    pub fn length(&self) -> Duration {
        self.length
    }

    /// The deadline; None before this node first had the right (since
    /// boot, or the file was lost).
    pub fn valid_until(&self) -> Option<Time> {
        self.valid_until
    }

    /// The node has the right to hold services at `now`: the lease runs
    /// until `now + L`. The file follows when that is a quarter of L past
    /// what it holds, or before it (a shorter L since the last start).
    pub fn renew(&mut self, now: Time) {
        let until = now + self.length;
        self.valid_until = Some(until);
        let write = match self.stored {
            None => true,
            Some(stored) => until < stored || until - stored >= self.length / 4,
        };
        if write {
            self.store(until);
        }
    }

    /// Writes `until` to the file (atomically; logged once if it fails).
    fn store(&mut self, until: Time) {
        let data = serde_json::to_vec(&Stored {
            boot: self.boot,
            valid_until_ms: until.as_millis() as u64,
        })
        .expect("plain numbers serialize");
        match haschema::private_file::write(&self.file, &data) {
            Ok(()) => {
                self.stored = Some(Duration::from_millis(until.as_millis() as u64));
                self.failing = false;
            }
            Err(e) if !self.failing => {
                self.failing = true;
                tracing::error!(
                    "lease: cannot write {}: {e}; a restarted hamond would not know this \
                     node's lease deadline: fix the state directory's disk",
                    self.file.display()
                );
            }
            Err(_) => {}
        }
    }
}

/// The deadline `file` holds for boot `boot`; None when it is missing,
/// unreadable (logged) or from another boot.
fn read(file: &Path, boot: u32) -> Option<Time> {
    let bytes = match haschema::private_file::read(file, "the lease file") {
        Ok(bytes) => bytes?,
        Err(e) => {
            tracing::warn!("lease: {e}; starting without a kept deadline");
            return None;
        }
    };
    match serde_json::from_slice::<Stored>(&bytes) {
        Ok(s) if s.boot == boot => Some(Duration::from_millis(s.valid_until_ms)),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(
                "lease: {} is not a lease file ({e}); starting without a kept deadline",
                file.display()
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Duration = Duration::from_secs(8);

    fn s(secs: f64) -> Time {
        Duration::from_secs_f64(secs)
    }

    fn dir(tag: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("lease-{tag}"))
            .tempdir()
            .unwrap()
    }

    #[test]
    fn renewals_move_the_deadline_and_the_file_follows_within_a_quarter() {
        let d = dir("renew");
        let file = d.path().join(LEASE_FILE);
        let mut lease = Lease::restore(file.clone(), 7, L);
        assert_eq!(lease.valid_until(), None);
        assert_eq!(lease.length(), L);
        lease.renew(s(100.0));
        assert_eq!(lease.valid_until(), Some(s(108.0)));
        assert_eq!(
            read(&file, 7),
            Some(s(108.0)),
            "the first renewal is written"
        );
        // Within a quarter of L: kept in memory only.
        lease.renew(s(101.5));
        assert_eq!(lease.valid_until(), Some(s(109.5)));
        assert_eq!(read(&file, 7), Some(s(108.0)));
        lease.renew(s(102.0));
        assert_eq!(read(&file, 7), Some(s(110.0)));
        // A shorter lease than the file's (L changed, or the clock read
        // earlier): written at once, the file is never ahead.
        let mut shorter = Lease::restore(file.clone(), 7, Duration::from_secs(2));
        assert_eq!(shorter.valid_until(), Some(s(110.0)));
        shorter.renew(s(103.0));
        assert_eq!(shorter.valid_until(), Some(s(105.0)));
        assert_eq!(read(&file, 7), Some(s(105.0)));
    }

    #[test]
    fn a_restart_on_the_same_boot_keeps_the_written_deadline() {
        let d = dir("restart");
        let file = d.path().join(LEASE_FILE);
        let mut lease = Lease::restore(file.clone(), 7, L);
        lease.renew(s(100.0));
        lease.renew(s(101.0));
        let again = Lease::restore(file.clone(), 7, L);
        assert_eq!(
            again.valid_until(),
            Some(s(108.0)),
            "the file's deadline, never later than the real one"
        );
        // Another boot: the file means nothing.
        assert_eq!(Lease::restore(file.clone(), 8, L).valid_until(), None);
        // Not a lease file, or open to others: none either.
        std::fs::write(&file, "garbage").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(Lease::restore(file.clone(), 7, L).valid_until(), None);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(Lease::restore(file, 7, L).valid_until(), None);
    }

    #[test]
    fn an_unwritable_file_keeps_the_lease_in_memory() {
        let d = dir("unwritable");
        // A directory where the file should be: every write fails.
        let file = d.path().join(LEASE_FILE);
        std::fs::create_dir(&file).unwrap();
        let mut lease = Lease::restore(file, 7, L);
        lease.renew(s(100.0));
        lease.renew(s(105.0));
        assert_eq!(lease.valid_until(), Some(s(113.0)));
    }
}
