//! Small private files (the cluster key, the admin password hash, the
//! admin endpoint's TLS key, the daemon's persisted state): written
//! atomically with mode 0600 (temp file, fsync, rename, fsync of the
//! directory), and read back only if neither group nor others may access
//! them.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Largest secret file read.
const MAX_LEN: u64 = 64 * 1024;

/// Replaces `path` with a file holding `data`, mode 0600, synced to disk:
/// readers see the old content or the new, never a part. The parent
/// directory is created (mode 0700) if missing.
pub fn write(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_with_mode(path, data, 0o600)
}

/// [`write`] with file mode `mode` (exactly, whatever the umask), for the
/// files that are not secret (the replicated configuration documents):
/// a temp file in the same directory, fsync, rename, fsync of the
/// directory.
pub fn write_with_mode(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let Some(name) = path.file_name() else {
        return Err(std::io::Error::other("not a file path"));
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .and_then(|mut file| {
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
            file.write_all(data)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()
}

/// Reads the secret file `path` (`what` names it in errors). None if it
/// does not exist. Refuses a file that is not a regular file, that group
/// or others may access (saying how to fix it), or that is too large.
pub fn read(path: &Path, what: &str) -> Result<Option<Vec<u8>>, String> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: cannot open {what}: {e}", path.display())),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("{}: cannot stat {what}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: {what} is not a regular file", path.display()));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{0}: group or others may access {what} (mode {mode:04o}); run `chmod 600 {0}`",
            path.display()
        ));
    }
    if meta.len() > MAX_LEN {
        return Err(format!(
            "{}: {what} is {} bytes, far too large",
            path.display(),
            meta.len()
        ));
    }
    let mut data = Vec::new();
    file.take(MAX_LEN)
        .read_to_end(&mut data)
        .map_err(|e| format!("{}: cannot read {what}: {e}", path.display()))?;
    Ok(Some(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_0600_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/file");
        assert_eq!(read(&path, "the file"), Ok(None));
        write(&path, b"one").unwrap();
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        write(&path, b"two").unwrap();
        assert_eq!(
            read(&path, "the file").unwrap().as_deref(),
            Some(&b"two"[..])
        );
        let leftovers = std::fs::read_dir(dir.path().join("sub")).unwrap().count();
        assert_eq!(leftovers, 1, "no temp file left behind");
    }

    #[test]
    fn refuses_a_file_others_may_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        write(&path, b"x").unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = read(&path, "the admin password file").unwrap_err();
            assert!(e.contains(&format!("(mode {mode:04o})")), "{e}");
            assert!(e.contains("run `chmod 600 "), "{e}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(read(&path, "f").unwrap().is_some());
        let e = read(dir.path(), "the file").unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
    }
}
