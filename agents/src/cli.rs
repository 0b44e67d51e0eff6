//! The flags every agent shares and the agents' `main`: parse the flags,
//! log to stderr (hasvrd logs an agent's stderr as `SERVICE agent: ...`),
//! run [`crate::watch::watch`] on a single-threaded runtime, and turn its
//! end into an exit code.

use crate::checks::{Check, NOT_VALIDATED};
use crate::watch::{Settings, watch};
use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser};
use std::process::ExitCode;
use std::time::Duration;
use tracing::level_filters::LevelFilter;

/// Longest `--interval` and `--timeout`.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// The flags of every agent.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// The service to report on, as named in its service file (hasvrd sets
    /// HA_SERVICE for the agent it starts). The socket is HA_AGENT_SOCKET
    /// (default /run/hacluster/agent.sock).
    #[arg(long, env = "HA_SERVICE")]
    pub service: String,
    /// Time from the start of one check to the start of the next. hasvrd
    /// expects an ok at least every check_interval x check_tko of the
    /// service file: keep the interval plus the time a check takes below it.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Longest one check may take; a check still running then is killed
    /// (its whole process group) and counts as failed.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Failed checks in a row before the service is reported failed (err).
    /// Checks that fail send nothing, so keep interval x failures below
    /// check_interval x check_tko, or hasvrd notices the silence first.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub failures: u32,
    /// Log level, by syslog name (LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG).
    #[arg(long, default_value = "LOG_INFO", value_parser = haschema::logging::parse_level)]
    pub log_level: LevelFilter,
}

/// An agent's command line: the shared flags and its check's.
#[derive(Parser, Debug)]
struct Cli<C: Args> {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    check: C,
}

/// How the agent reports, for every agent's `--help`.
const REPORTING: &str = "Reporting: opens the service on hasvrd's agent socket (apiopen), \
     sends ok after every check that passes (apiok), err with the reason once --failures checks \
     in a row have failed (apierr, once per outage; ok again when the application recovers), \
     and close on SIGTERM or SIGINT (apiclose). Exit status: 0 after close, 1 when hasvrd \
     refuses the service or stays unreachable, 2 on a usage error.";

/// The `main` of the agent `name` checking with `C`.
pub fn main<C: Check>(name: &'static str) -> ExitCode {
    let note = if C::VALIDATED {
        String::new()
    } else {
        format!("\n\n{NOT_VALIDATED}")
    };
    let command = Cli::<C>::command()
        .name(name)
        .about(C::ABOUT)
        .after_help(format!("{}{note}\n\n{REPORTING}", C::AFTER_HELP));
    let matches = command.clone().get_matches();
    let cli = Cli::<C>::from_arg_matches(&matches)
        .unwrap_or_else(|e| e.format(&mut command.clone()).exit());
    if let Err(message) = cli.check.validate() {
        command
            .clone()
            .error(clap::error::ErrorKind::ArgumentConflict, message)
            .exit();
    }
    haschema::logging::init(name, cli.common.log_level, false);
    let settings = Settings {
        service: cli.common.service,
        interval: cli.common.interval,
        timeout: cli.common.timeout,
        failures: cli.common.failures,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the agent's runtime: {e}; check the process limits");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(watch(&settings, &cli.check)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// A duration with a unit ("500ms", "2s", "1m"), above zero, at most a day.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|e| format!("{e}: expected a time with a unit, e.g. 500ms, 2s or 1m"))?;
    if d.is_zero() || d > MAX_DURATION {
        return Err(format!(
            "{text} is out of range: give more than 0 and at most 24h"
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit_and_a_range() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        for bad in ["", "5", "0s", "25h", "-1s", "fast"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
