//! Packaging: the SysV rc script `packaging/init.d/hacluster` runs a real
//! node. A two-node cluster (alpha, beta) is built by the harness, then
//! alpha's daemon is handed over to the rc script, run inside alpha's
//! network namespace with its paths pointed at the test's directory and the
//! built binaries. Checks: `start` waits until hamond answers, runs it in
//! the namespace and never twice; `status` follows LSB (0 running, with
//! `hactl status`; 3 not running); `restart` and `stop` make hamond leave
//! cleanly (exit 0, and beta logs "left the cluster cleanly"); a daemon
//! that cannot leave is killed after the bounded wait, and beta sees a
//! crash (its hasvrd is killed first, or it would restart hamond); a
//! crashed hamond is restarted by its hasvrd, which the pidfile follows;
//! start errors get LSB codes and hamond's own message.
//!
//! Also checks the packaging files with their own tools: the rc script with
//! `sh -n`, `bash -n` and shellcheck, its boot order with insserv (stops
//! before the network and syslog), the systemd unit with
//! `systemd-analyze verify` and its ordering lines, the rsyslog snippet
//! with `rsyslogd -N1`, the logrotate rules with `logrotate -d`. `sh` and
//! `bash` are always there; the other tools run when installed and are
//! otherwise reported as not run.

use haschema::ctl::State::{Down, Up};
use hatests::command::{Finished, describe, run_for};
use hatests::scratch::ScratchDir;
use hatests::{Netns, TestCluster, bins, require_root};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Longest wait for any state change (robust on a loaded 2-core machine).
const WAIT: Duration = Duration::from_secs(20);
/// Longest any one run of the rc script may take.
const RC_TIMEOUT: Duration = Duration::from_secs(60);
/// What a peer logs when a node leaves cleanly.
const CLEAN_LEAVE: &str = "NodeDown: alpha left the cluster cleanly";
/// What a peer logs when a node is lost without a leave.
const LOST: &str = "NodeDown: alpha is down";

/// A file of the packaging folder.
fn packaging(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../packaging")
        .join(rel)
}

/// The rc script.
fn rc_script() -> PathBuf {
    packaging("init.d/hacluster")
}

/// Is `program` on PATH?
fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Runs a checker; panics with its output unless it exits 0.
#[track_caller]
fn check(cmd: &mut Command) -> Finished {
    let what = describe(cmd);
    let f = run_for(cmd, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        f.status.success(),
        "`{what}` failed ({}):\n{}{}",
        f.status,
        f.stdout,
        f.stderr
    );
    f
}

/// The rc script run for one node: inside its namespace, every path in a
/// directory of the test, the binaries of this build.
struct Rc<'a> {
    ns: &'a Netns,
    node: String,
    config: PathBuf,
    state_dir: PathBuf,
    /// Holds the defaults file, `run/` (pidfile, socket) and `log/`.
    dir: PathBuf,
}

