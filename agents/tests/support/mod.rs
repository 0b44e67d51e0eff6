//! Shared harness of haagents' tests: hasvrd's real agent server
//! (`hasvrd::agent::Agents`) watching the service `db`, behind a
//! recording proxy socket so a test sees every request line an agent sends
//! (hasvrd raises no event for an `ok`); the stand-in vendor tools
//! (tests/standins) first on PATH, switched up, down or hung through a mode
//! file; the agents run in their own process group.

#![allow(dead_code)] // each test file uses part of it

use hasvrd::agent::{Agents, Event, FailCause, Watch, WatchParams};
use hatests::scratch::ScratchDir;
use hatests::stream::wait_for;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

/// The service the harness's hasvrd knows.
pub const SERVICE: &str = "db";

/// Longest wait for something that must happen.
pub const WAIT: Duration = Duration::from_secs(20);

/// Check timing given to the agents: fast checks, a timeout well above a
/// stand-in's run time, and three failures before `err`.
pub const FAST: [&str; 6] = ["--interval", "50ms", "--timeout", "2s", "--failures", "3"];

/// The harness: hasvrd's agent server, its proxy, and the stand-in state.
pub struct Harness {
    pub scratch: ScratchDir,
    agents: Agents,
    lines: mpsc::UnboundedReceiver<String>,
    // Dropped last: it runs the server and the proxy.
    rt: tokio::runtime::Runtime,
}

