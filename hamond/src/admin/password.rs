//! The one admin account's password file (SureHA's NewPass/SetPass): an
//! argon2id hash in the PHC string format (`$argon2id$v=19$m=...`) and a
//! newline, mode 0600. `hactl passwd` writes it with [`set`]; hamond reads
//! it at each login with [`load`] (so a change needs no restart) and checks
//! a password with [`verify`]. The password itself is never stored.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use std::path::Path;

/// Shortest accepted password, in characters.
pub const MIN_LEN: usize = 8;
/// Longest accepted password, in bytes.
pub const MAX_LEN: usize = 1024;

/// What the file is called in messages.
const WHAT: &str = "the admin password file";

/// Checks that `password` is acceptable as the admin password.
pub fn check_new(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_LEN {
        return Err(format!(
            "the password is too short: use at least {MIN_LEN} characters"
        ));
    }
    if password.len() > MAX_LEN {
        return Err(format!("the password is too long: at most {MAX_LEN} bytes"));
    }
    if password.chars().any(char::is_control) {
        return Err("the password must not contain control characters".into());
    }
    Ok(())
}

/// The argon2id PHC string of `password`, with a new random salt.
pub fn hash(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Sets the admin password: writes its hash to `path` atomically, mode
/// 0600. Refuses a password that [`check_new`] refuses.
pub fn set(path: &Path, password: &str) -> Result<(), String> {
    check_new(password)?;
    let mut line = hash(password)?;
    line.push('\n');
    haschema::private_file::write(path, line.as_bytes())
        .map_err(|e| format!("{}: cannot write {WHAT}: {e}", path.display()))
}

/// The stored hash, or None if no password was set (the file does not
/// exist). Refuses a file that group or others may access, or that does
/// not hold an argon2 PHC string.
pub fn load(path: &Path) -> Result<Option<String>, String> {
    let Some(bytes) = haschema::private_file::read(path, WHAT)? else {
        return Ok(None);
    };
    let bad = || {
        format!(
            "{}: {WHAT} does not hold an argon2 password hash; set the password again with `hactl passwd`",
            path.display()
        )
    };
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let phc = text.trim();
    match PasswordHash::new(phc) {
        Ok(h) if h.algorithm.as_str().starts_with("argon2") => Ok(Some(phc.to_owned())),
        _ => Err(bad()),
    }
}

/// Whether `password` matches the PHC string `phc` (a malformed string
/// matches nothing). Takes as long as the hash's parameters say (tens of
/// milliseconds): call it off the event loop.
pub fn verify(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn set_load_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.pw");
        assert_eq!(load(&path), Ok(None));
        set(&path, "correct horse").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("$argon2id$v=19$"), "{text}");
        assert!(!text.contains("correct horse"));
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let phc = load(&path).unwrap().unwrap();
        assert!(verify(&phc, "correct horse"));
        assert!(!verify(&phc, "correct horsE"));
        assert!(!verify(&phc, ""));
        // Changing it (SetPass) replaces the old one.
        set(&path, "battery staple").unwrap();
        let phc2 = load(&path).unwrap().unwrap();
        assert!(verify(&phc2, "battery staple"));
        assert!(!verify(&phc2, "correct horse"));
        // The same password twice gives different salts.
        assert_ne!(
            hash("same password").unwrap(),
            hash("same password").unwrap()
        );
    }

    #[test]
    fn refuses_a_hash_file_others_may_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.pw");
        set(&path, "correct horse").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load(&path).unwrap_err();
        assert!(
            e.contains("group or others may access the admin password file"),
            "{e}"
        );
        assert!(e.contains("chmod 600"), "{e}");
    }

    #[test]
    fn refuses_what_is_not_a_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.pw");
        for junk in [
            "plaintext password\n",
            "",
            "$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA\n",
        ] {
            haschema::private_file::write(&path, junk.as_bytes()).unwrap();
            let e = load(&path).unwrap_err();
            assert!(e.contains("`hactl passwd`"), "{junk}: {e}");
        }
        assert!(!verify("not a hash", "x"));
    }

    #[test]
    fn password_rules() {
        assert!(check_new("12345678").is_ok());
        assert!(check_new("ünïcødé!").is_ok());
        assert!(check_new("1234567").unwrap_err().contains("at least 8"));
        assert!(check_new("tab\there!").unwrap_err().contains("control"));
        assert!(
            check_new(&"x".repeat(MAX_LEN + 1))
                .unwrap_err()
                .contains("too long")
        );
        let dir = tempfile::tempdir().unwrap();
        assert!(set(&dir.path().join("pw"), "short").is_err());
        assert!(!dir.path().join("pw").exists());
    }
}
