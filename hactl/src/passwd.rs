//! `hactl passwd`: sets or changes the admin password of the remote admin
//! endpoint (SureHA's NewPass and SetPass in one): prompts twice without
//! echo, or reads one line from stdin with `--stdin`, and writes its
//! argon2id hash to `[admin] password_file` (mode 0600). hamond reads the
//! file at each login, so the change needs no restart.

use haschema::config::{ClusterConfig, DEFAULT_ADMIN_PASSWORD_FILE};
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// The password file: `file` if given, else the config's `[admin]
/// password_file`, else the default beside the config.
pub fn password_file(file: Option<PathBuf>, config: &Path) -> Result<PathBuf, String> {
    if let Some(file) = file {
        return Ok(file);
    }
    let config = ClusterConfig::load(config).map_err(|e| e.to_string())?;
    Ok(config.admin.map_or_else(
        || {
            config
                .file
                .parent()
                .unwrap_or(Path::new(""))
                .join(DEFAULT_ADMIN_PASSWORD_FILE)
        },
        |a| a.password_file,
    ))
}

/// Reads the new password and writes its hash to `file`.
pub fn run(file: &Path, stdin: bool) -> Result<(), String> {
    let password = if stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        let prompt = |p: &str| {
            rpassword::prompt_password(p).map_err(|e| {
                format!("cannot read the password (use --stdin without a terminal): {e}")
            })
        };
        let first = prompt("New admin password: ")?;
        hamond::admin::password::check_new(&first)?;
        if prompt("Again: ")? != first {
            return Err("the passwords differ; nothing changed".into());
        }
        first
    };
    hamond::admin::password::set(file, &password)
}
