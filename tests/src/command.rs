//! Running helper programs (`ip`, `nft`, `hactl`) with bounded waits and
//! error messages that say what was run and what it printed.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What a finished program left behind.
#[derive(Debug, Clone)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// The exit code, or None if a signal ended the program.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Describes a command for error messages: program and arguments.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion, killing it after `timeout`. Returns an error
/// text if it could not start or did not finish in time; the exit status is
/// left to the caller.
pub fn run_for(cmd: &mut Command, timeout: Duration) -> Result<Finished, String> {
    let what = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `{what}`: {e}"))?;
    // Drain both pipes in threads so a chatty program cannot block on a
    // full pipe while we wait for it.
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = wait_deadline(&mut child, timeout);
    let status = match status {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err.join().unwrap_or_default();
            return Err(format!(
                "`{what}` did not finish within {timeout:?}; stderr: {stderr}"
            ));
        }
    };
    Ok(Finished {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Runs `cmd` (30 s at most) and requires exit code 0; returns its stdout.
pub fn run_ok(cmd: &mut Command) -> Result<String, String> {
    let what = describe(cmd);
    let f = run_for(cmd, Duration::from_secs(30))?;
    if f.status.success() {
        Ok(f.stdout)
    } else {
        Err(format!(
            "`{what}` failed ({}): {}{}",
            f.status,
            f.stderr.trim(),
            if f.stdout.trim().is_empty() {
                String::new()
            } else {
                format!("\nstdout: {}", f.stdout.trim())
            }
        ))
    }
}

/// Like [`run_ok`], panicking with the error text.
#[track_caller]
pub fn must(cmd: &mut Command) -> String {
    match run_ok(cmd) {
        Ok(out) => out,
        Err(e) => panic!("{e}"),
    }
}

/// Waits for `child` until `timeout`; None if it is still running then.
pub fn wait_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(_) => return None,
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}
