//! The application step: the service's `start`, `stop` and `status`
//! scripts and its agent, all run with [`crate::script::run`] inside the
//! service's tracker. Besides hasvrd's environment they get `HA_SERVICE`
//! (the service's name), `HA_NODE` (this node's), `HA_ACTION` (`start`,
//! `stop`, `status` or `agent`: one script may serve them all) and, when
//! the daemon gave a socket, [`AGENT_SOCKET_ENV`] (an application that
//! sends its own user heartbeat needs it as much as the agent).
//!
//! * Start: the `start` script must exit 0 within the step's timeout (its
//!   other exit codes are named in the error as LSB and OCF define them for
//!   actions other than status: 1 generic error, 5 not installed, ...).
//! * The agent is started after it and runs until the stop; when it exits
//!   by itself, [`StepEvent::AgentExited`] is sent.
//! * Stop: the agent is killed first (SIGKILL to its process group, by
//!   dropping its run; not reported), then the `stop` script runs, then
//!   every process left in the tracker is killed ([`Tracker::kill_all`]):
//!   nothing of the service outlives its stop (safety rule 7). The stop
//!   fails if the script did not exit 0 or a process survived.
//! * Status: read in the service's `status_codes` convention, see
//!   [`status_of`]. Before the `status` script runs, the
//!   tracker is scanned: in process-group mode hasvrd is the subreaper of
//!   the service's orphaned processes (a daemon its `start` script left
//!   behind), and a scan reaps those that died. Otherwise a crashed daemon
//!   would stay a zombie of hasvrd, and a status script that checks its pid
//!   (`kill -0 $(cat pidfile)`, as LSB scripts do) would take it for
//!   running: the crash would never be noticed.
//!
//! [`Tracker::kill_all`]: crate::track::Tracker::kill_all

use super::{Ctx, KILL_WAIT, StepEvent, TERM_GRACE, joined, left};
use crate::script::verdict::{Convention, ocf_code_name};
use crate::script::{self, Outcome, ScriptSpec, StatusVerdict, Termination};
use crate::service::{Status, Step};
use crate::track::{Mode, TrackError};
use haschema::service::StatusCodes;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The variable that tells the agent API where hasvrd's agent socket is
/// (read by the `api` crate's client, `libhaapi.so` and `haapi`).
pub const AGENT_SOCKET_ENV: &str = "HA_AGENT_SOCKET";

/// Shortest timeout of a status probe: the probe gets `check_interval`
/// (so probes never pile up, and a hung one is noticed within the
/// interval), but at least this, so a loaded node still starts and runs a
/// status script in time.
pub const PROBE_MIN: Duration = Duration::from_secs(1);

/// From SIGTERM to SIGKILL of a status script that timed out.
const PROBE_TERM_GRACE: Duration = Duration::from_secs(1);

/// An agent runs until the stop kills it: its "timeout" is a century.
const AGENT_LIFETIME: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A run of `argv` in the service's tracker.
fn spec(ctx: &Ctx, argv: &[String], action: &str, timeout: Duration) -> ScriptSpec {
    let mut spec = ScriptSpec::new(argv.to_vec(), ctx.tracker.clone(), action);
    spec.timeout = timeout;
    spec.term_grace = TERM_GRACE;
    spec.env = vec![
        ("HA_SERVICE".to_owned(), ctx.name().to_owned()),
        ("HA_NODE".to_owned(), ctx.node.clone()),
        ("HA_ACTION".to_owned(), action.to_owned()),
    ];
    if let Some(socket) = &ctx.agent_socket {
        spec.env.push((
            AGENT_SOCKET_ENV.to_owned(),
            socket.to_string_lossy().into_owned(),
        ));
    }
    spec
}

/// Runs a script; `Err` when it could not be started.
async fn run(ctx: &Ctx, spec: ScriptSpec) -> Result<Outcome, String> {
    let action = spec.log.action.clone();
    script::run(spec).await.map_err(|e| {
        format!(
            "cannot run the {action} script of service {}: {e}; fix `{action}` in {}",
            ctx.name(),
            ctx.cfg.file.display()
        )
    })
}