/// Forwards each request line of one agent connection to hasvrd and its
/// reply back, reporting the line.
async fn relay(client: UnixStream, upstream: PathBuf, seen: mpsc::UnboundedSender<String>) {
    let (read, mut write) = client.into_split();
    let mut requests = BufReader::new(read).lines();
    while let Ok(Some(line)) = requests.next_line().await {
        let _ = seen.send(line.clone());
        let Ok(server) = UnixStream::connect(&upstream).await else {
            return;
        };
        let (sread, mut swrite) = server.into_split();
        if swrite
            .write_all(format!("{line}\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
        let Ok(Some(reply)) = BufReader::new(sread).lines().next_line().await else {
            return;
        };
        if write
            .write_all(format!("{reply}\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

impl Harness {
    pub fn start(tag: &str) -> Harness {
        let scratch = ScratchDir::new(tag);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        // A long window: silence never fails the service in these tests,
        // only what the agent reports.
        let watch = Watch::new([(
            SERVICE.to_owned(),
            WatchParams {
                check_interval: Duration::from_secs(60),
                check_tko: 5,
            },
        )]);
        let upstream = scratch.join("agent.sock");
        let proxy = scratch.join("proxy.sock");
        let (seen, lines) = mpsc::unbounded_channel();
        let agents = {
            let _in_runtime = rt.enter();
            let listener = UnixListener::bind(&proxy).unwrap();
            let up = upstream.clone();
            rt.spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    tokio::spawn(relay(client, up.clone(), seen.clone()));
                }
            });
            Agents::start(&upstream, None, watch).unwrap()
        };
        Harness {
            scratch,
            agents,
            lines,
            rt,
        }
    }

    /// The socket agents talk to.
    pub fn socket(&self) -> PathBuf {
        self.scratch.join("proxy.sock")
    }

    /// The agent binary `exe` (`env!("CARGO_BIN_EXE_NAME")`) with the
    /// harness's environment: the service, the socket, a short grace
    /// period, the stand-ins first on PATH; its stderr goes to `NAME.log`
    /// in the scratch directory (kept when the test fails).
    pub fn agent(&self, exe: &str, args: &[&str]) -> Agent {
        let name = Path::new(exe).file_name().unwrap().to_string_lossy();
        let standins = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/standins");
        let path = std::env::join_paths(std::iter::once(standins).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )))
        .unwrap();
        let log = std::fs::File::create(self.scratch.join(format!("{name}.log"))).unwrap();
        let child = Command::new(exe)
            .args(args)
            .env("HA_SERVICE", SERVICE)
            .env("HA_AGENT_SOCKET", self.socket())
            .env("HA_AGENT_GRACE", "2")
            .env("STANDIN_DIR", self.scratch.path())
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {exe}: {e}"));
        Agent { child }
    }

    /// The stand-in tools' state (in the scratch directory).
    pub fn standins(&self) -> Standins {
        Standins {
            dir: self.scratch.path().to_path_buf(),
        }
    }

    /// The next request line an agent sent, within `wait`.
    pub fn line_within(&mut self, wait: Duration) -> Option<String> {
        let lines = &mut self.lines;
        self.rt
            .block_on(async { tokio::time::timeout(wait, lines.recv()).await })
            .ok()
            .flatten()
    }

    /// Waits for a request line that starts with `start`, skipping others
    /// (listed in the panic message if none comes).
    #[track_caller]
    pub fn wait_line(&mut self, start: &str) -> String {
        wait_for(
            &format!("line starting {start:?}"),
            WAIT,
            |left| self.line_within(left),
            |line| line.starts_with(start),
        )
    }

    /// Waits for a hasvrd event `want` accepts, skipping others.
    #[track_caller]
    pub fn wait_event(&mut self, what: &str, want: impl Fn(&Event) -> bool) -> Event {
        let (agents, rt) = (&mut self.agents, &self.rt);
        wait_for(
            what,
            WAIT,
            |left| {
                rt.block_on(async { tokio::time::timeout(left, agents.next_event()).await })
                    .ok()
                    .flatten()
            },
            want,
        )
    }
}

impl Drop for Harness {
    /// Kills what a hung stand-in left (its process group), even when the
    /// test failed before its agent's timeout did.
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.scratch.join("hung-tool.pid"));
        if let Some(pgid) = pid.ok().and_then(|p| p.trim().parse().ok()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// What an agent checks, switched by a test: up, down (answers that the
/// service is broken) or hang (never answers).
pub trait Backend {
    fn set_mode(&self, mode: &str);
    /// How many checks reached it in `mode`.
    fn calls_in(&self, mode: &str) -> usize;
    /// Whether what the last hung check left behind is gone (waiting up
    /// to [`WAIT`]).
    fn hang_cleaned_up(&self) -> bool;
}

/// The stand-in vendor tools of tests/standins: their mode file, their
/// log of calls and the pid a hung one leaves, in `dir`.
pub struct Standins {
    pub dir: PathBuf,
}

impl Standins {
    /// Switches the stand-ins to `mode` (up, down or hang).
    fn set_mode_file(&self, mode: &str) {
        let tmp = self.dir.join("mode.tmp");
        std::fs::write(&tmp, mode).unwrap();
        std::fs::rename(&tmp, self.dir.join("mode")).unwrap();
    }

    /// The stand-in calls logged so far, one "TOOL MODE ARGS..." a line.
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// How many tool runs happened in `mode`. A check stops at its first
    /// tool that fails, so in "down" or "hang" mode this counts the failed
    /// checks.
    fn count(&self, mode: &str) -> usize {
        self.calls()
            .iter()
            .filter(|l| l.split(' ').nth(1) == Some(mode))
            .count()
    }
}

impl Backend for Standins {
    fn set_mode(&self, mode: &str) {
        self.set_mode_file(mode);
    }

    fn calls_in(&self, mode: &str) -> usize {
        self.count(mode)
    }

    /// The hung tool's child `sleep` (same process group) is gone.
    fn hang_cleaned_up(&self) -> bool {
        let hung: i32 = std::fs::read_to_string(self.dir.join("hung.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        gone(hung)
    }
}

/// An agent process in its own process group, killed (group and all)
/// when dropped.
pub struct Agent {
    pub child: Child,
}

impl Agent {
    /// Sends `signal` to the agent.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).unwrap();
    }

    /// The exit code within [`WAIT`] (None when a signal ended it);
    /// panics if it is still running.
    #[track_caller]
    pub fn exit_code(&mut self) -> Option<i32> {
        let child = &mut self.child;
        poll(|| child.try_wait().unwrap())
            .unwrap_or_else(|| panic!("agent still running after {WAIT:?}"))
            .code()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let pgid = nix::unistd::Pid::from_raw(self.child.id() as i32);
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// The first `Some` of `probe`, polled for up to [`WAIT`].
pub fn poll<T>(mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` is gone (or a zombie), waiting up to [`WAIT`].
pub fn gone(pid: i32) -> bool {
    poll(|| match hasvrd::procfs::stat(pid) {
        Some(s) if !s.is_zombie() => None,
        _ => Some(()),
    })
    .is_some()
}

/// Failures before `err` in [`FAST`].
pub const FAILURES: usize = 3;

/// Runs the agent `exe` with [`FAST`] and `args` against `backend` through
/// up, down, up, hang, up and SIGTERM: healthy checks send `ok`; a down
/// backend is reported (`err`, whose reason must hold `down`) only after
/// [`FAILURES`] checks in a row; a hung check is killed at the timeout and
/// counts as a failure; SIGTERM sends `close` and exits 0.
pub fn lifecycle(h: &mut Harness, backend: &dyn Backend, exe: &str, args: &[&str], down: &str) {
    backend.set_mode("up");
    let mut all = FAST.to_vec();
    all.extend_from_slice(args);
    let mut agent = h.agent(exe, &all);
    let ok = format!("ok {SERVICE}");
    let err = format!("err {SERVICE} ");
    h.wait_line(&format!("open {SERVICE}"));
    for _ in 0..3 {
        h.wait_line(&ok);
    }

    // Down: err only after FAILURES failed checks in a row (checks run one
    // at a time, so a premature err would come with fewer down calls).
    backend.set_mode("down");
    let line = h.wait_line(&err);
    let down_calls = backend.calls_in("down");
    assert!(
        down_calls >= FAILURES,
        "err after {down_calls} failed checks: {line}"
    );
    assert!(line.contains(down), "{line:?} lacks {down:?}");
    h.wait_event("the reported failure", |e| {
        matches!(e, Event::AgentFailed { service, cause: FailCause::Reported { .. } } if service == SERVICE)
    });

    backend.set_mode("up");
    h.wait_line(&ok);

    // Hung: each check is killed at the timeout, and counts as failed.
    backend.set_mode("hang");
    let line = h.wait_line(&err);
    assert!(line.contains("timeout"), "{line:?}");
    let hung = backend.calls_in("hang");
    assert!(hung >= FAILURES, "err after {hung} hung checks: {line}");
    assert!(
        backend.hang_cleaned_up(),
        "the hung check left something behind"
    );

    backend.set_mode("up");
    h.wait_line(&ok);
    agent.signal(nix::sys::signal::Signal::SIGTERM);
    h.wait_line(&format!("close {SERVICE}"));
    assert_eq!(agent.exit_code(), Some(0));
}
