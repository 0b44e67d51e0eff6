//! Service scripts run for real (root): argv passed literally, output in the
//! log, timeouts that kill the whole process group, exit-code verdicts, and
//! per-service cgroup tracking that holds on to double-forking daemons. The
//! scripts are small bash files written into a scratch directory.

use hasvrd::script::{
    self, Convention, LogContext, Outcome, ScriptError, ScriptSpec, StatusVerdict, Termination,
};
use hasvrd::track::{self, Mode, TrackError, Tracker};
use hatests::scratch::ScratchDir;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

mod common;
use common::Cleanup;

// ---- helpers ----------------------------------------------------------------

/// Everything logged by this test binary (one global subscriber, as script
/// output is logged from tasks that may run on any thread).
fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || LogWriter(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        buf
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logged() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

/// The log lines that contain `needle`.
fn log_lines_with(needle: &str) -> Vec<String> {
    logged()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// A service name unique to this test run.
fn service(tag: &str) -> String {
    format!(
        "t-{}-{}-{}",
        hatests::unique::sanitize(tag, 20),
        hatests::unique::pid(),
        hatests::unique::next()
    )
}

/// A pid is alive while /proc has it and it is not a zombie.
fn alive(pid: i32) -> bool {
    hasvrd::procfs::stat(pid).is_some_and(|s| !matches!(s.state, 'Z' | 'X'))
}

async fn dead_within(pid: i32, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    !alive(pid)
}

/// Polls until the tracker has no process left (SIGKILL is sent at once,
/// but a killed process still has to be scheduled to exit).
async fn empty_within(t: &Tracker, within: Duration) -> bool {
    let end = Instant::now() + within;
    while !t.is_empty().unwrap() && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    t.is_empty().unwrap()
}

async fn read_pid(path: &Path) -> i32 {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && let Ok(pid) = s.trim().parse()
        {
            return pid;
        }
        assert!(Instant::now() < end, "{} never written", path.display());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn tracker(tag: &str) -> (Tracker, Cleanup) {
    let t = Tracker::for_service("hatests", &service(tag)).expect("tracker");
    (t.clone(), Cleanup(t))
}

fn spec(argv: Vec<String>, tracker: &Tracker, action: &str) -> ScriptSpec {
    let mut s = ScriptSpec::new(argv, tracker.clone(), action);
    s.timeout = Duration::from_secs(20);
    s.term_grace = Duration::from_millis(500);
    s
}

// ---- argv, environment, output ----------------------------------------------

#[tokio::test]
async fn argv_with_spaces_and_metacharacters_is_passed_literally() {
    if !hatests::require_root() {
        return;
    }
    let scratch = ScratchDir::new("script_argv");
    // The program's own path has a space in it too.
    let dir = scratch.join("dir with space");
    std::fs::create_dir(&dir).unwrap();
    let out = scratch.join("args.out");
    let program = hatests::scratch::write_script(
        &dir,
        "args.sh",
        r#"for a in "$@"; do printf '%s\0' "$a"; done > "$OUT"
printf '%s|%s|%s|%s' "$HA_SERVICE" "$HA_ACTION" "$HA_NODE" "$PWD" > "$OUT.env""#,
    );
    let args = [
        "with space",
        "  leading and trailing  ",
        "$(touch pwned1)",
        "`touch pwned2`",
        "; touch pwned3 #",
        "&& touch pwned4",
        "| tee pwned5",
        "> pwned6",
        "*",
        "~",
        "$HOME ${PATH}",
        "'single' \"double\" \\backslash",
        "new\nline",
        "",
        "--",
        "-x",
    ];
    let (t, _cleanup) = tracker("argv");
    let mut s = spec(
        std::iter::once(program.clone())
            .chain(args.iter().map(|a| a.to_string()))
            .collect(),
        &t,
        "start",
    );
    s.cwd = scratch.path().to_path_buf();
    s.env = vec![
        ("OUT".into(), out.to_str().unwrap().into()),
        ("HA_SERVICE".into(), t.service().into()),
        ("HA_ACTION".into(), "start".into()),
        ("HA_NODE".into(), "alpha beta;$x".into()),
    ];
    let outcome = script::run(s).await.expect("run");
    assert!(outcome.success(), "{outcome}");
    let got = std::fs::read(&out).unwrap();
    let got: Vec<&str> = got
        .split(|b| *b == 0)
        .map(|a| std::str::from_utf8(a).unwrap())
        .collect();
    // printf leaves a NUL after the last argument: drop the empty tail.
    assert_eq!(&got[..got.len() - 1], &args[..]);
    let env = std::fs::read_to_string(format!("{}.env", out.display())).unwrap();
    assert_eq!(
        env,
        format!(
            "{}|start|alpha beta;$x|{}",
            t.service(),
            scratch.path().display()
        )
    );
    for n in 1..=6 {
        for d in [scratch.path(), dir.as_path(), Path::new("/")] {
            assert!(
                !d.join(format!("pwned{n}")).exists(),
                "a shell ran: pwned{n}"
            );
        }
    }
}

#[tokio::test]
async fn bad_specs_and_unstartable_programs_are_errors() {
    if !hatests::require_root() {
        return;
    }
    let scratch = ScratchDir::new("script_bad");
    let (t, _cleanup) = tracker("bad");
    let run = |argv: Vec<&str>| {
        script::run(spec(
            argv.into_iter().map(String::from).collect(),
            &t,
            "start",
        ))
    };
    assert!(matches!(run(vec![]).await, Err(ScriptError::EmptyArgv)));
    assert!(matches!(run(vec!["true"]).await, Err(ScriptError::RelativeProgram(p)) if p == "true"));
    assert!(matches!(
        run(vec!["bin/true"]).await,
        Err(ScriptError::RelativeProgram(_))
    ));
    assert!(matches!(
        run(vec!["/bin/echo", "a\0b"]).await,
        Err(ScriptError::Nul(_))
    ));
    let missing = scratch.join("missing.sh");
    match run(vec![missing.to_str().unwrap()]).await {
        Err(ScriptError::Spawn { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound)
        }
        other => panic!("{other:?}"),
    }
    let not_exec = scratch.join("plain.sh");
    std::fs::write(&not_exec, "#!/bin/bash\nexit 0\n").unwrap();
    std::fs::set_permissions(&not_exec, std::fs::Permissions::from_mode(0o644)).unwrap();
    match run(vec![not_exec.to_str().unwrap()]).await {
        Err(e @ ScriptError::Spawn { .. }) => assert!(e.to_string().contains("plain.sh"), "{e}"),
        other => panic!("{other:?}"),
    }
    let mut s = spec(vec!["/bin/true".into()], &t, "start");
    s.cwd = scratch.join("no such dir");
    assert!(matches!(
        script::run(s).await,
        Err(ScriptError::Spawn { .. })
    ));
    let mut s = spec(vec!["/bin/true".into()], &t, "start");
    s.env = vec![("A=B".into(), "x".into())];
    assert!(matches!(script::run(s).await, Err(ScriptError::EnvName(_))));
    assert!(matches!(
        Tracker::for_service("hatests", "../etc"),
        Err(TrackError::InvalidName(_))
    ));
    assert!(t.is_empty().unwrap());
}

#[tokio::test]
async fn output_lines_reach_the_log_prefixed_and_bounded() {
    if !hatests::require_root() {
        return;
    }
    log_buffer();
    let scratch = ScratchDir::new("script_log");
    let program = hatests::scratch::write_script(
        scratch.path(),
        "talk.sh",
        r#"echo "hello from stdout"
echo "warning from stderr" >&2
head -c 10000 /dev/zero | tr '\0' x; echo
printf 'esc \033[31mred\033[0m and cr\r\n'
echo "several"; echo "lines"
printf 'last line without newline'"#,
    );
    let (t, _cleanup) = tracker("log");
    let svc = t.service().to_owned();
    let mut s = spec(vec![program], &t, "monitor");
    s.log = LogContext {
        service: svc.clone(),
        action: "monitor".into(),
    };
    let outcome = script::run(s).await.expect("run");
    assert!(outcome.success(), "{outcome}");

    let prefix = format!("{svc} monitor: ");
    let out = log_lines_with(&format!("{prefix}hello from stdout"));
    assert_eq!(out.len(), 1, "{}", logged());
    assert!(out[0].contains(" INFO "), "{}", out[0]);
    let err = log_lines_with(&format!("{prefix}warning from stderr"));
    assert_eq!(err.len(), 1, "{}", logged());
    assert!(err[0].contains(" WARN "), "{}", err[0]);
    let long = log_lines_with(&format!("{prefix}xxxx"));
    assert_eq!(long.len(), 1);
    assert!(long[0].contains(&format!(
        "{prefix}{} [line cut: {} more bytes]",
        "x".repeat(script::output::MAX_LINE),
        10000 - script::output::MAX_LINE
    )));
    assert!(!long[0].contains(&"x".repeat(script::output::MAX_LINE + 1)));
    let esc = log_lines_with(&format!("{prefix}esc "));
    assert_eq!(esc.len(), 1);
    assert!(
        esc[0].ends_with("esc \\u{1b}[31mred\\u{1b}[0m and cr"),
        "{}",
        esc[0]
    );
    assert_eq!(log_lines_with(&format!("{prefix}several")).len(), 1);
    assert_eq!(log_lines_with(&format!("{prefix}lines")).len(), 1);
    assert_eq!(
        log_lines_with(&format!("{prefix}last line without newline")).len(),
        1
    );
}

// ---- timeouts -----------------------------------------------------------------

#[tokio::test]
async fn timeout_kills_a_script_that_ignores_sigterm_and_its_children() {
    if !hatests::require_root() {
        return;
    }
    log_buffer();
    let scratch = ScratchDir::new("script_timeout");
    let program = hatests::scratch::write_script(
        scratch.path(),
        "stubborn.sh",
        r#"trap '' TERM
echo $$ > "$DIR/script.pid"
sleep 1000 &
echo $! > "$DIR/child.pid"
bash -c 'trap "" TERM; echo $$ > "$1"; while :; do sleep 0.05; done' _ "$DIR/grandchild.pid" &
echo "waiting for ever"
while :; do wait; done"#,
    );
    let (t, _cleanup) = tracker("timeout");
    let mut s = spec(vec![program], &t, "stop");
    s.env = vec![("DIR".into(), scratch.path().to_str().unwrap().into())];
    s.timeout = Duration::from_millis(700);
    s.term_grace = Duration::from_millis(400);
    let started = Instant::now();
    let outcome = script::run(s).await.expect("run");
    let took = started.elapsed();
    assert_eq!(outcome.termination, Termination::TimedOut, "{outcome}");
    assert!(outcome.duration >= Duration::from_millis(1100), "{outcome}");
    assert!(took < Duration::from_secs(5), "run took {took:?}");
    let script_pid = read_pid(&scratch.join("script.pid")).await;
    assert_eq!(script_pid, outcome.pid);
    for name in ["script.pid", "child.pid", "grandchild.pid"] {
        let pid = read_pid(&scratch.join(name)).await;
        assert!(
            dead_within(pid, Duration::from_secs(2)).await,
            "{name} {pid} survived"
        );
    }
    // The SIGKILL reached the whole group at once, but a process not named
    // above (the grandchild's current `sleep 0.05`) may still be exiting.
    assert!(
        empty_within(&t, Duration::from_secs(2)).await,
        "left: {:?}",
        t.pids()
    );
    assert!(
        !log_lines_with(&format!("{} stop: timed out after", t.service())).is_empty(),
        "{}",
        logged()
    );
    assert_eq!(
        Convention::Ocf.verdict(&outcome),
        StatusVerdict::Failed(outcome.to_string())
    );
}

#[tokio::test]
async fn a_script_that_honours_sigterm_ends_before_the_grace() {
    if !hatests::require_root() {
        return;
    }
    let scratch = ScratchDir::new("script_term");
    let program = hatests::scratch::write_script(
        scratch.path(),
        "polite.sh",
        "trap 'exit 0' TERM\nsleep 1000 & wait",
    );
    let (t, _cleanup) = tracker("term");
    let mut s = spec(vec![program], &t, "status");
    s.timeout = Duration::from_millis(300);
    s.term_grace = Duration::from_secs(10);
    let outcome = script::run(s).await.expect("run");
    assert_eq!(outcome.termination, Termination::TimedOut);
    // The sleep got SIGTERM too: nothing waits for the SIGKILL.
    assert!(outcome.duration < Duration::from_secs(5), "{outcome}");
    assert!(t.is_empty().unwrap());
}

#[tokio::test]
async fn dropping_run_kills_the_script_group() {
    if !hatests::require_root() {
        return;
    }
    let scratch = ScratchDir::new("script_drop");
    let program = hatests::scratch::write_script(
        scratch.path(),
        "long.sh",
        "echo $$ > \"$DIR/script.pid\"\nsleep 1000",
    );
    let (t, _cleanup) = tracker("drop");
    let mut s = spec(vec![program], &t, "start");
    s.env = vec![("DIR".into(), scratch.path().to_str().unwrap().into())];
    let cancelled = tokio::time::timeout(Duration::from_millis(500), script::run(s)).await;
    assert!(cancelled.is_err());
    let pid = read_pid(&scratch.join("script.pid")).await;
    assert!(dead_within(pid, Duration::from_secs(2)).await);
    assert!(
        empty_within(&t, Duration::from_secs(2)).await,
        "left: {:?}",
        t.pids()
    );
}

// ---- verdicts -----------------------------------------------------------------

#[tokio::test]
async fn exit_codes_give_ocf_and_lsb_verdicts() {
    if !hatests::require_root() {
        return;
    }
    let scratch = ScratchDir::new("script_verdict");
    let program = hatests::scratch::write_script(scratch.path(), "status.sh", "exit \"$1\"");
    let (t, _cleanup) = tracker("verdict");
    use StatusVerdict::{NotRunning, Running};
    let failed = |name: &'static str| move |v: &StatusVerdict| matches!(v, StatusVerdict::Failed(r) if r.contains(name));
    type Check = Box<dyn Fn(&StatusVerdict) -> bool>;
    let is = |want: StatusVerdict| -> Check { Box::new(move |v: &StatusVerdict| *v == want) };
    let cases: Vec<(i32, Check, Check)> = vec![
        (0, is(Running), is(Running)),
        (1, Box::new(failed("OCF_ERR_GENERIC")), is(NotRunning)),
        (2, Box::new(failed("OCF_ERR_ARGS")), is(NotRunning)),
        (3, Box::new(failed("OCF_ERR_UNIMPLEMENTED")), is(NotRunning)),
        (
            4,
            Box::new(failed("OCF_ERR_PERM")),
            Box::new(failed("unknown")),
        ),
        (
            5,
            Box::new(failed("OCF_ERR_INSTALLED")),
            Box::new(failed("exit 5")),
        ),
        (
            6,
            Box::new(failed("OCF_ERR_CONFIGURED")),
            Box::new(failed("exit 6")),
        ),
        (7, is(NotRunning), Box::new(failed("exit 7"))),
        (8, is(Running), Box::new(failed("exit 8"))),
        (
            9,
            Box::new(failed("OCF_FAILED_MASTER")),
            Box::new(failed("exit 9")),
        ),
        (42, Box::new(failed("exit 42")), Box::new(failed("exit 42"))),
    ];
    for (code, ocf, lsb) in cases {
        let outcome = script::run(spec(vec![program.clone(), code.to_string()], &t, "monitor"))
            .await
            .expect("run");
        assert_eq!(outcome.termination, Termination::Exited(code));
        let (o, l) = (script::ocf_monitor(&outcome), script::lsb_status(&outcome));
        assert!(ocf(&o), "OCF {code}: {o:?}");
        assert!(lsb(&l), "LSB {code}: {l:?}");
    }

    let killer = hatests::scratch::write_script(scratch.path(), "suicide.sh", "kill -KILL $$");
    let outcome: Outcome = script::run(spec(vec![killer], &t, "status")).await.unwrap();
    assert_eq!(
        outcome.termination,
        Termination::Signaled {
            signal: 9,
            core_dumped: false
        }
    );
    for v in [script::ocf_monitor(&outcome), script::lsb_status(&outcome)] {
        assert!(
            matches!(&v, StatusVerdict::Failed(r) if r.contains("killed by SIGKILL")),
            "{v:?}"
        );
    }

    let sleeper = hatests::scratch::write_script(scratch.path(), "hang.sh", "sleep 1000");
    let mut s = spec(vec![sleeper], &t, "status");
    s.timeout = Duration::from_millis(200);
    let outcome = script::run(s).await.unwrap();
    assert_eq!(outcome.termination, Termination::TimedOut);
    for v in [script::ocf_monitor(&outcome), script::lsb_status(&outcome)] {
        assert!(
            matches!(&v, StatusVerdict::Failed(r) if r.contains("timed out")),
            "{v:?}"
        );
    }
}

// ---- cgroup tracking ----------------------------------------------------------

fn cgroup_tracker(tag: &str) -> Option<(Tracker, Cleanup)> {
    if track::cgroup2_mount().is_none() {
        eprintln!("no cgroup2 file system mounted: cgroup tracking not tested");
        return None;
    }
    let (t, c) = tracker(tag);
    assert!(matches!(t.mode(), Mode::Cgroup(_)), "{:?}", t.mode());
    Some((t, c))
}

/// `0::/hacluster/<node>/<service>` for a pid in that cgroup.
fn cgroup_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("0::"))
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn a_double_forking_daemon_stays_tracked_and_kill_all_ends_it() {
    if !hatests::require_root() {
        return;
    }
    log_buffer();
    let Some((t, _cleanup)) = cgroup_tracker("daemon") else {
        return;
    };
    let dir = t.cgroup_dir().unwrap().to_path_buf();
    let scratch = ScratchDir::new("script_daemon");
    // The classic daemon: fork, setsid, fork again, the middle one exits; the
    // daemon keeps the script's stdout open and is in another session.
    let program = hatests::scratch::write_script(
        scratch.path(),
        "start.sh",
        r#"grep '^0::' /proc/$$/cgroup > "$DIR/script.cgroup"
( setsid bash -c '( echo $BASHPID > "$1"; exec sleep 1000 ) & exit 0' _ "$DIR/daemon.pid" & )
echo "daemon started""#,
    );
    let mut s = spec(vec![program], &t, "start");
    s.env = vec![("DIR".into(), scratch.path().to_str().unwrap().into())];
    let started = Instant::now();
    let outcome = script::run(s).await.expect("run");
    assert!(outcome.success(), "{outcome}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "run waited for the daemon's stdout: {:?}",
        started.elapsed()
    );
    let expect_cg = format!("0::/{}/hatests/{}", track::SUBTREE, t.service());
    let script_cg = std::fs::read_to_string(scratch.join("script.cgroup")).unwrap();
    assert!(
        script_cg.trim().ends_with(&expect_cg[3..]),
        "script ran in {script_cg:?}, not {expect_cg}"
    );
    assert_eq!(
        log_lines_with(&format!("{} start: daemon started", t.service())).len(),
        1
    );

    let daemon = read_pid(&scratch.join("daemon.pid")).await;
    assert!(alive(daemon));
    let sid = nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(daemon)))
        .unwrap()
        .as_raw();
    let pgid = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(daemon)))
        .unwrap()
        .as_raw();
    assert_ne!(sid, outcome.pid, "the daemon left the script's session");
    assert_ne!(
        pgid, outcome.pid,
        "the daemon left the script's process group"
    );
    assert!(
        cgroup_of(daemon).ends_with(&expect_cg[3..]),
        "{}",
        cgroup_of(daemon)
    );
    let pids = t.pids().unwrap();
    assert!(pids.contains(&daemon), "{daemon} not in {pids:?}");
    assert!(!t.is_empty().unwrap());

    match t.remove() {
        Err(TrackError::NotEmpty { pids, .. }) => assert!(pids.contains(&daemon)),
        other => panic!("remove of a populated cgroup: {other:?}"),
    }
    assert!(dir.is_dir());

    let report = t.kill_all(Duration::from_secs(5)).await.expect("kill_all");
    assert!(report.pids.contains(&daemon), "{report:?}");
    assert!(t.is_empty().unwrap());
    assert!(t.pids().unwrap().is_empty());
    assert!(dead_within(daemon, Duration::from_secs(2)).await);

    t.remove().expect("remove");
    assert!(!dir.exists(), "{} still there", dir.display());
    // Idempotent, and the next script re-creates the cgroup.
    t.remove().expect("second remove");
    let again = hatests::scratch::write_script(scratch.path(), "status.sh", "exit 3");
    let outcome = script::run(spec(vec![again], &t, "status")).await.unwrap();
    assert_eq!(script::lsb_status(&outcome), StatusVerdict::NotRunning);
    assert!(dir.is_dir());
    t.remove().expect("remove after status");
    assert!(!dir.exists());
}

