//! Running a vendor tool for a check: an argument vector (never a shell
//! string), looked up in PATH unless absolute, in its own process group,
//! optionally as another user, with text on its stdin and its output
//! captured (bounded). Dropping the future of [`Tool::run`] before the
//! tool is done (the agent's timeout) sends SIGKILL to its whole process
//! group; if the agent itself dies, the kernel sends SIGKILL to the tool
//! (parent-death signal).
//!
//! hasvrd's `script::run` is not reused here: it logs a script's output
//! instead of returning it, and starts scripts inside a service tracker,
//! while a check must read what the tool printed.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Gid, Pid, Uid, User};
use std::ffi::{CString, OsString};
use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};

/// Most bytes kept of a tool's stdout and of its stderr; the rest is read
/// and dropped.
pub const MAX_OUTPUT: usize = 64 * 1024;

/// Longest excerpt of a tool's output quoted in a reason.
const MAX_EXCERPT: usize = 200;

/// The flags of the agents that run vendor tools.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ToolArgs {
    /// Run the tools as this user (its uid, primary and supplementary
    /// groups, HOME, USER and LOGNAME), e.g. the database's owner.
    #[arg(long, value_name = "USER")]
    pub run_as: Option<String>,
    /// Extra environment for the tools, NAME=VALUE; repeat as needed.
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value))
            if !name.is_empty() && !name.contains('\0') && !value.contains('\0') =>
        {
            Ok((name.to_owned(), value.to_owned()))
        }
        _ => Err(format!(
            "{text:?}: expected NAME=VALUE with a non-empty NAME"
        )),
    }
}

/// Who a tool runs as.
#[derive(Debug, Clone)]
struct Account {
    name: String,
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
    home: PathBuf,
}

impl Account {
    fn lookup(name: &str) -> Result<Account, String> {
        let user = User::from_name(name)
            .map_err(|e| format!("cannot look up user {name:?}: {e}"))?
            .ok_or_else(|| format!("no user {name:?} on this node: fix --run-as"))?;
        let cname = CString::new(name).map_err(|_| format!("user name {name:?} holds a NUL"))?;
        let groups = nix::unistd::getgrouplist(&cname, user.gid)
            .map_err(|e| format!("cannot list the groups of {name:?}: {e}"))?;
        Ok(Account {
            name: name.to_owned(),
            uid: user.uid,
            gid: user.gid,
            groups,
            home: user.dir,
        })
    }
}

/// One tool run.
#[derive(Debug, Clone)]
pub struct Tool {
    argv: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    stdin: Option<Vec<u8>>,
    run_as: Option<String>,
}

impl Tool {
    /// `program` (looked up in PATH unless it holds a `/`) with `args`,
    /// the environment of `common`.
    pub fn new<I, A>(program: impl Into<OsString>, args: I, common: &ToolArgs) -> Tool
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        let mut argv = vec![program.into()];
        argv.extend(args.into_iter().map(Into::into));
        Tool {
            argv,
            env: common
                .env
                .iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            stdin: None,
            run_as: common.run_as.clone(),
        }
    }

    /// Sets a variable (before the `--env` ones, which win).
    pub fn env(mut self, name: &str, value: impl Into<OsString>) -> Tool {
        self.env.insert(0, (name.into(), value.into()));
        self
    }

    /// Text written to the tool's stdin (then closed); without it, stdin
    /// is /dev/null.
    pub fn stdin(mut self, text: impl Into<Vec<u8>>) -> Tool {
        self.stdin = Some(text.into());
        self
    }

    /// The program's name, for reasons.
    pub fn program(&self) -> String {
        self.argv[0].to_string_lossy().into_owned()
    }

    /// Runs the tool to its end. `Err` when it cannot be started; how it
    /// ended is in the [`Output`].
    pub async fn run(&self) -> Result<Output, String> {
        let program = self.program();
        let mut cmd = tokio::process::Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
        let account = match &self.run_as {
            Some(name) => Some(Account::lookup(name)?),
            None => None,
        };
        if let Some(account) = &account {
            cmd.env("HOME", &account.home)
                .env("USER", &account.name)
                .env("LOGNAME", &account.name);
        }
        // SAFETY: runs in the forked child before execve and only makes
        // system calls (setgroups, setgid, setuid, prctl), which are
        // async-signal-safe; the group list was built before the fork.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(a) = &account {
                    nix::unistd::setgroups(&a.groups)?;
                    nix::unistd::setgid(a.gid)?;
                    nix::unistd::setuid(a.uid)?;
                }
                // Last: a change of credentials clears it. A tool outlives
                // a killed agent (hasvrd's stop kills the agent's process
                // group, not the tool's) only until the kernel sends this.
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
                Ok(())
            });
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd.spawn().map_err(|e| spawn_error(&program, &e))?;
        let pid = child.id().and_then(|id| i32::try_from(id).ok());
        let mut guard = KillGroupOnDrop(pid.map(Pid::from_raw));
        let stdin = child.stdin.take();
        let text = self.stdin.clone().unwrap_or_default();
        let feed = async move {
            if let Some(mut pipe) = stdin {
                // A tool that exits without reading all of it is fine.
                let _ = pipe.write_all(&text).await;
            }
        };
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let ((), stdout, stderr, status) = tokio::join!(
            feed,
            read_bounded(stdout),
            read_bounded(stderr),
            child.wait()
        );
        let status = status.map_err(|e| format!("waiting for {program}: {e}"))?;
        guard.0 = None;
        Ok(Output {
            program,
            code: status.code(),
            signal: status.signal(),
            stdout,
            stderr,
        })
    }
}

