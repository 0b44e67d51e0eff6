//! Shared harness of haapi's integration tests: a real hasvrd agent server
//! (`hasvrd::agent::Agents`) on a socket in a scratch directory, with its
//! events read under a deadline; where the built `libhaapi.so` and `haapi`
//! are; compiling C programs against `api/include` with gcc; agents run
//! in their own process group so a kill takes their children too.

#![allow(dead_code)] // each test file uses part of it

use hasvrd::agent::{Agents, Event, FailCause, Watch, WatchParams};
use hatests::command::{describe, run_for};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// `www`'s heartbeat timing: check_interval 1 s, check_tko 3.
pub const INTERVAL: Duration = Duration::from_secs(1);
pub const TKO: u32 = 3;
pub const WINDOW: Duration = Duration::from_secs(3);

/// Longest wait for an event that must come (beyond what it waits for).
pub const SLACK: Duration = Duration::from_secs(5);

/// A running agent server over the service `www`.
pub struct Server {
    // Dropped before the runtime that runs it.
    agents: Agents,
    rt: tokio::runtime::Runtime,
}

impl Server {
    /// Serves `path` (its directory is created).
    pub fn start(path: &Path) -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let watch = Watch::new([(
            "www".to_owned(),
            WatchParams {
                check_interval: INTERVAL,
                check_tko: TKO,
            },
        )]);
        let agents = {
            let _in_runtime = rt.enter();
            Agents::start(path, None, watch).unwrap()
        };
        Server { agents, rt }
    }

    /// The next event within `wait`, if any.
    pub fn event_within(&mut self, wait: Duration) -> Option<Event> {
        let agents = &mut self.agents;
        self.rt
            .block_on(async { tokio::time::timeout(wait, agents.next_event()).await })
            .ok()
            .flatten()
    }

    /// Waits up to `wait` for an event `want` accepts, skipping others
    /// (listed in the panic message if none comes).
    #[track_caller]
    pub fn wait_for(&mut self, wait: Duration, what: &str, want: impl Fn(&Event) -> bool) -> Event {
        hatests::stream::wait_for(what, wait, |left| self.event_within(left), want)
    }

    /// Asserts that no event comes during `during`.
    #[track_caller]
    pub fn quiet(&mut self, during: Duration) {
        if let Some(e) = self.event_within(during) {
            panic!("unexpected event {e:?}");
        }
    }
}

pub fn opened(e: &Event, pid: u32) -> bool {
    matches!(e, Event::AgentOpened { service, pid: Some(p), .. } if service == "www" && *p as u32 == pid)
}

pub fn closed(e: &Event, pid: u32) -> bool {
    matches!(e, Event::AgentClosed { service, pid: Some(p), .. } if service == "www" && *p as u32 == pid)
}

pub fn reported(e: &Event) -> bool {
    matches!(e, Event::AgentFailed { service, cause: FailCause::Reported { .. } } if service == "www")
}

pub fn silent(e: &Event) -> bool {
    matches!(e, Event::AgentFailed { service, cause: FailCause::Silent { .. } } if service == "www")
}

/// The `haapi` tool of this build.
pub fn haapi() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_haapi"))
}

/// `api/include`.
pub fn include_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("include")
}

/// `agents/templates`.
pub fn templates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../agents/templates")
}

/// The target directory of this test (`target/<profile>`), which holds
/// `libhaapi.so` and `libhaapi.a`: Cargo builds them with the rlib the
/// test links; if they are missing (`HA_NO_BUILD` unset), they are built
/// once with `cargo build -p haapi --lib`.
pub fn profile_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        // target/<profile>/deps/<test binary>
        let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
        let built = |d: &Path| d.join("libhaapi.so").is_file() && d.join("libhaapi.a").is_file();
        if !built(&dir) && std::env::var_os("HA_NO_BUILD").is_none() {
            build_lib(&dir);
        }
        assert!(
            built(&dir),
            "no libhaapi.so and libhaapi.a in {}",
            dir.display()
        );
        dir
    })
    .clone()
}

fn build_lib(profile_dir: &Path) {
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(profile_dir.parent().unwrap())
        .args(["--profile", profile, "-p", "haapi", "--lib"]);
    let status = cmd.status().unwrap();
    assert!(status.success(), "`{}` failed: {status}", describe(&cmd));
}

/// A directory of `libhaapi.so` under the name programs ask for at run
/// time, its SONAME `libhaapi.so.0`, as an installed library provides it.
pub fn lib_dir(scratch: &Path) -> PathBuf {
    let dir = scratch.join("lib");
    std::fs::create_dir_all(&dir).unwrap();
    let so = profile_dir().join("libhaapi.so");
    for name in ["libhaapi.so", "libhaapi.so.0"] {
        let _ = std::fs::remove_file(dir.join(name));
        std::os::unix::fs::symlink(&so, dir.join(name)).unwrap();
    }
    dir
}

/// Runs gcc with `-I api/include` and `args`, panicking with its output
/// on failure.
#[track_caller]
pub fn gcc<A: AsRef<OsStr>>(args: impl IntoIterator<Item = A>) {
    let mut cmd = Command::new("gcc");
    cmd.arg("-I").arg(include_dir()).args(args);
    let f = run_for(&mut cmd, Duration::from_secs(120)).unwrap();
    assert!(
        f.status.success(),
        "`{}` failed ({}):\n{}{}",
        describe(&cmd),
        f.status,
        f.stdout,
        f.stderr
    );
}

/// Compiles `source` into `out` with the gcc flags `extra`, linked to
/// `libhaapi.so` (found at run time through an rpath to [`lib_dir`]).
#[track_caller]
pub fn compile_shared(scratch: &Path, source: &Path, out: &Path, extra: &[&str]) {
    let lib = lib_dir(scratch);
    let mut args: Vec<OsString> = vec![source.into(), "-o".into(), out.into()];
    args.extend(extra.iter().map(OsString::from));
    let mut libflag = OsString::from("-L");
    libflag.push(&lib);
    let mut rpath = OsString::from("-Wl,-rpath,");
    rpath.push(&lib);
    args.extend([libflag, "-lhaapi".into(), rpath]);
    gcc(args);
}

/// An agent process in its own process group, killed (group and all)
/// when dropped.
pub struct Agent {
    pub child: Child,
}

impl Agent {
    pub fn spawn(cmd: &mut Command) -> Agent {
        use std::os::unix::process::CommandExt as _;
        let child = cmd
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", describe(cmd)));
        Agent { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL to the agent and everything it started.
    pub fn kill(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }

    /// The exit code within `wait`; panics if it is still running.
    #[track_caller]
    pub fn exit_code_within(&mut self, wait: Duration) -> Option<i32> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "agent still running after {wait:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}