#[tokio::test]
async fn kill_all_reaches_nested_cgroups_and_remove_takes_them() {
    if !hatests::require_root() {
        return;
    }
    let Some((t, _cleanup)) = cgroup_tracker("nested") else {
        return;
    };
    let dir = t.cgroup_dir().unwrap().to_path_buf();
    let scratch = ScratchDir::new("script_nested");
    let program = hatests::scratch::write_script(
        scratch.path(),
        "nest.sh",
        r#"mkdir -p "$CG/inner/deeper"
bash -c 'echo $$ > "$1/inner/deeper/cgroup.procs"; echo $$ > "$2"; exec sleep 1000' _ "$CG" "$DIR/nested.pid" </dev/null >/dev/null 2>&1 &
sleep 1000 </dev/null >/dev/null 2>&1 &
echo $! > "$DIR/plain.pid""#,
    );
    let mut s = spec(vec![program], &t, "start");
    s.env = vec![
        ("DIR".into(), scratch.path().to_str().unwrap().into()),
        ("CG".into(), dir.to_str().unwrap().into()),
    ];
    assert!(script::run(s).await.unwrap().success());
    let nested = read_pid(&scratch.join("nested.pid")).await;
    let plain = read_pid(&scratch.join("plain.pid")).await;
    let end = Instant::now() + Duration::from_secs(5);
    while !cgroup_of(nested).ends_with("/inner/deeper") {
        assert!(Instant::now() < end, "{}", cgroup_of(nested));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pids = t.pids().unwrap();
    assert!(pids.contains(&nested) && pids.contains(&plain), "{pids:?}");
    t.kill_all(Duration::from_secs(5)).await.expect("kill_all");
    assert!(dead_within(nested, Duration::from_secs(2)).await);
    assert!(dead_within(plain, Duration::from_secs(2)).await);
    t.remove().expect("remove");
    assert!(!dir.exists());
}

#[tokio::test]
async fn kill_all_of_an_empty_or_removed_tracker_is_quick() {
    if !hatests::require_root() {
        return;
    }
    let (t, _cleanup) = tracker("empty");
    let report = t.kill_all(Duration::from_secs(1)).await.unwrap();
    assert!(report.pids.is_empty());
    t.remove().unwrap();
    assert!(t.is_empty().unwrap());
    assert!(t.pids().unwrap().is_empty());
    assert!(
        t.kill_all(Duration::from_secs(1))
            .await
            .unwrap()
            .pids
            .is_empty()
    );
}
