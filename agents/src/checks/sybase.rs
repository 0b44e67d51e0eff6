//! `sybase`: `isql` logs in to the SQL server and runs a select; the
//! password goes on its stdin (read from a file), never on the command
//! line.

use super::{Check, Expect, run_expecting};
use crate::command::{Tool, ToolArgs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the query prints when it ran (built by concatenation, so an
/// echoed script cannot fake it).
const MARKER: &str = "HA_AGENT_OK";

/// The Sybase agent's flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Sybase {
    /// The SQL server's name in the interfaces file (isql -S), the
    /// manual's SERVER NAME.
    #[arg(long)]
    pub server: String,
    /// The login (isql -U).
    #[arg(long, default_value = "sa")]
    pub login: String,
    /// A file whose first line is the login's password (mode 0600); it is
    /// written to isql's stdin, which isql reads when -P is not given.
    /// Without it, an empty password is sent.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// The Sybase installation directory, set as SYBASE for isql.
    #[arg(long, value_name = "DIR")]
    pub sybase: Option<PathBuf>,
    /// The isql program (give its path when it is not in PATH, e.g.
    /// $SYBASE/OCS-16_0/bin/isql).
    #[arg(long, default_value = "isql", value_name = "PATH")]
    pub isql: PathBuf,
    #[command(flatten)]
    pub tool: ToolArgs,
}

/// The first line of `file`, the password.
fn password(file: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read the password file {}: {e}", file.display()))?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

impl Check for Sybase {
    const ABOUT: &'static str = "Watches a Sybase (SAP ASE) server: `isql -U LOGIN -S SERVER` \
         logs in and runs a select.";
    const AFTER_HELP: &'static str = "isql reads the password, then `select 'HA_AGENT' + '_OK'` \
         and `go`, on its stdin; it passes when it exits 0, prints the selected marker and no \
         `Msg N, Level` or CT-LIBRARY error line.";
    const VALIDATED: bool = false;

    async fn check(&self, timeout: Duration) -> Result<(), String> {
        let password = match &self.password_file {
            Some(file) => password(file)?,
            None => String::new(),
        };
        let seconds = timeout.as_secs().max(1).to_string();
        let mut isql = Tool::new(
            &self.isql,
            [
                "-U",
                &self.login,
                "-S",
                &self.server,
                "-l",
                &seconds,
                "-t",
                &seconds,
            ],
            &self.tool,
        )
        .stdin(format!("{password}\nselect 'HA_AGENT' + '_OK'\ngo\n"));
        if let Some(dir) = &self.sybase {
            isql = isql.env("SYBASE", dir);
        }
        run_expecting(
            &isql,
            Expect {
                codes: &[0],
                marker: Some(MARKER),
                errors: &["Msg ", "CT-LIBRARY error", "Login failed"],
            },
        )
        .await
        .map(drop)
    }
}
