//! Logging: tracing events go to stderr and to syslog (facility daemon,
//! or the one `--log-facility` names).
//! Levels take the syslog names the seeds use (LOG_EMERG ... LOG_DEBUG); an
//! event may raise its syslog severity above its tracing level with a
//! `severity = "emerg"` (or "alert", "crit", "notice") field.

use std::fmt::Write as _;
use std::sync::Mutex;
use syslog::{Facility, Formatter3164, Logger, LoggerBackend};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// The daemons' logging options.
#[derive(clap::Args, Debug, Clone)]
pub struct LogArgs {
    /// Log level, by syslog name (LOG_EMERG ... LOG_DEBUG).
    #[arg(long, default_value = "LOG_INFO", value_parser = parse_level)]
    pub log_level: LevelFilter,
    /// Log to stderr only.
    #[arg(long)]
    pub no_syslog: bool,
    /// Syslog facility (daemon, user, local0 ... local7, ...).
    #[arg(long, default_value = "daemon", value_parser = parse_facility)]
    pub log_facility: Facility,
}

/// A daemon's `main`: sets up logging for `process`, runs `start`, and
/// logs the error it ends with (exit code 1).
pub fn run_daemon(
    process: &str,
    log: &LogArgs,
    start: impl FnOnce() -> Result<(), String>,
) -> std::process::ExitCode {
    init_with(
        process,
        log.log_level,
        (!log.no_syslog).then_some(log.log_facility),
    );
    match start() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Parses a syslog level name (`LOG_INFO`, `info`, `warning`, ...).
pub fn parse_level(name: &str) -> Result<LevelFilter, String> {
    let bare = name.trim().to_ascii_lowercase();
    let bare = bare.strip_prefix("log_").unwrap_or(&bare);
    Ok(match bare {
        "emerg" | "alert" | "crit" | "err" | "error" => LevelFilter::ERROR,
        "warning" | "warn" => LevelFilter::WARN,
        "notice" | "info" => LevelFilter::INFO,
        "debug" => LevelFilter::DEBUG,
        "trace" => LevelFilter::TRACE,
        _ => {
            return Err(format!(
                "unknown log level {name:?}; use one of LOG_EMERG LOG_ALERT LOG_CRIT LOG_ERR \
                 LOG_WARNING LOG_NOTICE LOG_INFO LOG_DEBUG"
            ));
        }
    })
}

/// Parses a syslog facility name (`daemon`, `local3`, `LOG_USER`, ...).
pub fn parse_facility(name: &str) -> Result<Facility, String> {
    name.trim().parse().map_err(|()| {
        format!(
            "unknown syslog facility {name:?}; use one of daemon user local0 local1 local2 \
             local3 local4 local5 local6 local7 (or kern mail auth authpriv syslog lpr news uucp \
             cron ftp ntp audit alert clock_daemon)"
        )
    })
}

/// Installs the stderr and (unless `syslog` is false or unavailable) syslog
/// outputs, facility daemon, for `process`.
pub fn init(process: &str, level: LevelFilter, syslog: bool) {
    init_with(process, level, syslog.then_some(Facility::LOG_DAEMON));
}

/// Installs the stderr and (with a facility, unless unavailable) syslog
/// outputs for `process`.
fn init_with(process: &str, level: LevelFilter, syslog: Option<Facility>) {
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let (syslog_layer, syslog_error) = if let Some(facility) = syslog {
        let formatter = Formatter3164 {
            facility,
            hostname: None,
            process: process.to_string(),
            pid: std::process::id(),
        };
        match syslog::unix(formatter) {
            Ok(logger) => (Some(SyslogLayer(Mutex::new(logger))), None),
            Err(e) => (None, Some(e.to_string())),
        }
    } else {
        (None, None)
    };
    tracing_subscriber::registry()
        .with(level)
        .with(stderr)
        .with(syslog_layer)
        .init();
    if let Some(e) = syslog_error {
        tracing::warn!(
            "syslog is not available ({e}); logging to stderr only. Start rsyslog to keep a log file"
        );
    }
}

struct SyslogLayer(Mutex<Logger<LoggerBackend, Formatter3164>>);

#[derive(Default)]
struct Line {
    text: String,
    severity: Option<String>,
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "severity" => self.severity = Some(value.to_string()),
            "message" => self.text.insert_str(0, value),
            name => {
                let _ = write!(self.text, " {name}={value:?}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.text.insert_str(0, &format!("{value:?}")),
            name => {
                let _ = write!(self.text, " {name}={value:?}");
            }
        }
    }
}

impl<S: Subscriber> Layer<S> for SyslogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut line = Line::default();
        event.record(&mut line);
        let Ok(mut logger) = self.0.lock() else {
            return;
        };
        let text = line.text;
        // A lost syslog line must never stop the daemon; stderr has it too.
        let _ = match (line.severity.as_deref(), *event.metadata().level()) {
            (Some("emerg"), _) => logger.emerg(text),
            (Some("alert"), _) => logger.alert(text),
            (Some("crit"), _) => logger.crit(text),
            (Some("notice"), _) => logger.notice(text),
            (_, Level::ERROR) => logger.err(text),
            (_, Level::WARN) => logger.warning(text),
            (_, Level::INFO) => logger.info(text),
            _ => logger.debug(text),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_level_names_are_understood() {
        assert_eq!(parse_level("LOG_DEBUG"), Ok(LevelFilter::DEBUG));
        assert_eq!(parse_level("LOG_EMERG"), Ok(LevelFilter::ERROR));
        assert_eq!(parse_level("notice"), Ok(LevelFilter::INFO));
        assert!(parse_level("loud").unwrap_err().contains("LOG_WARNING"));
    }

    #[test]
    fn facility_names_are_understood() {
        let code = |name| parse_facility(name).map(|f| f as i32);
        assert_eq!(code("daemon"), Ok(Facility::LOG_DAEMON as i32));
        assert_eq!(code("local0"), Ok(Facility::LOG_LOCAL0 as i32));
        assert_eq!(code("LOCAL7"), Ok(Facility::LOG_LOCAL7 as i32));
        assert_eq!(code(" user "), Ok(Facility::LOG_USER as i32));
        assert_eq!(code("LOG_LOCAL3"), Ok(Facility::LOG_LOCAL3 as i32));
        for bad in ["local8", "", "daemons"] {
            let e = parse_facility(bad).unwrap_err();
            assert!(
                e.contains("local0") && e.contains(&format!("{bad:?}")),
                "{e}"
            );
        }
    }

    #[test]
    fn the_default_facility_is_daemon() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            log: LogArgs,
        }
        let cli = Cli::parse_from(["daemon"]);
        assert_eq!(cli.log.log_facility as i32, Facility::LOG_DAEMON as i32);
        let cli = Cli::parse_from(["daemon", "--log-facility", "local4"]);
        assert_eq!(cli.log.log_facility as i32, Facility::LOG_LOCAL4 as i32);
        assert!(Cli::try_parse_from(["daemon", "--log-facility", "nope"]).is_err());
    }
}
