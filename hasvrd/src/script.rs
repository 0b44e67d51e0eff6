//! Service scripts: run with an argument vector, in their own process group, with a timeout.
//!
//! [`run`] executes `argv[0]` (an absolute path) directly with `argv[1..]`
//! as its arguments: never through a shell, never looked up in `PATH`, so
//! spaces and shell metacharacters in arguments reach the script literally.
//! The script:
//!
//! * starts inside its service's [`Tracker`] (its cgroup v2, joined before
//!   `execve`: see [`crate::track`]), so whatever it starts, even a daemon
//!   that double-forks and calls `setsid`, is killed by
//!   [`Tracker::kill_all`];
//! * leads its own session and process group (`setsid`), without a
//!   controlling terminal, stdin from `/dev/null`;
//! * inherits hasvrd's environment plus [`ScriptSpec::env`];
//! * has its stdout and stderr logged line by line (INFO and WARN),
//!   prefixed with the service and the action, at most
//!   [`output::MAX_LINE`] bytes a line. A daemon that keeps the script's
//!   stdout open does not hold [`run`] up: its later lines are still logged;
//! * gets, at its timeout, SIGTERM to its whole process group, then SIGKILL
//!   to the group after [`ScriptSpec::term_grace`] if anything of the group
//!   is left; the outcome says [`Termination::TimedOut`]. Processes that left
//!   the group (`setsid`) are not signalled: they belong to the service, and
//!   only its stop (or [`Tracker::kill_all`]) ends them.
//!
//! Dropping the future of [`run`] before it returns sends SIGKILL to the
//! script's process group.
//!
//! [`verdict`] reads the exit of a status script in the OCF and the LSB
//! conventions.

pub mod output;
pub mod verdict;

pub use verdict::{Convention, StatusVerdict, lsb_status, ocf_monitor};

