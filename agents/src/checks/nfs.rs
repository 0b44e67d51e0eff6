//! `nfs`: the NFS server answers RPC (`rpcinfo -t HOST nfs`) and lists its
//! exports (`showmount -e HOST`), optionally including given ones.

use super::{Check, Expect, run_expecting};
use crate::command::{Tool, ToolArgs};
use std::path::PathBuf;
use std::time::Duration;

/// The NFS agent's flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Nfs {
    /// The server (the service's floating IP, or localhost).
    #[arg(long, default_value = "localhost")]
    pub host: String,
    /// The NFS version that must answer (rpcinfo's VERSION), e.g. 3 or 4.
    #[arg(long)]
    pub nfs_version: Option<u8>,
    /// A directory that must be in the export list; repeat as needed.
    #[arg(long, value_name = "DIR")]
    pub export: Vec<String>,
    /// The rpcinfo program.
    #[arg(long, default_value = "rpcinfo", value_name = "PATH")]
    pub rpcinfo: PathBuf,
    /// The showmount program.
    #[arg(long, default_value = "showmount", value_name = "PATH")]
    pub showmount: PathBuf,
    #[command(flatten)]
    pub tool: ToolArgs,
}

impl Check for Nfs {
    const ABOUT: &'static str = "Watches an NFS server: `rpcinfo -t HOST nfs [VERSION]` must \
         answer and `showmount -e HOST` must list the exports (each --export among them).";
    const AFTER_HELP: &'static str = "rpcinfo passes when it exits 0 and prints `ready and \
         waiting`; showmount when it exits 0 and prints `Export list for`, with a line starting \
         with each --export. showmount needs the server's mountd (NFSv3); for an NFSv4-only \
         server give --nfs-version 4 and no --export.";

    async fn check(&self, _timeout: Duration) -> Result<(), String> {
        let mut args = vec!["-t".to_owned(), self.host.clone(), "nfs".to_owned()];
        args.extend(self.nfs_version.map(|v| v.to_string()));
        let rpcinfo = Tool::new(&self.rpcinfo, args, &self.tool);
        run_expecting(
            &rpcinfo,
            Expect {
                codes: &[0],
                marker: Some("ready and waiting"),
                errors: &[],
            },
        )
        .await?;
        if self.nfs_version == Some(4) && self.export.is_empty() {
            return Ok(());
        }
        let showmount = Tool::new(&self.showmount, ["-e", self.host.as_str()], &self.tool);
        let out = run_expecting(
            &showmount,
            Expect {
                codes: &[0],
                marker: Some("Export list for"),
                errors: &[],
            },
        )
        .await?;
        for dir in &self.export {
            let listed = out
                .stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some(dir.as_str()));
            if !listed {
                return Err(format!("showmount -e {} does not list {dir}", self.host));
            }
        }
        Ok(())
    }
}
