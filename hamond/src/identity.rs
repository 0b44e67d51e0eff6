//! Who this daemon is on the wire: the OS boot id (new at every boot) and
//! the daemon incarnation (persisted and fsynced, one higher at every start,
//! so a restart is never mistaken for the old process).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

const INCARNATION_FILE: &str = "incarnation";

/// First 32 bits of the kernel's boot id.
pub fn boot_id() -> io::Result<u32> {
    let text = fs::read_to_string("/proc/sys/kernel/random/boot_id")?;
    let hex: String = text
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(8)
        .collect();
    u32::from_str_radix(&hex, 16).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Reads the last incarnation from `state_dir`, stores the next one
/// durably (temp file, fsync, rename, fsync of the directory) and returns it.
pub fn next_incarnation(state_dir: &Path) -> io::Result<u32> {
    fs::create_dir_all(state_dir)?;
    let path = state_dir.join(INCARNATION_FILE);
    let last = match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<u32>().map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: {e}; remove the file only if no hamond runs",
                    path.display()
                ),
            )
        })?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    let next = last.checked_add(1).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: incarnation exhausted", path.display()),
        )
    })?;
    let tmp = state_dir.join(format!("{INCARNATION_FILE}.tmp"));
    let mut file = File::create(&tmp)?;
    writeln!(file, "{next}")?;
    file.sync_all()?;
    fs::rename(&tmp, &path)?;
    File::open(state_dir)?.sync_all()?;
    Ok(next)
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
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn boot_id_is_readable() {
        boot_id().unwrap();
    }
}
