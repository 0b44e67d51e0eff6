//! `informix`: `onstat -` says the server is On-Line (exit code 5), and
//! optionally `dbaccess` runs a select in a database.

use super::{Check, Expect, run_expecting};
use crate::command::{Tool, ToolArgs};
use std::path::PathBuf;
use std::time::Duration;

/// `onstat -`'s exit code for On-Line mode.
const ONLINE: i32 = 5;

/// What the query prints when it ran.
const MARKER: &str = "HA_AGENT_OK";

/// The server mode an exit code of `onstat -` stands for (IBM's table of
/// onstat return codes).
fn mode(code: i32) -> &'static str {
    match code {
        0 => "Initialization",
        1 => "Quiescent",
        2 => "Fast Recovery",
        3 => "Archive Backup",
        4 => "Shutdown",
        5 => "On-Line",
        6 => "Abort",
        7 => "Single-User (administration)",
        255 | -1 => "Off-Line (no shared memory)",
        _ => "unknown",
    }
}

/// The Informix agent's flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Informix {
    /// The server name (INFORMIXSERVER).
    #[arg(long)]
    pub server: Option<String>,
    /// The installation directory (INFORMIXDIR), the manual's PATH; the
    /// tools default to its bin directory.
    #[arg(long, value_name = "DIR")]
    pub informixdir: Option<PathBuf>,
    /// A database in which dbaccess must run a select, after onstat.
    #[arg(long)]
    pub database: Option<String>,
    /// The onstat program.
    #[arg(long, value_name = "PATH")]
    pub onstat: Option<PathBuf>,
    /// The dbaccess program.
    #[arg(long, value_name = "PATH")]
    pub dbaccess: Option<PathBuf>,
    #[command(flatten)]
    pub tool: ToolArgs,
}

impl Informix {
    fn tool(&self, given: &Option<PathBuf>, name: &str, args: &[&str]) -> Tool {
        let program = given.clone().unwrap_or_else(|| match &self.informixdir {
            Some(dir) => dir.join("bin").join(name),
            None => PathBuf::from(name),
        });
        let mut tool = Tool::new(program, args.iter().copied(), &self.tool);
        if let Some(server) = &self.server {
            tool = tool.env("INFORMIXSERVER", server);
        }
        if let Some(dir) = &self.informixdir {
            tool = tool.env("INFORMIXDIR", dir);
        }
        tool
    }
}

impl Check for Informix {
    const ABOUT: &'static str = "Watches an Informix server: `onstat -` must report On-Line \
         mode; with --database, `dbaccess DATABASE -` must run a select.";
    const AFTER_HELP: &'static str = "onstat - passes when it exits 5 (On-Line); its other exit \
         codes name the mode in the reason (1 Quiescent, 255 Off-Line, ...). dbaccess reads \
         `SELECT FIRST 1 'HA_AGENT' || '_OK' FROM systables;` on its stdin and passes when it \
         exits 0 and prints the marker. Run as root or --run-as informix.";
    const VALIDATED: bool = false;

    async fn check(&self, _timeout: Duration) -> Result<(), String> {
        let onstat = self.tool(&self.onstat, "onstat", &["-"]).run().await?;
        let code = onstat.code.unwrap_or(-1);
        if code != ONLINE {
            return Err(onstat.failure(&format!(
                "says the server is not On-Line but {}",
                mode(code)
            )));
        }
        if let Some(db) = &self.database {
            let dbaccess = self
                .tool(&self.dbaccess, "dbaccess", &[db, "-"])
                .stdin("SELECT FIRST 1 'HA_AGENT' || '_OK' FROM systables;\n");
            run_expecting(
                &dbaccess,
                Expect {
                    codes: &[0],
                    marker: Some(MARKER),
                    errors: &[],
                },
            )
            .await?;
        }
        Ok(())
    }
}