impl<'a> Rc<'a> {
    /// The rc script for `node` of `c`. Its defaults file names the node
    /// and passes two options through HAMOND_ARGS (no syslog in tests).
    #[track_caller]
    fn new(c: &'a TestCluster, node: &str) -> Rc<'a> {
        let dir = c.dir().join(format!("{node}.rc"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let defaults = format!(
            "# /etc/default/hacluster of the test node {node}\n\
             HA_NODE={node}\n\
             HAMOND_ARGS=\"--no-syslog --log-level LOG_INFO\"\n"
        );
        let file = dir.join("default");
        std::fs::write(&file, defaults).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        Rc {
            ns: c.ns(node),
            node: node.to_owned(),
            config: c.config_path().to_owned(),
            state_dir: c.dir().join(format!("{node}.state")),
            dir,
        }
    }

    /// hamond's own pidfile, which it holds locked (in its state dir).
    fn pidfile(&self) -> PathBuf {
        self.state_dir.join("hamond.pid")
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("run/hamond.sock")
    }

    /// What hamond wrote on stderr under the rc script.
    fn stderr_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log/stderr.log")).unwrap_or_default()
    }

    /// `ip netns exec NS hacluster ACTION` with the test's paths and
    /// `extra` environment variables.
    fn command(&self, action: &str, extra: &[(&str, &str)]) -> Command {
        let bin = bins::bin_dir();
        let mut cmd = self.ns.command(rc_script());
        cmd.arg(action)
            .env("HA_SBIN", &bin)
            .env("HA_BIN", &bin)
            .env("HA_CONFIG", &self.config)
            .env("HA_DEFAULTS", self.dir.join("default"))
            .env("HA_RUNDIR", self.dir.join("run"))
            .env("HA_STATEDIR", &self.state_dir)
            .env("HA_LOGDIR", self.dir.join("log"))
            .env_remove("HA_NODE")
            .env_remove("HAMOND_ARGS")
            .env_remove("HA_START_TIMEOUT")
            .env_remove("HA_STOP_TIMEOUT");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs the script (60 s at most) and returns what it left.
    #[track_caller]
    fn run_with(&self, action: &str, extra: &[(&str, &str)]) -> Finished {
        let mut cmd = self.command(action, extra);
        run_for(&mut cmd, RC_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs the script and requires exit code `code`.
    #[track_caller]
    fn expect(&self, action: &str, extra: &[(&str, &str)], code: i32) -> Finished {
        let f = self.run_with(action, extra);
        // Shown with the output of a failing test (or --nocapture).
        println!(
            "$ hacluster {action} {extra:?} -> {}\n{}{}",
            f.status, f.stdout, f.stderr
        );
        assert_eq!(
            f.code(),
            Some(code),
            "`hacluster {action}` for {} exited {} (expected {code})\nstdout:\n{}\nstderr:\n{}\nhamond's stderr.log:\n{}",
            self.node,
            f.status,
            f.stdout,
            f.stderr,
            self.stderr_log()
        );
        f
    }

    /// The pid in the pidfile.
    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.pidfile())
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// `hactl status --json` on this node's socket parsed, None while it
    /// does not answer.
    fn report(&self) -> Option<haschema::ctl::StatusReport> {
        let mut cmd = Command::new(bins::hactl());
        cmd.arg("--socket")
            .arg(self.socket())
            .args(["status", "--json"]);
        let f = run_for(&mut cmd, Duration::from_secs(15)).ok()?;
        match f.code() {
            Some(0..=2) => serde_json::from_str(&f.stdout).ok(),
            _ => None,
        }
    }
}

/// This test process adopts the daemons the rc script starts (they are
/// orphaned when start-stop-daemon detaches them), so their exit status
/// can be read, and no zombie is left behind.
fn adopt_orphans() {
    nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
}

/// Waits (bounded) for adopted process `pid` to end and reaps it.
#[track_caller]
fn reap(pid: i32, timeout: Duration) -> WaitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(status) => return status,
            Err(e) => {
                panic!("waitpid({pid}): {e} (hamond was not adopted by the test: not a child?)")
            }
        }
        assert!(
            Instant::now() < deadline,
            "hamond (pid {pid}) still runs {timeout:?} after `stop` said it was gone"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `node`'s log, after byte `offset`, contains `needle`.
#[track_caller]
fn wait_for_log_since(c: &TestCluster, node: &str, offset: u64, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let log = c.log_since(node, offset);
        if log.contains(needle) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "{node}'s log has no `{needle}` after {WAIT:?}; since the mark:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until beta sees alpha `state`. Only beta is polled: alpha's
/// daemon, run by the rc script, is not the harness's child.
#[track_caller]
fn beta_sees_alpha(c: &TestCluster, state: haschema::ctl::State) {
    c.wait_until(&format!("beta sees alpha {state:?}"), WAIT, |s| {
        s.peer_state("beta", "alpha") == Some(state)
    });
}

/// Builds alpha and beta, waits until they see each other, then stops the
/// harness's own alpha daemon (a clean leave) so the rc script can run
/// alpha instead.
#[track_caller]
fn cluster_with_alpha_handed_over(test: &str) -> TestCluster {
    let c = TestCluster::new(test, &["alpha", "beta"]);
    c.wait_until("alpha and beta see each other up", WAIT, |s| {
        s.peer_state("alpha", "beta") == Some(Up) && s.peer_state("beta", "alpha") == Some(Up)
    });
    let mark = c.log_len("beta");
    let status = c.shutdown("alpha");
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "the harness's alpha stops cleanly"
    );
    wait_for_log_since(&c, "beta", mark, CLEAN_LEAVE);
    c
}

#[test]
fn rc_script_starts_reports_and_stops_a_node_that_leaves_cleanly() {
    if !require_root() {
        return;
    }
    adopt_orphans();
    let c = cluster_with_alpha_handed_over("pkg_rc_clean");
    let rc = Rc::new(&c, "alpha");

    // Never started here: LSB "not running".
    let f = rc.expect("status", &[], 3);
    assert!(f.stdout.contains("not running"), "{}", f.stdout);

    // start: returns once hamond answers, with hamond inside alpha's
    // namespace; beta sees alpha again.
    let f = rc.expect("start", &[], 0);
    assert!(f.stdout.contains("hamond started"), "{}", f.stdout);
    let pid = rc.pid().expect("start wrote the pidfile");
    assert!(
        rc.ns.pids().contains(&pid),
        "hamond (pid {pid}) runs inside alpha's namespace (there: {:?})",
        rc.ns.pids()
    );
    assert!(
        rc.report().is_some(),
        "hamond answers once `start` returned"
    );
    beta_sees_alpha(&c, Up);
    let report = rc.report().expect("alpha answers");
    assert_eq!(report.node, "alpha");

    // start again: no second daemon.
    let f = rc.expect("start", &[], 0);
    assert!(f.stdout.contains("already running"), "{}", f.stdout);
    assert_eq!(rc.pid(), Some(pid), "the same daemon");

    // status: 0, with hactl's table in which alpha sees beta up.
    let deadline = Instant::now() + WAIT;
    loop {
        let f = rc.expect("status", &[], 0);
        assert!(f.stdout.contains("hamond is running"), "{}", f.stdout);
        let beta_up = f
            .stdout
            .lines()
            .any(|l| l.starts_with("beta") && l.contains("UP"));
        if beta_up {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "`status` never showed beta UP:\n{}",
            f.stdout
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // restart: the old daemon leaves cleanly, a new one comes up.
    let mark = c.log_len("beta");
    let f = rc.expect("restart", &[], 0);
    assert!(f.stdout.contains("left the cluster"), "{}", f.stdout);
    assert_eq!(reap(pid, WAIT), WaitStatus::Exited(Pid::from_raw(pid), 0));
    let pid2 = rc.pid().expect("restart wrote a new pidfile");
    assert_ne!(pid2, pid, "restart runs a new daemon");
    wait_for_log_since(&c, "beta", mark, CLEAN_LEAVE);
    beta_sees_alpha(&c, Up);

    // stop: SIGTERM, the leave, exit 0, well within the bounded wait.
    let mark = c.log_len("beta");
    let started = Instant::now();
    let f = rc.expect("stop", &[], 0);
    let took = started.elapsed();
    assert!(
        f.stdout.contains("hamond stopped: it left the cluster"),
        "{}",
        f.stdout
    );
    assert!(
        !f.stdout.contains("kill"),
        "no SIGKILL was needed:\n{}",
        f.stdout
    );
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
    assert_eq!(
        reap(pid2, WAIT),
        WaitStatus::Exited(Pid::from_raw(pid2), 0),
        "hamond exits 0 on stop"
    );
    let log = wait_for_log_since(&c, "beta", mark, CLEAN_LEAVE);
    assert!(
        !log.contains(LOST),
        "beta saw a clean leave, not a crash:\n{log}"
    );
    beta_sees_alpha(&c, Down);
    assert!(
        rc.stderr_log()
            .contains("shutting down: telling peers this node leaves the cluster"),
        "hamond's stderr went to stderr.log:\n{}",
        rc.stderr_log()
    );

    // Stopped: LSB "not running", no pidfile; stopping again is fine.
    let f = rc.expect("status", &[], 3);
    assert!(f.stdout.contains("not running"), "{}", f.stdout);
    assert!(!rc.pidfile().exists(), "stop removed the pidfile");
    let f = rc.expect("stop", &[], 0);
    assert!(f.stdout.contains("not running"), "{}", f.stdout);
    assert_eq!(rc.expect("try-restart", &[], 0).code(), Some(0));
    assert!(
        rc.pid().is_none(),
        "try-restart starts nothing when stopped"
    );
}

#[test]
fn rc_script_reports_start_errors_kills_a_daemon_that_cannot_leave_and_survives_a_crash() {
    if !require_root() {
        return;
    }
    adopt_orphans();
    let c = cluster_with_alpha_handed_over("pkg_rc_kill");
    let rc = Rc::new(&c, "alpha");

    // Not configured (LSB 6): no node name, no config file.
    let nameless = rc.dir.join("default-nameless");
    std::fs::write(&nameless, "# no HA_NODE\n").expect("write defaults");
    let f = rc.expect(
        "start",
        &[("HA_DEFAULTS", nameless.to_str().expect("utf-8 path"))],
        6,
    );
    assert!(f.stdout.contains("HA_NODE is not set"), "{}", f.stdout);
    let f = rc.expect("start", &[("HA_CONFIG", "/nonexistent/cluster.toml")], 6);
    assert!(f.stdout.contains("no cluster config"), "{}", f.stdout);
    // Not installed (LSB 5).
    let f = rc.expect("start", &[("HA_SBIN", "/nonexistent")], 5);
    assert!(f.stdout.contains("not installed"), "{}", f.stdout);
    // hamond refuses to start (a node name not in the config): start fails
    // with hamond's own words, and leaves no pidfile.
    let stranger = rc.dir.join("default-stranger");
    std::fs::write(&stranger, "HA_NODE=gamma\nHAMOND_ARGS=--no-syslog\n").expect("write defaults");
    let f = rc.expect(
        "start",
        &[("HA_DEFAULTS", stranger.to_str().expect("utf-8 path"))],
        1,
    );
    assert!(
        f.stdout.contains("exited during start") && f.stdout.contains("\"gamma\" is not in"),
        "{}",
        f.stdout
    );
    rc.expect("status", &[], 3);
    // Bad usage (LSB 2).
    rc.expect("frobnicate", &[], 2);

    // A daemon that cannot leave (frozen by SIGSTOP) is killed once the
    // bounded wait is over; beta sees a crash, not a leave.
    rc.expect("start", &[], 0);
    let pid = rc.pid().expect("pidfile");
    beta_sees_alpha(&c, Up);
    kill(Pid::from_raw(pid), Signal::SIGSTOP).expect("SIGSTOP hamond");
    let mark = c.log_len("beta");
    let started = Instant::now();
    let f = rc.expect("stop", &[("HA_STOP_TIMEOUT", "2")], 0);
    let took = started.elapsed();
    assert!(
        f.stdout
            .contains("did not leave within 2s: killing it (the peers will see a crash)")
            && f.stdout.contains("hasvrd killed first")
            && f.stdout.contains("hamond killed"),
        "{}",
        f.stdout
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(15),
        "stop waited the 2 s, then killed promptly: took {took:?}"
    );
    assert_eq!(
        reap(pid, WAIT),
        WaitStatus::Signaled(Pid::from_raw(pid), Signal::SIGKILL, false),
        "hamond was killed"
    );
    let log = wait_for_log_since(&c, "beta", mark, LOST);
    assert!(
        !log.contains(CLEAN_LEAVE),
        "a killed daemon does not look like a leave:\n{log}"
    );
    let f = rc.expect("status", &[], 3);
    assert!(f.stdout.contains("not running"), "{}", f.stdout);

    // A crash (SIGKILL from outside): hasvrd starts hamond again, which
    // writes its new pid in the pidfile; stop still leaves cleanly.
    rc.expect("start", &[], 0);
    let pid = rc.pid().expect("pidfile");
    beta_sees_alpha(&c, Up);
    kill(Pid::from_raw(pid), Signal::SIGKILL).expect("SIGKILL hamond");
    assert_eq!(
        reap(pid, WAIT),
        WaitStatus::Signaled(Pid::from_raw(pid), Signal::SIGKILL, false)
    );
    let deadline = Instant::now() + WAIT;
    let pid2 = loop {
        match rc.pid().filter(|&p| p != pid) {
            Some(p) if rc.run_with("status", &[]).code() == Some(0) => break p,
            _ => {}
        }
        assert!(Instant::now() < deadline, "hasvrd did not restart hamond");
        std::thread::sleep(Duration::from_millis(100));
    };
    let f = rc.expect("start", &[], 0);
    assert!(f.stdout.contains("already running"), "{}", f.stdout);
    beta_sees_alpha(&c, Up);
    let mark = c.log_len("beta");
    rc.expect("stop", &[], 0);
    // hamond's parent, hasvrd, has exited by then: it is the test's to reap.
    assert_eq!(reap(pid2, WAIT), WaitStatus::Exited(Pid::from_raw(pid2), 0));
    wait_for_log_since(&c, "beta", mark, CLEAN_LEAVE);
    rc.expect("status", &[], 3);
}

#[test]
fn packaging_files_pass_their_checkers() {
    let mut not_run = Vec::new();

    // The rc script: POSIX sh, and bash for good measure.
    let script = rc_script();
    check(Command::new("sh").arg("-n").arg(&script));
    check(Command::new("bash").arg("-n").arg(&script));
    if installed("shellcheck") {
        // -x with the script's own folder: also checks the defaults file
        // it sources (../default/hacluster).
        check(
            Command::new("shellcheck")
                .args(["-s", "sh", "-x", "-P", "SCRIPTDIR"])
                .arg(&script),
        );
    } else {
        not_run.push("shellcheck (apt-get install shellcheck)");
    }
    // Executable, as installed in /etc/init.d.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&script)
            .expect("rc script")
            .permissions()
            .mode();
        assert!(mode & 0o111 == 0o111, "{} mode {mode:o}", script.display());
    }

    // The unit, checked on a copy whose ExecStart names this build's
    // hamond (verify requires the program to exist).
    let unit =
        std::fs::read_to_string(packaging("systemd/hacluster.service")).expect("read the unit");
    if installed("systemd-analyze") {
        let dir = ScratchDir::new("pkg_unit");
        assert!(unit.contains("ExecStart=/usr/sbin/hamond "), "{unit}");
        let copy = dir.join("hacluster.service");
        let hamond = bins::hamond();
        std::fs::write(
            &copy,
            unit.replace("/usr/sbin/hamond", &hamond.to_string_lossy()),
        )
        .expect("write the unit copy");
        let f = check(Command::new("systemd-analyze").arg("verify").arg(&copy));
        assert!(
            f.stderr.trim().is_empty(),
            "systemd-analyze verify warns:\n{}",
            f.stderr
        );
    } else {
        not_run.push("systemd-analyze verify (apt-get install systemd)");
    }

    // Shutdown order under systemd: stopped before the network (the
    // reverse of After=), by a SIGTERM to hamond alone, and restarted
    // after any exit with hasvrd left running for it to adopt.
    for line in [
        "Wants=network-online.target",
        "KillMode=process",
        "Restart=always",
        "EnvironmentFile=-/etc/default/hacluster",
        "RuntimeDirectory=hacluster",
        "StateDirectory=hacluster",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit has `{line}`");
    }
    let after: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("After="))
        .flat_map(str::split_whitespace)
        .collect();
    for target in ["network.target", "network-online.target"] {
        assert!(after.contains(&target), "After= has {target}: {after:?}");
    }

    // Shutdown order under SysV rc: insserv, on a tree of stub scripts
    // that provide the facilities, must stop hacluster before the network
    // and syslog, and start it after them.
    if installed("insserv") && Path::new("/etc/insserv.conf").is_file() {
        let (start, stop) = insserv_order();
        assert!(
            position(&stop, "hacluster") < position(&stop, "networking")
                && position(&stop, "hacluster") < position(&stop, "rsyslog"),
            "rc0.d stops hacluster first: {stop:?}"
        );
        assert!(
            position(&start, "hacluster") > position(&start, "rsyslog"),
            "rc2.d starts hacluster after syslog: {start:?}"
        );
    } else {
        not_run.push("insserv ordering (apt-get install insserv)");
    }

    if installed("rsyslogd") {
        check(
            Command::new("rsyslogd")
                .arg("-N1")
                .arg("-f")
                .arg(packaging("rsyslog/30-hacluster.conf")),
        );
    } else {
        not_run.push("rsyslogd -N1 (apt-get install rsyslog)");
    }

    if installed("logrotate") {
        let dir = ScratchDir::new("pkg_logrotate");
        let f = check(
            Command::new("logrotate")
                .arg("-d")
                .arg("-s")
                .arg(dir.join("state"))
                .arg(packaging("logrotate/hacluster")),
        );
        let out = format!("{}{}", f.stdout, f.stderr);
        assert!(
            !out.contains("error"),
            "logrotate -d reports an error:\n{out}"
        );
    } else {
        not_run.push("logrotate -d (apt-get install logrotate)");
    }

    if !not_run.is_empty() {
        eprintln!("packaging checks not run (tool not installed): {not_run:?}");
    }
}

/// Runs insserv on a scratch tree holding the rc script and stubs for the
/// facilities its headers need; returns the links of rc2.d and rc0.d, in
/// the order they run (S01..., K01...).
fn insserv_order() -> (Vec<String>, Vec<String>) {
    let dir = ScratchDir::new("pkg_insserv");
    let etc = dir.join("etc");
    let initd = etc.join("init.d");
    for sub in [
        "init.d", "rc0.d", "rc1.d", "rc2.d", "rc3.d", "rc4.d", "rc5.d", "rc6.d", "rcS.d",
    ] {
        std::fs::create_dir_all(etc.join(sub)).expect("mkdir");
    }
    // name, default start, default stop, required (like Debian's own).
    let stubs = [
        ("mountkernfs.sh", "S", "", ""),
        ("hwclock.sh", "S", "", ""),
        ("networking", "S", "0 6", "mountkernfs.sh"),
        ("mountnfs.sh", "S", "", "$network"),
        ("rsyslog", "2 3 4 5", "0 1 6", "$remote_fs $time"),
    ];
    let mut names = Vec::new();
    for (name, start, stop, req) in stubs {
        let text = format!(
            "#!/bin/sh\n### BEGIN INIT INFO\n# Provides: {name}\n# Required-Start: {req}\n\
             # Required-Stop: {req}\n# Default-Start: {start}\n# Default-Stop: {stop}\n\
             # Short-Description: stub\n### END INIT INFO\n"
        );
        let path = initd.join(name);
        std::fs::write(&path, text).expect("write stub");
        // insserv skips scripts that are not executable.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod stub");
        names.push(name);
    }
    std::fs::copy(rc_script(), initd.join("hacluster")).expect("copy the rc script");
    names.push("hacluster");
    for name in names {
        check(
            Command::new("insserv")
                .arg("-p")
                .arg(&initd)
                .args(["-c", "/etc/insserv.conf"])
                .arg(name),
        );
    }
    let links = |rc: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(etc.join(rc))
            .expect("read rc dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        v.sort();
        v
    };
    (links("rc2.d"), links("rc0.d"))
}

/// The place of `name`'s link (S or K, two digits, then the name) in the
/// run order: the number only, since links of one number run together.
#[track_caller]
fn position(links: &[String], name: &str) -> u32 {
    links
        .iter()
        .find(|l| l.get(3..) == Some(name))
        .and_then(|l| l.get(1..3)?.parse().ok())
        .unwrap_or_else(|| panic!("no link for {name} in {links:?}"))
}
