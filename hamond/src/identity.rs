//! Who this daemon is on the wire: the OS boot id (new at every boot; read
//! from the kernel, or from a file given for nodes that share one) and
//! the daemon incarnation (persisted and fsynced, one higher at every start,
//! so a restart is never mistaken for the old process); and the membership
//! epoch it promised, kept the same way so that it never goes back.

use std::fs;
use std::io;
use std::path::Path;

const INCARNATION_FILE: &str = "incarnation";
const EPOCH_FILE: &str = "epoch";

/// Where the kernel keeps its boot id (a UUID, new at every boot).
pub const KERNEL_BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// First 32 bits of the boot id in `file` ([`KERNEL_BOOT_ID`], or a file of
/// the same form for nodes that share a kernel).
pub fn boot_id(file: &Path) -> io::Result<u32> {
    let text = fs::read_to_string(file)?;
    let hex: String = text
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(8)
        .collect();
    u32::from_str_radix(&hex, 16).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Reads the last incarnation from `state_dir`, stores the next one
/// durably and returns it.
pub fn next_incarnation(state_dir: &Path) -> io::Result<u32> {
    let last = load(state_dir, INCARNATION_FILE)?;
    let next = u32::try_from(last + 1).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: incarnation exhausted",
                state_dir.join(INCARNATION_FILE).display()
            ),
        )
    })?;
    store(state_dir, INCARNATION_FILE, u64::from(next))?;
    Ok(next)
}

/// The highest membership epoch this node promised (0 if none yet).
pub fn promised_epoch(state_dir: &Path) -> io::Result<u64> {
    load(state_dir, EPOCH_FILE)
}

/// Stores the promised epoch durably, before any message relies on it.
pub fn store_epoch(state_dir: &Path, epoch: u64) -> io::Result<()> {
    store(state_dir, EPOCH_FILE, epoch)
}

/// A number kept in `state_dir/name` (0 when the file does not exist).
fn load(state_dir: &Path, name: &str) -> io::Result<u64> {
    let path = state_dir.join(name);
    match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<u64>().map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: {e}; remove the file only if no hamond runs",
                    path.display()
                ),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Writes `state_dir/name` durably (see [`haschema::private_file`]).
fn store(state_dir: &Path, name: &str, value: u64) -> io::Result<()> {
    haschema::private_file::write(&state_dir.join(name), format!("{value}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incarnation_grows_across_starts() {
        let dir = std::env::temp_dir().join(format!("hamond-inc-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(next_incarnation(&dir).unwrap(), 1);
        assert_eq!(next_incarnation(&dir).unwrap(), 2);
        fs::write(dir.join(INCARNATION_FILE), "garbage").unwrap();
        assert!(next_incarnation(&dir).is_err());
        assert_eq!(promised_epoch(&dir).unwrap(), 0);
        store_epoch(&dir, 41).unwrap();
        assert_eq!(promised_epoch(&dir).unwrap(), 41);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn boot_id_is_readable() {
        boot_id(Path::new(KERNEL_BOOT_ID)).unwrap();
    }

    #[test]
    fn a_boot_id_file_is_read_like_the_kernels() {
        let dir = std::env::temp_dir().join(format!("hamond-boot-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("boot_id");
        fs::write(&file, "0a1b2c3d-4e5f-4a6b-8c7d-0123456789ab\n").unwrap();
        assert_eq!(boot_id(&file).unwrap(), 0x0a1b_2c3d);
        fs::write(&file, "unknown\n").unwrap();
        assert_eq!(
            boot_id(&file).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(boot_id(&file).unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
