//! The blocking I/O of the storage path check ([`super`]): a write, fsync
//! and read-back of a small file in a hidden directory at a mounted
//! volume's root, or an uncached (`O_DIRECT`) read of the first block of
//! the volume's device. Each call may block for as long as the path hangs:
//! the watch runs it on a blocking thread and bounds the wait.

use nix::libc;
use std::fs::{DirBuilder, OpenOptions};
use std::io::{self, Read as _, Seek as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::Path;

/// The directory at a volume's root that holds the check files (root's
/// only, mode 0700, so the application does not serve them).
pub const CHECK_DIR: &str = ".hasvrd";

/// One block, aligned as `O_DIRECT` requires.
#[repr(C, align(4096))]
struct Block([u8; 4096]);

/// Writes `stamp` to `MOUNT/.hasvrd/storage-check.NODE`, fsyncs it (the
/// data and the file system's journal reach the device, or the call fails
/// or hangs with the path), and reads it back.
pub fn write_check(mount_point: &Path, node: &str, stamp: &str) -> io::Result<()> {
    let dir = mount_point.join(CHECK_DIR);
    DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
    let path = dir.join(format!("storage-check.{node}"));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(stamp.as_bytes())?;
    file.sync_all()?;
    file.rewind()?;
    let mut back = String::new();
    file.read_to_string(&mut back)?;
    if back == stamp {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{} reads back {back:?} after {stamp:?} was written to it",
            path.display()
        )))
    }
}

/// Reads the first block of `device`, bypassing the page cache
/// (`O_DIRECT`) so the read reaches the disk; a device that refuses
/// `O_DIRECT` is read through the cache.
pub fn read_check(device: &Path) -> io::Result<()> {
    let mut block = Box::new(Block([0; 4096]));
    let direct = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(device)
        .and_then(|mut f| f.read(&mut block.0));
    let read = match direct {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => OpenOptions::new()
            .read(true)
            .open(device)?
            .read(&mut block.0),
        other => other,
    }?;
    if read == 0 {
        return Err(io::Error::other(format!(
            "{} reads as empty (0 bytes)",
            device.display()
        )));
    }
    Ok(())
}
