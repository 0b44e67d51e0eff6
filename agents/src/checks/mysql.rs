//! `mysql`: the MySQL/MariaDB command-line client connects and runs a
//! query (`SELECT 1` by default), with its connection options from flags
//! or an option file, never a password on the command line.

use super::{Check, Expect, run_expecting};
use crate::command::{Tool, ToolArgs, find_in_path};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// The clients tried, in order, when --client is not given.
const CLIENTS: [&str; 2] = ["mariadb", "mysql"];

/// The MySQL agent's flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Mysql {
    /// The client program. Default: the first of mariadb and mysql found
    /// in PATH.
    #[arg(long, value_name = "PATH")]
    pub client: Option<PathBuf>,
    /// An option file (my.cnf format, [client] section) read instead of
    /// the default ones: put the user and password there (mode 0600), not
    /// on the command line.
    #[arg(long, value_name = "FILE")]
    pub defaults_file: Option<PathBuf>,
    /// Server host (e.g. the service's floating IP).
    #[arg(long)]
    pub host: Option<String>,
    /// Server TCP port.
    #[arg(long)]
    pub port: Option<u16>,
    /// Server socket file, for a local connection.
    #[arg(long, value_name = "FILE")]
    pub socket: Option<PathBuf>,
    /// Database user (its password belongs in --defaults-file).
    #[arg(long)]
    pub user: Option<String>,
    /// Database to connect to.
    #[arg(long)]
    pub database: Option<String>,
    /// The query run, in batch mode without column names.
    #[arg(long, default_value = "SELECT 1")]
    pub query: String,
    /// A text the query's output must contain ("" for none).
    #[arg(long, default_value = "1", value_name = "TEXT")]
    pub expect: String,
    #[command(flatten)]
    pub tool: ToolArgs,
}

impl Mysql {
    fn command(&self, timeout: Duration) -> Result<Tool, String> {
        let client = match &self.client {
            Some(path) => path.clone(),
            None => find_in_path(&CLIENTS).ok_or_else(|| {
                "no mariadb or mysql client in PATH: install mariadb-client or give --client"
                    .to_owned()
            })?,
        };
        let mut args: Vec<OsString> = Vec::new();
        // The client reads --defaults-file only as its first option.
        if let Some(file) = &self.defaults_file {
            let mut arg = OsString::from("--defaults-file=");
            arg.push(file);
            args.push(arg);
        }
        args.extend(["--batch", "--skip-column-names"].map(OsString::from));
        args.push(format!("--connect-timeout={}", timeout.as_secs().max(1)).into());
        for (flag, value) in [
            ("--host", self.host.clone()),
            ("--port", self.port.map(|p| p.to_string())),
            ("--user", self.user.clone()),
            ("--database", self.database.clone()),
        ] {
            if let Some(v) = value {
                args.push(format!("{flag}={v}").into());
            }
        }
        if let Some(socket) = &self.socket {
            let mut arg = OsString::from("--socket=");
            arg.push(socket);
            args.push(arg);
        }
        args.push("--execute".into());
        args.push(self.query.clone().into());
        Ok(Tool::new(client, args, &self.tool))
    }
}

impl Check for Mysql {
    const ABOUT: &'static str = "Watches a MySQL or MariaDB server: its command-line client \
         connects and runs --query (default SELECT 1), which must succeed and print --expect.";
    const AFTER_HELP: &'static str = "The client runs as `CLIENT [--defaults-file=FILE] --batch --skip-column-names \
         --connect-timeout=N [--host=..] [--port=..] [--user=..] [--database=..] [--socket=..] \
         --execute QUERY`; it passes when it exits 0 and prints the --expect text. Keep the \
         password in the --defaults-file ([client] password=...), mode 0600.";

    async fn check(&self, timeout: Duration) -> Result<(), String> {
        let tool = self.command(timeout)?;
        let marker = Some(self.expect.as_str()).filter(|e| !e.is_empty());
        run_expecting(
            &tool,
            Expect {
                codes: &[0],
                marker,
                errors: &["ERROR "],
            },
        )
        .await
        .map(drop)
    }
}
