//! The cluster key file: the shared secret under which every frame is
//! authenticated (HMAC). Every node holds the same file, mode 0600.
//!
//! [`generate`] writes a new random key as 64 lowercase hex characters and a
//! newline; [`load`] reads one back (hex text or raw bytes) and refuses a file
//! that group or others may access, or a key that is too short.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Bytes of secret in a generated key.
pub const GENERATED_LEN: usize = 32;

/// Largest key file read; a key file holds 65 bytes.
const MAX_FILE_LEN: u64 = 64 * 1024;

/// Shortest hex text taken as hex (shorter text is taken as raw bytes).
const MIN_HEX_CHARS: usize = 32;

/// What went wrong with a key file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyErrorKind {
    /// The file could not be opened, read, written or synced.
    Io,
    /// [`generate`] without `force` found the file already there.
    Exists,
    /// Group or others may access the file.
    Permissions,
    /// The file is not a regular file, or is far too large for a key.
    NotAKey,
    /// The key is shorter than [`litecloud::wire::ClusterKey::MIN_LEN`].
    TooShort,
    /// The system's random source failed.
    Random,
}

/// A key file that cannot be used or written: which file, why, what to do.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", .file.display())]
pub struct KeyError {
    /// The key file.
    pub file: PathBuf,
    pub kind: KeyErrorKind,
    /// What is wrong and what to do about it.
    pub message: String,
    /// The I/O error behind it, if any.
    #[source]
    pub source: Option<std::io::Error>,
}

impl KeyError {
    fn new(file: &Path, kind: KeyErrorKind, message: String) -> KeyError {
        KeyError {
            file: file.to_path_buf(),
            kind,
            message,
            source: None,
        }
    }

    fn io(file: &Path, doing: &str, e: std::io::Error) -> KeyError {
        KeyError {
            file: file.to_path_buf(),
            kind: KeyErrorKind::Io,
            message: format!("{doing}: {e}"),
            source: Some(e),
        }
    }
}

/// Writes a new key of 32 random bytes to `path` as 64 lowercase hex
/// characters and a newline, mode 0600, synced to disk. Refuses an existing
/// file unless `force`; with `force` the old file is replaced atomically.
pub fn generate(path: &Path, force: bool) -> Result<(), KeyError> {
    let mut secret = [0u8; GENERATED_LEN];
    getrandom::fill(&mut secret).map_err(|e| {
        KeyError::new(
            path,
            KeyErrorKind::Random,
            format!("cannot get random bytes from the system: {e}"),
        )
    })?;
    let mut text = String::with_capacity(GENERATED_LEN * 2 + 1);
    for b in secret {
        text.push(hex_digit(b >> 4));
        text.push(hex_digit(b & 0x0f));
    }
    text.push('\n');
    if path.file_name().is_none() {
        return Err(KeyError::new(
            path,
            KeyErrorKind::NotAKey,
            "is not a file path; name the key file, e.g. /etc/hacluster/authkey".into(),
        ));
    }
    if !force && path.symlink_metadata().is_ok() {
        return Err(KeyError::new(
            path,
            KeyErrorKind::Exists,
            "already exists; keep it (every node needs the same key) or force a new one".into(),
        ));
    }
    crate::private_file::write(path, text.as_bytes())
        .map_err(|e| KeyError::io(path, "cannot write the key file", e))
}