use crate::track::{TrackError, Tracker};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Default [`ScriptSpec::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Default [`ScriptSpec::term_grace`].
pub const DEFAULT_TERM_GRACE: Duration = Duration::from_secs(5);

/// How long [`run`] waits, once the script has exited, for the output it
/// wrote to reach the log (more only if a process it left behind keeps
/// writing: that is logged later, in the background).
const DRAIN: Duration = Duration::from_millis(250);

/// Poll period while waiting for a process group to die out.
const GROUP_POLL: Duration = Duration::from_millis(10);

/// Who a script's log lines are about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogContext {
    pub service: String,
    /// `start`, `stop`, `status`, `monitor`, ...
    pub action: String,
}

/// One script run.
#[derive(Debug, Clone)]
pub struct ScriptSpec {
    /// The program (absolute path) and its arguments, passed as they are.
    pub argv: Vec<String>,
    /// Added to (or replacing in) hasvrd's environment: service name,
    /// action, node, ...
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: PathBuf,
    /// From start to SIGTERM of the process group.
    pub timeout: Duration,
    /// From SIGTERM to SIGKILL.
    pub term_grace: Duration,
    /// The service's processes: the script starts inside it.
    pub tracker: Tracker,
    /// The prefix of the script's log lines.
    pub log: LogContext,
}

impl ScriptSpec {
    /// A spec with no extra environment, working directory `/`,
    /// [`DEFAULT_TIMEOUT`] and [`DEFAULT_TERM_GRACE`]; the service name of the
    /// log context is the tracker's.
    pub fn new(argv: Vec<String>, tracker: Tracker, action: &str) -> ScriptSpec {
        ScriptSpec {
            argv,
            env: Vec::new(),
            cwd: PathBuf::from("/"),
            timeout: DEFAULT_TIMEOUT,
            term_grace: DEFAULT_TERM_GRACE,
            log: LogContext {
                service: tracker.service().to_owned(),
                action: action.to_owned(),
            },
            tracker,
        }
    }
}

/// How a script ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it (not one [`run`] sent).
    Signaled { signal: i32, core_dumped: bool },
    /// It ran past its timeout; [`run`] sent SIGTERM, then SIGKILL, to its
    /// process group.
    TimedOut,
}

/// What [`run`] observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The script's pid (and process group and session id).
    pub pid: i32,
    pub termination: Termination,
    /// From spawn until it was reaped (or, timed out, until the kill
    /// sequence ended).
    pub duration: Duration,
}

impl Outcome {
    /// Exited with code 0.
    pub fn success(&self) -> bool {
        self.termination == Termination::Exited(0)
    }

    /// The exit code, if it exited.
    pub fn exit_code(&self) -> Option<i32> {
        match self.termination {
            Termination::Exited(code) => Some(code),
            _ => None,
        }
    }
}

/// `SIGKILL`, or `signal 40` for one without a name.
pub fn signal_name(signal: i32) -> String {
    match Signal::try_from(signal) {
        Ok(s) => s.as_str().to_owned(),
        Err(_) => format!("signal {signal}"),
    }
}

impl fmt::Display for Termination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Termination::Exited(code) => write!(f, "exited {code}"),
            Termination::Signaled {
                signal,
                core_dumped,
            } => {
                write!(f, "killed by {}", signal_name(signal))?;
                if core_dumped {
                    f.write_str(" (core dumped)")?;
                }
                Ok(())
            }
            Termination::TimedOut => f.write_str("timed out"),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} after {:.3?}", self.termination, self.duration)
    }
}

/// Why a script could not be run (or waited for). A script that ran and
/// failed is an [`Outcome`], not an error.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("empty argument vector: no program to run")]
    EmptyArgv,
    #[error(
        "program {0:?} is not an absolute path: scripts are executed directly, never looked up \
         in PATH nor run through a shell"
    )]
    RelativeProgram(String),
    #[error("{0} contains a NUL byte")]
    Nul(String),
    #[error("environment variable name {0:?} is empty or contains '='")]
    EnvName(String),
    #[error("cannot track the script's processes: {0}")]
    Track(#[from] TrackError),
    #[error("cannot start {program}: {source}")]
    Spawn { program: String, source: io::Error },
    #[error("waiting for {program} (pid {pid}): {source}")]
    Wait {
        program: String,
        pid: i32,
        source: io::Error,
    },
}

fn check_spec(spec: &ScriptSpec) -> Result<(), ScriptError> {
    let program = spec.argv.first().ok_or(ScriptError::EmptyArgv)?;
    for (i, arg) in spec.argv.iter().enumerate() {
        if arg.contains('\0') {
            return Err(ScriptError::Nul(format!("argument {i} {arg:?}")));
        }
    }
    if !Path::new(program).is_absolute() {
        return Err(ScriptError::RelativeProgram(program.clone()));
    }
    for (k, v) in &spec.env {
        if k.is_empty() || k.contains('=') {
            return Err(ScriptError::EnvName(k.clone()));
        }
        if k.contains('\0') || v.contains('\0') {
            return Err(ScriptError::Nul(format!("environment variable {k:?}")));
        }
    }
    if spec.cwd.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(ScriptError::Nul("working directory".into()));
    }
    Ok(())
}

/// SIGKILL to a script's process group if [`run`] is dropped before the
/// script was reaped.
struct KillOnDrop {
    pgid: Pid,
    armed: bool,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.armed {
            let _ = killpg(self.pgid, Signal::SIGKILL);
        }
    }
}

fn termination(status: ExitStatus) -> Termination {
    match (status.code(), status.signal()) {
        (Some(code), _) => Termination::Exited(code),
        (None, Some(signal)) => Termination::Signaled {
            signal,
            core_dumped: status.core_dumped(),
        },
        // Neither code nor signal: cannot happen for a reaped child.
        (None, None) => Termination::Exited(status.into_raw()),
    }
}

/// Runs one script to its end or its timeout (see the module
/// documentation). `Err` only when it could not be started (or waited for);
/// every way it ends is an [`Outcome`].
pub async fn run(spec: ScriptSpec) -> Result<Outcome, ScriptError> {
    check_spec(&spec)?;
    let program = spec.argv[0].clone();
    let ctx = Arc::new(spec.log.clone());
    let (service, action) = (&ctx.service, &ctx.action);

    let hook = spec.tracker.prepare_spawn()?;
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(&spec.argv[1..])
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false);
    // SAFETY: runs in the forked child before execve; it only calls write(2)
    // on an open descriptor and setsid(2), both async-signal-safe, and
    // allocates nothing (the io::Error of a failure wraps a raw errno).
    unsafe {
        cmd.pre_exec(move || {
            hook.enter()?;
            nix::unistd::setsid().map_err(io::Error::from)?;
            Ok(())
        });
    }
    tracing::debug!("{service} {action}: running {:?}", spec.argv);
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|source| ScriptError::Spawn {
        program: program.clone(),
        source,
    })?;
    // Closes the parent's copy of the cgroup.procs descriptor.
    drop(cmd);
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .expect("a child just spawned has a pid");
    let pgid = Pid::from_raw(pid);
    let _registered = spec.tracker.spawned(pid);
    let mut guard = KillOnDrop { pgid, armed: true };

    let mut pumps = Vec::with_capacity(2);
    if let Some(out) = child.stdout.take() {
        pumps.push(tokio::spawn(output::pump(
            out,
            output::Stream::Stdout,
            ctx.clone(),
        )));
    }
    if let Some(err) = child.stderr.take() {
        pumps.push(tokio::spawn(output::pump(
            err,
            output::Stream::Stderr,
            ctx.clone(),
        )));
    }

    let deadline = start + spec.timeout;
    let waited = tokio::select! {
        status = child.wait() => Some(status),
        () = tokio::time::sleep_until(deadline) => None,
    };
    let wait_err = |source| ScriptError::Wait {
        program: program.clone(),
        pid,
        source,
    };
    let termination = match waited {
        Some(status) => {
            guard.armed = false;
            termination(status.map_err(wait_err)?)
        }
        None => {
            tracing::warn!(
                "{service} {action}: timed out after {:?}: SIGTERM to its process group {pid}",
                spec.timeout
            );
            let _ = killpg(pgid, Signal::SIGTERM);
            let grace_end = Instant::now() + spec.term_grace;
            let mut reaped = tokio::time::timeout_at(grace_end, child.wait())
                .await
                .is_ok();
            if reaped {
                guard.armed = false;
                // Its children may still be handling SIGTERM.
                while Instant::now() < grace_end && killpg(pgid, None).is_ok() {
                    tokio::time::sleep(GROUP_POLL).await;
                }
            }
            if killpg(pgid, None).is_ok() {
                tracing::warn!(
                    "{service} {action}: process group {pid} still there {:?} after SIGTERM: SIGKILL",
                    spec.term_grace
                );
                let _ = killpg(pgid, Signal::SIGKILL);
            }
            if !reaped {
                reaped = tokio::time::timeout(spec.term_grace, child.wait())
                    .await
                    .is_ok();
                guard.armed = !reaped;
                if !reaped {
                    tracing::warn!(
                        "{service} {action}: pid {pid} not gone {:?} after SIGKILL",
                        spec.term_grace
                    );
                }
            }
            Termination::TimedOut
        }
    };
    let duration = start.elapsed();
    // A process the script left behind may hold its stdout open for ever:
    // take what the script wrote, let the rest be logged in the background.
    let _ = tokio::time::timeout(DRAIN, async {
        for pump in &mut pumps {
            let _ = pump.await;
        }
    })
    .await;
    let outcome = Outcome {
        pid,
        termination,
        duration,
    };
    tracing::debug!("{service} {action}: {outcome}");
    Ok(outcome)
}