/// Why a `start` or `stop` script that ran failed, and what to do.
/// `starting`: the `start` script, else the `stop` script.
fn failure(ctx: &Ctx, spec: &ScriptSpec, outcome: &Outcome, starting: bool) -> String {
    let (service, action) = (ctx.name(), &spec.log.action);
    let setting = if starting {
        "start_timeout"
    } else {
        "stop_timeout"
    };
    let limit = ctx.settings.step_timeout(Step::Application, starting);
    let program = &spec.argv[0];
    let log = format!("its output is in hasvrd's log (lines `{service} {action}: ...`)");
    match outcome.termination {
        Termination::Exited(code) => {
            let meaning = ocf_code_name(code)
                .map(|(name, meaning)| format!(" ({name}: {meaning})"))
                .unwrap_or_default();
            format!(
                "the {action} script {program} exited {code}{meaning}: {log}; fix what it \
                 reports"
            )
        }
        Termination::TimedOut => format!(
            "the {action} script {program} did not finish within the service's {setting} \
             ({limit:?}) and was killed (SIGTERM, then SIGKILL, to its process group): {log}; \
             find what it waited for, or raise {setting}"
        ),
        Termination::Signaled { .. } => format!(
            "the {action} script {program} was {}: {log}; the kernel log (`dmesg`) may say who \
             killed it",
            outcome.termination
        ),
    }
}

/// Runs the `start` script, if any, within what is left of the step.
pub(super) async fn start(ctx: &Ctx, deadline: Instant) -> Result<(), String> {
    let Some(argv) = &ctx.cfg.start else {
        return Ok(());
    };
    let spec = spec(ctx, argv, "start", left(deadline));
    let outcome = run(ctx, spec.clone()).await?;
    if !outcome.success() {
        return Err(failure(ctx, &spec, &outcome, true));
    }
    tracing::info!(
        "service {}: start script {} succeeded ({outcome})",
        ctx.name(),
        argv[0]
    );
    Ok(())
}

/// The agent's life, when the service has one: it runs until it exits
/// (reported) or the future is dropped (which kills it).
pub(super) fn agent(ctx: &Arc<Ctx>) -> Option<impl Future<Output = ()> + Send + use<>> {
    let argv = ctx.cfg.agent.clone()?;
    let ctx = ctx.clone();
    Some(async move {
        let service = ctx.name().to_owned();
        tracing::info!("service {service}: starting its agent {argv:?}");
        let how = match script::run(spec(&ctx, &argv, "agent", AGENT_LIFETIME)).await {
            Ok(outcome) => outcome.termination.to_string(),
            Err(e) => format!("could not be started: {e}"),
        };
        tracing::error!(
            "service {service}: its agent {} {how}: the application is no longer watched by \
             it; its output is in hasvrd's log (lines `{service} agent: ...`)",
            argv[0]
        );
        ctx.send(StepEvent::AgentExited { service, how });
    })
}

/// Runs the `stop` script, if any, then kills what is left (the agent is
/// stopped already).
pub(super) async fn stop(ctx: &Ctx, deadline: Instant) -> Result<(), String> {
    let mut errors = Vec::new();
    if let Some(argv) = &ctx.cfg.stop {
        let spec = spec(ctx, argv, "stop", left(deadline));
        match run(ctx, spec.clone()).await {
            Ok(outcome) if outcome.success() => tracing::info!(
                "service {}: stop script {} succeeded ({outcome})",
                ctx.name(),
                argv[0]
            ),
            Ok(outcome) => errors.push(failure(ctx, &spec, &outcome, false)),
            Err(e) => errors.push(e),
        }
    }
    match ctx.tracker.kill_all(left(deadline).max(KILL_WAIT)).await {
        Ok(report) if report.pids.is_empty() => {}
        Ok(report) => tracing::warn!(
            "service {}: killed {} process(es) left after its stop script: pids {:?}",
            ctx.name(),
            report.pids.len(),
            report.pids
        ),
        Err(e @ TrackError::Survivors { .. }) => errors.push(format!(
            "{e}: a process in uninterruptible I/O (state D: a hung disk or NFS server) dies \
             only when its I/O ends; see them with `ps -o pid,stat,wchan,cmd -p PID`, and reset \
             this node before another one takes the service"
        )),
        Err(e) => errors.push(format!("cannot kill what is left of the service: {e}")),
    }
    joined(errors)
}