fn spawn_error(program: &str, e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::NotFound {
        format!(
            "cannot run {program}: not found (install it, put it on PATH, or give its path with \
             the agent's flag)"
        )
    } else {
        format!("cannot run {program}: {e}")
    }
}

/// SIGKILL to a tool's process group unless disarmed (set to `None`).
struct KillGroupOnDrop(Option<Pid>);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            tracing::debug!("killing the process group {pgid} of a check");
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

/// Reads `reader` to its end, keeping at most [`MAX_OUTPUT`] bytes.
async fn read_bounded(reader: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut reader) = reader else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// How a tool ended and what it printed.
#[derive(Debug, Clone)]
pub struct Output {
    pub program: String,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Both outputs, stdout first.
    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Whether stdout or stderr holds `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.stdout.contains(needle) || self.stderr.contains(needle)
    }

    /// The first line of either output that starts (after blanks) with the
    /// first of `prefixes` that any line starts with: list specific error
    /// codes (`ORA-`) before generic headers (`ERROR:`).
    pub fn line_starting(&self, prefixes: &[&str]) -> Option<String> {
        let text = self.text();
        prefixes.iter().find_map(|p| {
            text.lines()
                .map(str::trim)
                .find(|l| l.starts_with(p))
                .map(excerpt)
        })
    }

    /// A reason for a failed check: `what`, how the tool ended, and the
    /// last line it printed (stderr first).
    pub fn failure(&self, what: &str) -> String {
        let last = [&self.stderr, &self.stdout]
            .into_iter()
            .find_map(|t| t.lines().map(str::trim).rfind(|l| !l.is_empty()))
            .map(|l| format!(": {}", excerpt(l)))
            .unwrap_or_default();
        format!("{} {what} ({self}){last}", self.program)
    }
}

impl fmt::Display for Output {
    /// How it ended: `exit 1`, `killed by SIGSEGV`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit {code}"),
            (None, Some(signal)) => write!(f, "killed by {}", hasvrd::script::signal_name(signal)),
            (None, None) => f.write_str("ended"),
        }
    }
}

/// `line`, cleaned of control characters and cut to [`MAX_EXCERPT`] bytes.
pub fn excerpt(line: &str) -> String {
    haschema::agent::clean_text(line, MAX_EXCERPT)
}

/// The first of `names` found as an executable file in PATH, if any.
pub fn find_in_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok() && p.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_flags_need_a_name() {
        assert_eq!(
            parse_env("ORACLE_SID=ora1"),
            Ok(("ORACLE_SID".into(), "ora1".into()))
        );
        assert_eq!(parse_env("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(parse_env("=x").is_err());
        assert!(parse_env("NOVALUE").is_err());
    }

    /// Runs `tool` on a runtime of its own.
    fn try_run(tool: Tool) -> Result<Output, String> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(tool.run())
    }

    fn run(tool: Tool) -> Output {
        try_run(tool).unwrap()
    }

    #[test]
    fn output_and_exit_are_captured_and_stdin_is_fed() {
        let common = ToolArgs {
            run_as: None,
            env: vec![("HA_X".into(), "from --env".into())],
        };
        let out = run(Tool::new(
            "/bin/sh",
            [
                "-c",
                "read line; echo \"$line $HA_X\"; echo oops >&2; exit 3",
            ],
            &common,
        )
        .stdin("hello\n"));
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, "hello from --env\n");
        assert_eq!(out.failure("failed"), "/bin/sh failed (exit 3): oops");
        assert!(!out.success());
    }

    #[test]
    fn a_missing_program_is_a_clear_error() {
        let e = try_run(Tool::new("/nonexistent/tool", ["x"], &ToolArgs::default())).unwrap_err();
        assert!(e.contains("not found"), "{e}");
    }

    #[test]
    fn tools_run_as_the_given_user() {
        if !hatests::require_root() {
            return;
        }
        let common = ToolArgs {
            run_as: Some("nobody".into()),
            env: Vec::new(),
        };
        let out = run(Tool::new("/bin/sh", ["-c", "echo $(id -u) $USER"], &common));
        let nobody = User::from_name("nobody").unwrap().unwrap();
        assert_eq!(out.stdout, format!("{} nobody\n", nobody.uid));
        let missing = ToolArgs {
            run_as: Some("no-such-user-here".into()),
            env: Vec::new(),
        };
        let e = try_run(Tool::new("/bin/true", ["x"], &missing)).unwrap_err();
        assert!(e.contains("no user"), "{e}");
    }

    #[test]
    fn output_is_bounded() {
        let out = run(Tool::new(
            "/bin/sh",
            ["-c", "head -c 200000 /dev/zero | tr '\\0' x"],
            &ToolArgs::default(),
        ));
        assert!(out.success());
        assert_eq!(out.stdout.len(), MAX_OUTPUT);
    }
}
