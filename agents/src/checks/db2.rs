//! `db2`: `db2gcf -s` says the instance is available, and optionally the
//! command line processor connects to a database (`db2 connect to`).

use super::{Check, Expect, run_expecting};
use crate::command::{Tool, ToolArgs};
use std::path::PathBuf;
use std::time::Duration;

/// The DB2 agent's flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Db2 {
    /// The instance (db2gcf -i, and DB2INSTANCE for db2), e.g. db2inst1.
    #[arg(long)]
    pub instance: String,
    /// The partition number for db2gcf -p.
    #[arg(long, default_value_t = 0)]
    pub partition: u16,
    /// A database to connect to with `db2 connect to DATABASE`, after db2gcf.
    #[arg(long)]
    pub database: Option<String>,
    /// The db2gcf program (in the instance owner's sqllib/bin).
    #[arg(long, default_value = "db2gcf", value_name = "PATH")]
    pub db2gcf: PathBuf,
    /// The db2 command line processor (in sqllib/bin).
    #[arg(long, default_value = "db2", value_name = "PATH")]
    pub db2: PathBuf,
    #[command(flatten)]
    pub tool: ToolArgs,
}

impl Db2 {
    fn db2(&self, args: &[&str]) -> Tool {
        Tool::new(&self.db2, args.iter().copied(), &self.tool).env("DB2INSTANCE", &self.instance)
    }
}

impl Check for Db2 {
    const ABOUT: &'static str = "Watches a DB2 instance: `db2gcf -s -p N -i INSTANCE` must say \
         it is available; with --database, `db2 connect to DATABASE` must connect.";
    const AFTER_HELP: &'static str = "db2gcf passes when it exits 0 and prints no `Not \
         Available`/`Not Operable` state; db2 connect passes with exit code 0 or 2 (warning) and \
         its `Database Connection Information`; `db2 terminate` then ends the CLP back end. Run \
         as root or --run-as the instance owner.";
    const VALIDATED: bool = false;

    async fn check(&self, _timeout: Duration) -> Result<(), String> {
        let partition = self.partition.to_string();
        let gcf = Tool::new(
            &self.db2gcf,
            ["-s", "-p", &partition, "-i", &self.instance],
            &self.tool,
        );
        let out = run_expecting(&gcf, Expect::EXIT_0).await?;
        if out.contains("Not Available") || out.contains("Not Operable") {
            return Err(out.failure("says the instance is not available"));
        }
        if let Some(db) = &self.database {
            let connected = run_expecting(
                &self.db2(&["connect", "to", db]),
                Expect {
                    codes: &[0, 2],
                    marker: Some("Database Connection Information"),
                    errors: &[],
                },
            )
            .await;
            // Ends the back-end process whether or not the connect worked.
            if let Err(e) = self.db2(&["terminate"]).run().await {
                tracing::debug!("db2 terminate: {e}");
            }
            connected?;
        }
        Ok(())
    }
}
