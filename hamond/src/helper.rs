//! Running an external helper program for hamond (fence agents, alert
//! hooks, sendmail): the argument vector is executed directly (no shell, no
//! `PATH` lookup of the program), with extra environment variables, in its
//! own process group; the given bytes are written to its stdin, which is
//! then closed; its stdout and stderr are collected, each capped at
//! [`MAX_OUTPUT`]. At the timeout, or if the caller drops the future, the
//! whole process group gets SIGKILL.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::fmt;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Most bytes of each of stdout and stderr kept (the rest is read and dropped).
pub const MAX_OUTPUT: u64 = 64 * 1024;
/// How long, once the program exited, its output may take to reach EOF (a
/// process it left behind may hold the pipes open).
const DRAIN: Duration = Duration::from_millis(500);

/// What a program that ran to its end left behind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Finished {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Why a program did not run to its end.
#[derive(Debug)]
pub enum RunError {
    /// The argument vector is empty.
    NoProgram,
    /// It could not be started (missing, not executable).
    Spawn {
        program: String,
        source: std::io::Error,
    },
    /// Waiting for it failed.
    Wait {
        program: String,
        source: std::io::Error,
    },
    /// It was still running at the timeout and was killed.
    TimedOut(Duration),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::NoProgram => f.write_str("no program to run"),
            RunError::Spawn { program, source } => write!(f, "cannot start {program}: {source}"),
            RunError::Wait { program, source } => write!(f, "waiting for {program}: {source}"),
            RunError::TimedOut(after) => write!(
                f,
                "still running after {}, killed",
                humantime::format_duration(*after)
            ),
        }
    }
}

impl std::error::Error for RunError {}

/// Runs `argv` with `env` added to hamond's environment, feeds it `stdin`,
/// and waits at most `timeout`.
pub async fn run(
    argv: &[String],
    env: &[(String, String)],
    stdin: &[u8],
    timeout: Duration,
) -> Result<Finished, RunError> {
    let (program, args) = argv.split_first().ok_or(RunError::NoProgram)?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| RunError::Spawn {
            program: program.clone(),
            source,
        })?;
    let group = GroupKill(child.id());
    let out = tokio::spawn(read_capped(child.stdout.take()));
    let err = tokio::spawn(read_capped(child.stderr.take()));
    let mut pipe = child.stdin.take();
    let waited = tokio::time::timeout(timeout, async {
        if let Some(pipe) = pipe.as_mut() {
            // A program that exits without reading its stdin is judged by
            // its exit code, not by the broken pipe.
            let _ = pipe.write_all(stdin).await;
            let _ = pipe.shutdown().await;
        }
        drop(pipe);
        child.wait().await
    })
    .await;
    // Whatever the program left in its group is of no use any more.
    drop(group);
    let status = match waited {
        Err(_) => {
            let _ = child.wait().await;
            out.abort();
            err.abort();
            return Err(RunError::TimedOut(timeout));
        }
        Ok(Err(source)) => {
            return Err(RunError::Wait {
                program: program.clone(),
                source,
            });
        }
        Ok(Ok(status)) => status,
    };
    let stdout = tokio::time::timeout(DRAIN, out).await;
    let stderr = tokio::time::timeout(DRAIN, err).await;
    Ok(Finished {
        code: status.code(),
        stdout: stdout.ok().and_then(Result::ok).unwrap_or_default(),
        stderr: stderr.ok().and_then(Result::ok).unwrap_or_default(),
    })
}

/// Reads a pipe to its end, keeping the first [`MAX_OUTPUT`] bytes.
async fn read_capped<R: AsyncRead + Unpin>(pipe: Option<R>) -> String {
    let Some(pipe) = pipe else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut head = pipe.take(MAX_OUTPUT);
    let _ = head.read_to_end(&mut kept).await;
    let _ = tokio::io::copy(&mut head.into_inner(), &mut tokio::io::sink()).await;
    String::from_utf8_lossy(&kept).into_owned()
}

/// SIGKILL to the program's process group when dropped.
struct GroupKill(Option<u32>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.and_then(|p| i32::try_from(p).ok()) {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
}
