//! The checks, one per agent, behind one trait: each is a set of flags
//! (clap) and one async probe of the application.

pub mod db2;
pub mod generic;
pub mod informix;
pub mod mysql;
pub mod nfs;
pub mod oracle;
pub mod sybase;
pub mod www;

use std::time::Duration;

/// The note every agent for vendor software that cannot be installed on
/// the test machines carries in its help.
pub const NOT_VALIDATED: &str = "Not validated against vendor software: tested only against \
     stand-in commands that print the vendor tool's documented output and exit codes.";

/// One agent's check of its application.
pub trait Check: clap::Args {
    /// What the agent checks, one line for `--help`.
    const ABOUT: &'static str;
    /// More help, shown after the flags.
    const AFTER_HELP: &'static str;
    /// False for the agents of vendor software that could not be tested
    /// against the real thing: their help then carries [`NOT_VALIDATED`].
    const VALIDATED: bool = true;

    /// Refuses flag combinations that cannot work, before anything runs.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }

    /// Probes the application once: `Err` with the reason (one line, for
    /// the log and hasvrd) when it does not work. `timeout` is the agent's
    /// `--timeout`, for the tools' own connect timeouts: the caller drops
    /// the future when it runs out, which kills whatever it started.
    fn check(&self, timeout: Duration) -> impl Future<Output = Result<(), String>>;
}

/// What a tool's run must show for a check to pass.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expect<'a> {
    /// Exit codes that mean success.
    pub codes: &'a [i32],
    /// A text the output must hold.
    pub marker: Option<&'a str>,
    /// Line prefixes of the tool's error messages (`ORA-`, `ERROR `).
    pub errors: &'a [&'a str],
}

impl Expect<'_> {
    /// Exit 0, nothing else.
    pub const EXIT_0: Expect<'static> = Expect {
        codes: &[0],
        marker: None,
        errors: &[],
    };
}

/// Runs `tool` and judges its output by `want`: `Err` names the tool, how
/// it ended and the error line (or last line) it printed.
pub(crate) async fn run_expecting(
    tool: &crate::command::Tool,
    want: Expect<'_>,
) -> Result<crate::command::Output, String> {
    let out = tool.run().await?;
    if let Some(line) = out.line_starting(want.errors) {
        return Err(format!("{} reports an error ({out}): {line}", out.program));
    }
    if !out.code.is_some_and(|c| want.codes.contains(&c)) {
        return Err(out.failure("failed"));
    }
    if let Some(marker) = want.marker
        && !out.contains(marker)
    {
        return Err(out.failure(&format!("did not print {marker}")));
    }
    Ok(out)
}
