//! Node standby (`hactl node standby on|off`): the flag lives in a small
//! file of hasvrd's state directory, `standby.NODE`, written atomically
//! (temp file, fsync, rename: `haschema::private_file`), so that a
//! restarted hasvrd comes back in standby before it asks for any service.
//! It holds `on WHY` (who put the node there) or `off`.

use std::path::{Path, PathBuf};

/// The flag's file for node `me` in `state_dir`.
pub fn path(state_dir: &Path, me: &str) -> PathBuf {
    state_dir.join(format!("standby.{me}"))
}

/// Why the node is in standby (`Some`), or None when it is not (no file
/// yet, or `off`).
pub fn load(path: &Path) -> Result<Option<String>, String> {
    let what = "the node standby file";
    let Some(bytes) = haschema::private_file::read(path, what)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim();
    match text.split_once(' ').unwrap_or((text, "")) {
        ("off", _) => Ok(None),
        ("on", why) => Ok(Some(why.trim().to_owned())),
        _ => Err(format!(
            "{} holds neither `on WHY` nor `off`; remove it (the node leaves standby) or write \
             `off`",
            path.display()
        )),
    }
}

/// Stores the flag: `Some(why)` in standby, None out of it.
pub fn store(path: &Path, standby: Option<&str>) -> Result<(), String> {
    let text = match standby {
        Some(why) => format!("on {why}\n"),
        None => "off\n".to_owned(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create {}: {e}; make hasvrd's --state-dir writable",
                dir.display()
            )
        })?;
    }
    haschema::private_file::write(path, text.as_bytes()).map_err(|e| {
        format!(
            "cannot write {}: {e}; make hasvrd's --state-dir writable",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_survives_a_reload() {
        let dir = hatests::scratch::ScratchDir::new("standby");
        let file = path(dir.path(), "alpha");
        assert_eq!(load(&file), Ok(None), "no file: not in standby");
        store(&file, Some("hactl (uid 0) on alpha")).unwrap();
        assert_eq!(load(&file), Ok(Some("hactl (uid 0) on alpha".into())));
        store(&file, None).unwrap();
        assert_eq!(load(&file), Ok(None));
        assert_ne!(file, path(dir.path(), "beta"), "one file per node");
    }

    #[test]
    fn a_garbled_file_is_an_error_that_says_what_to_do() {
        let dir = hatests::scratch::ScratchDir::new("standby");
        let file = path(dir.path(), "alpha");
        haschema::private_file::write(&file, b"maybe\n").unwrap();
        let e = load(&file).unwrap_err();
        assert!(e.contains("write `off`"), "{e}");
    }
}
