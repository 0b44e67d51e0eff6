//! [`ExternalAgent`]: a fencing device driven by an external program in the
//! fence-agents convention (`fence_ipmilan`, `fence_apc`, ...).
//!
//! Each call runs `agent` (argv, no shell, no PATH lookup) in its own process
//! group and writes one `key=value` line per option to its stdin, then
//! closes it:
//!
//! ```text
//! action=off
//! plug=beta
//! port=beta
//! ip=10.0.0.9
//! username=admin
//! password=...        (read from password_file at each call)
//! ```
//!
//! `plug` and `port` (the same node name, the older and newer spelling) are
//! left out for `monitor`. Exit code: 0 is success; for `status`, 0 means on,
//! 2 off, anything else failure. At the timeout the whole process group gets
//! SIGKILL. The agent's stdout (INFO) and stderr (WARN) are logged line by
//! line with every occurrence of the password replaced by `******`; the
//! password itself is never logged.

use super::{Action, BoxFuture, FenceDevice, FenceError, FenceOutcome, PowerState};
use crate::helper::{self, Finished, RunError};
use haschema::config::FenceConfig;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;
/// What a password is replaced with in logs and errors.
const MASK: &str = "******";

/// A `[[fence]]` device: an external fence agent.
#[derive(Clone, Debug)]
pub struct ExternalAgent {
    name: String,
    argv: Vec<String>,
    nodes: Vec<String>,
    options: BTreeMap<String, String>,
    password_file: Option<PathBuf>,
    timeout: Duration,
}

/// One call's stdin, with the secret to keep out of the logs.
struct Request {
    stdin: String,
    password: Option<String>,
}

impl ExternalAgent {
    /// The device a `[[fence]]` table describes.
    pub fn new(config: &FenceConfig) -> ExternalAgent {
        ExternalAgent {
            name: config.name.clone(),
            argv: config.agent.clone(),
            nodes: config.nodes.clone(),
            options: config.options.clone(),
            password_file: config.password_file.clone(),
            timeout: config.timeout,
        }
    }

    /// The stdin text for `action` on `node` (None for `monitor`), with the
    /// password read from `password_file` now.
    fn request(&self, node: Option<&str>, action: Action) -> Result<Request, FenceError> {
        let mut stdin = String::new();
        let _ = writeln!(stdin, "action={}", action.as_str());
        if let Some(node) = node {
            let _ = writeln!(stdin, "plug={node}");
            let _ = writeln!(stdin, "port={node}");
        }
        for (key, value) in &self.options {
            let _ = writeln!(stdin, "{key}={value}");
        }
        let password = match &self.password_file {
            None => None,
            Some(path) => {
                let password = read_password(path)?;
                let _ = writeln!(stdin, "password={password}");
                Some(password)
            }
        };
        Ok(Request { stdin, password })
    }

    /// Runs the agent once.
    async fn call(&self, node: Option<&str>, action: Action) -> Result<FenceOutcome, FenceError> {
        let request = self.request(node, action)?;
        let target = node.unwrap_or("-");
        tracing::debug!(
            device = %self.name,
            node = target,
            "fence agent stdin: {}",
            shown_stdin(&request.stdin).join(" ")
        );
        let finished = self.run(&request).await;
        let finished = match finished {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(device = %self.name, node = target, %action, "fence agent: {e}");
                return Err(e);
            }
        };
        for line in finished.stdout.lines().filter(|l| !l.trim().is_empty()) {
            tracing::info!(device = %self.name, node = target, %action, "agent: {line}");
        }
        for line in finished.stderr.lines().filter(|l| !l.trim().is_empty()) {
            tracing::warn!(device = %self.name, node = target, %action, "agent: {line}");
        }
        interpret(action, finished.code, last_line(&finished))
    }

    /// Runs the agent with the request on its stdin (its process group is
    /// killed at the timeout) and collects its output, masked.
    async fn run(&self, request: &Request) -> Result<Finished, FenceError> {
        let ran = helper::run(&self.argv, &[], request.stdin.as_bytes(), self.timeout).await;
        let finished = match ran {
            Ok(f) => f,
            Err(RunError::TimedOut(after)) => return Err(FenceError::TimedOut(after)),
            Err(RunError::NoProgram) => {
                return Err(FenceError::Setup(format!(
                    "{}: no agent program",
                    self.name
                )));
            }
            Err(e) => return Err(FenceError::Setup(e.to_string())),
        };
        let mask = |t: &str| redact(t, request.password.as_deref());
        Ok(Finished {
            code: finished.code,
            stdout: mask(&finished.stdout),
            stderr: mask(&finished.stderr),
        })
    }
}

impl FenceDevice for ExternalAgent {
    fn name(&self) -> &str {
        &self.name
    }

    fn fences(&self, node: &str) -> bool {
        self.nodes.iter().any(|n| n == node)
    }

    fn fence<'a>(
        &'a self,
        node: &'a str,
        action: Action,
    ) -> BoxFuture<'a, Result<FenceOutcome, FenceError>> {
        Box::pin(async move {
            if !self.fences(node) {
                return Err(FenceError::NotMine {
                    device: self.name.clone(),
                    node: node.to_owned(),
                });
            }
            let node = (action != Action::Monitor).then_some(node);
            self.call(node, action).await
        })
    }

    fn monitor(&self) -> BoxFuture<'_, Result<(), FenceError>> {
        Box::pin(async move { self.call(None, Action::Monitor).await.map(|_| ()) })
    }
}

/// The fence-agents reading of an exit code (None: killed by a signal).
pub fn interpret(
    action: Action,
    code: Option<i32>,
    detail: String,
) -> Result<FenceOutcome, FenceError> {
    match (action, code) {
        (Action::Status, Some(0)) => Ok(FenceOutcome::Power(PowerState::On)),
        (Action::Status, Some(2)) => Ok(FenceOutcome::Power(PowerState::Off)),
        (Action::Status, _) => Err(FenceError::Failed { code, detail }),
        (_, Some(0)) => Ok(FenceOutcome::Done),
        _ => Err(FenceError::Failed { code, detail }),
    }
}

/// The password in `path`: its first line, without the line break.
fn read_password(path: &std::path::Path) -> Result<String, FenceError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        FenceError::Setup(format!(
            "cannot read the password file {}: {e}",
            path.display()
        ))
    })?;
    let password = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if password.is_empty() || password.contains(['\n', '\r', '\0']) {
        return Err(FenceError::Setup(format!(
            "the password file {} must hold the password on one line",
            path.display()
        )));
    }
    Ok(password.to_owned())
}

/// `text` with every occurrence of `secret` masked.
fn redact(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() => text.replace(s, MASK),
        _ => text.to_owned(),
    }
}

/// The stdin lines as they may be logged: the password's value masked.
fn shown_stdin(stdin: &str) -> Vec<String> {
    stdin
        .lines()
        .map(|l| match l.split_once('=') {
            Some(("password", _)) => format!("password={MASK}"),
            _ => l.to_owned(),
        })
        .collect()
}

/// The last non-empty line of stderr, else of stdout, at most 200 characters.
fn last_line(f: &Finished) -> String {
    let line = last_nonempty(&f.stderr)
        .or_else(|| last_nonempty(&f.stdout))
        .unwrap_or("");
    line.chars().take(200).collect()
}

fn last_nonempty(text: &str) -> Option<&str> {
    text.lines().rev().map(str::trim).find(|l| !l.is_empty())
}

#[cfg(test)]
mod tests;