/// Reads the cluster key from `path`. The file must not be accessible to
/// group or others. Hex text (surrounding whitespace ignored, at least 32 hex
/// digits, even count) is decoded; anything else is taken as raw bytes. The
/// key must be at least [`litecloud::wire::ClusterKey::MIN_LEN`] bytes.
pub fn load(path: &Path) -> Result<Vec<u8>, KeyError> {
    let file =
        File::open(path).map_err(|e| KeyError::io(path, "cannot open the cluster key file", e))?;
    let meta = file
        .metadata()
        .map_err(|e| KeyError::io(path, "cannot stat the cluster key file", e))?;
    if !meta.is_file() {
        return Err(KeyError::new(
            path,
            KeyErrorKind::NotAKey,
            "is not a regular file; key_file must name the cluster key file".into(),
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::new(
            path,
            KeyErrorKind::Permissions,
            format!(
                "group or others may access the cluster key (mode {mode:04o}); run `chmod 600 {}`",
                path.display()
            ),
        ));
    }
    if meta.len() > MAX_FILE_LEN {
        return Err(key_advice(
            path,
            KeyErrorKind::NotAKey,
            format!("is {} bytes, far too large for a key file", meta.len()),
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| KeyError::io(path, "cannot read the cluster key file", e))?;
    let key = decode(bytes);
    let min = litecloud::wire::ClusterKey::MIN_LEN;
    if key.len() < min {
        return Err(key_advice(
            path,
            KeyErrorKind::TooShort,
            format!(
                "holds a key of {} bytes; at least {min} are required",
                key.len()
            ),
        ));
    }
    Ok(key)
}

/// An error that ends with how to make a good key file.
fn key_advice(path: &Path, kind: KeyErrorKind, what: String) -> KeyError {
    KeyError::new(
        path,
        kind,
        format!(
            "{what}; write a new key on one node with `hactl keygen --force {0}` and copy it to every node",
            path.display()
        ),
    )
}

/// Hex text to bytes; anything that is not hex text stays as it is.
fn decode(bytes: Vec<u8>) -> Vec<u8> {
    let text = bytes.trim_ascii();
    if text.len() < MIN_HEX_CHARS
        || !text.len().is_multiple_of(2)
        || !text.iter().all(u8::is_ascii_hexdigit)
    {
        return bytes;
    }
    text.chunks_exact(2)
        .map(|pair| (hex_value(pair[0]) << 4) | hex_value(pair[1]))
        .collect()
}

fn hex_value(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

fn hex_digit(v: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(v & 0x0f)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "haschema-key-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn file(&self, name: &str, data: &[u8], mode: u32) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, data).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn generate_then_load() {
        let dir = TempDir::new();
        let path = dir.0.join("authkey");
        generate(&path, false).unwrap();
        assert_eq!(mode(&path), 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 65);
        assert!(text.ends_with('\n'));
        assert!(
            text[..64]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        let key = load(&path).unwrap();
        assert_eq!(key.len(), GENERATED_LEN);
        let again: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(again, text.trim_end());
        assert!(litecloud::wire::ClusterKey::new(&key).is_ok());
    }

    #[test]
    fn generate_refuses_existing_unless_forced() {
        let dir = TempDir::new();
        let path = dir.file("authkey", b"old contents", 0o644);
        let e = generate(&path, false).unwrap_err();
        assert_eq!(e.kind, KeyErrorKind::Exists);
        assert!(
            e.to_string().starts_with(&path.display().to_string()),
            "{e}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"old contents");
        generate(&path, true).unwrap();
        assert_eq!(mode(&path), 0o600);
        let first = load(&path).unwrap();
        generate(&path, true).unwrap();
        assert_ne!(load(&path).unwrap(), first);
        let names: Vec<_> = std::fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["authkey"], "no temp file left");
    }

    #[test]
    fn generate_reports_io_errors() {
        let dir = TempDir::new();
        // A missing directory is created (0700); a file in the way is not.
        std::fs::write(dir.0.join("plain"), b"").unwrap();
        let path = dir.0.join("plain").join("authkey");
        let e = generate(&path, false).unwrap_err();
        assert_eq!(e.kind, KeyErrorKind::Io);
        assert!(e.source.is_some());
        assert!(generate(&path, true).is_err());
        assert!(generate(Path::new("/"), true).is_err());
    }

    #[test]
    fn load_refuses_open_modes() {
        let dir = TempDir::new();
        for m in [0o644, 0o640, 0o604, 0o660, 0o601] {
            let path = dir.file("open", &[b'a'; 64], m);
            let e = load(&path).unwrap_err();
            assert_eq!(e.kind, KeyErrorKind::Permissions, "{m:o}");
            let shown = e.to_string();
            assert!(
                shown.contains(&format!("chmod 600 {}", path.display())),
                "{shown}"
            );
            assert!(shown.starts_with(&path.display().to_string()), "{shown}");
        }
        let path = dir.file("closed", &[b'a'; 64], 0o400);
        assert_eq!(load(&path).unwrap(), vec![0xaa; 32]);
    }

    #[test]
    fn load_accepts_hex_and_raw() {
        let dir = TempDir::new();
        let hex = "  00112233445566778899AABBccddeeff\r\n\n";
        let path = dir.file("hex", hex.as_bytes(), 0o600);
        assert_eq!(
            load(&path).unwrap(),
            [
                0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff
            ]
        );
        let raw: Vec<u8> = (0u8..40).map(|i| i.wrapping_mul(37) ^ 0xc3).collect();
        let path = dir.file("raw", &raw, 0o600);
        assert_eq!(load(&path).unwrap(), raw);
        // Odd-length or too-short hex is raw bytes, kept whole.
        let odd = "0123456789abcdef0123456789abcdef0";
        let path = dir.file("odd", odd.as_bytes(), 0o600);
        assert_eq!(load(&path).unwrap(), odd.as_bytes());
        let short_hex = "0123456789abcdef01\n";
        let path = dir.file("shorthex", short_hex.as_bytes(), 0o600);
        assert_eq!(load(&path).unwrap(), short_hex.as_bytes());
    }

    #[test]
    fn load_refuses_short_keys() {
        let dir = TempDir::new();
        let path = dir.file("short", b"tooshort\n", 0o600);
        let e = load(&path).unwrap_err();
        assert_eq!(e.kind, KeyErrorKind::TooShort);
        assert!(e.message.contains("at least 16"), "{e}");
        let path = dir.file("empty", b"", 0o600);
        assert_eq!(load(&path).unwrap_err().kind, KeyErrorKind::TooShort);
        let min = litecloud::wire::ClusterKey::MIN_LEN;
        let path = dir.file("exact", &vec![0x5a; min], 0o600);
        assert_eq!(load(&path).unwrap().len(), min);
    }

    #[test]
    fn load_reports_missing_and_odd_files() {
        let dir = TempDir::new();
        let path = dir.0.join("nothing");
        let e = load(&path).unwrap_err();
        assert_eq!(e.kind, KeyErrorKind::Io);
        assert!(
            e.to_string().starts_with(&path.display().to_string()),
            "{e}"
        );
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(load(&dir.0).unwrap_err().kind, KeyErrorKind::NotAKey);
        let big = dir.file("big", &vec![b'x'; 70 * 1024], 0o600);
        assert_eq!(load(&big).unwrap_err().kind, KeyErrorKind::NotAKey);
    }

    #[test]
    fn decode_never_panics() {
        for input in [
            &b""[..],
            b"\xff\xfe",
            b"zz",
            &[b'f'; 31],
            &[b'f'; 32],
            &[b' '; 100],
        ] {
            let _ = decode(input.to_vec());
        }
        assert_eq!(decode(vec![b'f'; 32]), vec![0xff; 16]);
    }
}