/// How a status script's exit reads, in the service's convention
/// (`status_codes`): LSB (0 running; 1, 2 and 3 not running) or OCF (0 and
/// 8 running, 7 not running). Anything else, a timeout or a signal is
/// failed: it proves no stop.
fn status_of(codes: StatusCodes, outcome: &Outcome) -> StatusVerdict {
    match codes {
        StatusCodes::Lsb => Convention::Lsb,
        StatusCodes::Ocf => Convention::Ocf,
    }
    .verdict(outcome)
}

/// The application's status (see [`super::Steps::probe`]).
pub(super) async fn probe(ctx: &Ctx) -> Status {
    let service = ctx.name();
    let Some(argv) = &ctx.cfg.status else {
        return match ctx.tracker.is_empty() {
            Ok(true) => Status::NotRunning,
            Ok(false) => Status::Running,
            Err(e) => {
                tracing::error!("service {service}: status probe: {e}");
                Status::Failed
            }
        };
    };
    if *ctx.tracker.mode() == Mode::ProcessGroup
        && let Err(e) = ctx.tracker.pids()
    {
        tracing::warn!(
            "service {service}: cannot reap its dead processes before the status probe: {e}"
        );
    }
    let mut spec = spec(ctx, argv, "status", ctx.cfg.check_interval.max(PROBE_MIN));
    spec.term_grace = PROBE_TERM_GRACE;
    let outcome = match run(ctx, spec).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::error!("service {service}: status probe: {e}");
            return Status::Failed;
        }
    };
    match status_of(ctx.cfg.status_codes, &outcome) {
        StatusVerdict::Running => Status::Running,
        StatusVerdict::NotRunning => Status::NotRunning,
        StatusVerdict::Failed(why) => {
            tracing::warn!(
                "service {service}: status probe by {}: failed ({why}); its output is in \
                 hasvrd's log (lines `{service} status: ...`)",
                argv[0]
            );
            Status::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(termination: Termination) -> Outcome {
        Outcome {
            pid: 1,
            termination,
            duration: Duration::from_millis(5),
        }
    }

    #[test]
    fn status_codes_read_in_the_services_convention() {
        let read = |codes, code| status_of(codes, &ended(Termination::Exited(code)));
        let failed = |v: StatusVerdict| matches!(v, StatusVerdict::Failed(_));
        for codes in [StatusCodes::Lsb, StatusCodes::Ocf] {
            assert_eq!(read(codes, 0), StatusVerdict::Running);
            assert!(matches!(
                status_of(codes, &ended(Termination::TimedOut)),
                StatusVerdict::Failed(r) if r.contains("timed out")
            ));
        }
        for code in [1, 2, 3] {
            assert_eq!(read(StatusCodes::Lsb, code), StatusVerdict::NotRunning);
            // An OCF monitor's error never proves a stop (rule 7).
            assert!(failed(read(StatusCodes::Ocf, code)), "OCF exit {code}");
        }
        assert_eq!(read(StatusCodes::Ocf, 7), StatusVerdict::NotRunning);
        assert_eq!(read(StatusCodes::Ocf, 8), StatusVerdict::Running);
        for code in [4, 5, 6, 9, 42] {
            assert!(failed(read(StatusCodes::Lsb, code)), "LSB exit {code}");
        }
    }
}
