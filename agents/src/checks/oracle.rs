//! `oracle`: SQL*Plus connects (OS authentication by default) and selects
//! from `dual`; optionally `tnsping` reaches the listener first.

use super::{Check, Expect, run_expecting};
use crate::command::{Tool, ToolArgs};
use std::path::PathBuf;
use std::time::Duration;

/// What the query prints when it ran (built by concatenation, so an
/// echoed script cannot fake it).
const MARKER: &str = "HA_AGENT_OK";

/// Error lines of SQL*Plus and the Oracle network layer.
const ERRORS: [&str; 4] = ["ORA-", "TNS-", "SP2-", "ERROR:"];

/// The Oracle agent's flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Oracle {
    /// The instance (ORACLE_SID), the manual's SID.
    #[arg(long)]
    pub sid: Option<String>,
    /// ORACLE_HOME; the tools default to its bin directory.
    #[arg(long, value_name = "DIR")]
    pub oracle_home: Option<PathBuf>,
    /// What SQL*Plus connects as: `CONNECT <this>` is its first input line
    /// (read from stdin, never on the command line). Default: OS
    /// authentication, which needs --run-as an OS user of the dba group.
    #[arg(long, default_value = "/ as sysdba", value_name = "LOGON")]
    pub connect: String,
    /// A net service name (tnsnames.ora) to tnsping before the query.
    #[arg(long, value_name = "ALIAS")]
    pub tns: Option<String>,
    /// The sqlplus program. Default: sqlplus in --oracle-home's bin, or in PATH.
    #[arg(long, value_name = "PATH")]
    pub sqlplus: Option<PathBuf>,
    /// The tnsping program. Default: tnsping in --oracle-home's bin, or in PATH.
    #[arg(long, value_name = "PATH")]
    pub tnsping: Option<PathBuf>,
    #[command(flatten)]
    pub tool: ToolArgs,
}

impl Oracle {
    fn tool(&self, given: &Option<PathBuf>, name: &str, args: &[&str]) -> Tool {
        let program = given.clone().unwrap_or_else(|| match &self.oracle_home {
            Some(home) => home.join("bin").join(name),
            None => PathBuf::from(name),
        });
        let mut tool = Tool::new(program, args.iter().copied(), &self.tool);
        if let Some(sid) = &self.sid {
            tool = tool.env("ORACLE_SID", sid);
        }
        if let Some(home) = &self.oracle_home {
            tool = tool.env("ORACLE_HOME", home);
        }
        tool
    }
}

impl Check for Oracle {
    const ABOUT: &'static str = "Watches an Oracle database: `sqlplus -S -L /nolog` connects \
         and selects from dual; with --tns, `tnsping ALIAS` must reach the listener first.";
    const AFTER_HELP: &'static str = "sqlplus reads `WHENEVER SQLERROR EXIT FAILURE`, \
         `CONNECT <--connect>` and a SELECT from dual on its stdin; it passes when it exits 0, \
         prints the selected marker and no ORA-, SP2-, TNS- or ERROR: line. tnsping passes when \
         it exits 0 and prints its OK (N msec) line.";
    const VALIDATED: bool = false;

    async fn check(&self, _timeout: Duration) -> Result<(), String> {
        if let Some(alias) = &self.tns {
            let tnsping = self.tool(&self.tnsping, "tnsping", &[alias]);
            run_expecting(
                &tnsping,
                Expect {
                    codes: &[0],
                    marker: Some("OK ("),
                    errors: &["TNS-"],
                },
            )
            .await?;
        }
        let script = format!(
            "WHENEVER SQLERROR EXIT FAILURE\nCONNECT {}\nSELECT 'HA_AGENT' || '_OK' FROM dual;\nEXIT\n",
            self.connect
        );
        let sqlplus = self
            .tool(&self.sqlplus, "sqlplus", &["-S", "-L", "/nolog"])
            .stdin(script);
        run_expecting(
            &sqlplus,
            Expect {
                codes: &[0],
                marker: Some(MARKER),
                errors: &ERRORS,
            },
        )
        .await
        .map(drop)
    }
}
