//! Process-group tracking, the fallback when no cgroup2 is mounted (root).
//! A test binary of its own: the mode makes the process a child subreaper,
//! which would change what the cgroup tests see.
//!
//! Daemons that double-fork inside the script's process group stay tracked
//! and die by `kill_all`; one that calls `setsid` escapes, as the module
//! documentation of `hasvrd::track` warns.

use hasvrd::script::{self, ScriptSpec, Termination};
use hasvrd::track::{Mode, Tracker};
use hatests::scratch::ScratchDir;
use nix::unistd::Pid;
use std::path::Path;
use std::time::{Duration, Instant};

fn service(tag: &str) -> String {
    format!(
        "f-{}-{}-{}",
        tag,
        hatests::unique::pid(),
        hatests::unique::next()
    )
}

/// Present in /proc at all (a zombie counts: it was not reaped).
fn exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn zombie_or_gone(pid: i32) -> bool {
    hasvrd::procfs::stat(pid).is_none_or(|s| s.state == 'Z')
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

fn parent_of(pid: i32) -> i32 {
    hasvrd::procfs::stat(pid).expect("the process exists").ppid
}

fn spec(argv: Vec<String>, t: &Tracker, dir: &Path) -> ScriptSpec {
    let mut s = ScriptSpec::new(argv, t.clone(), "start");
    s.env = vec![("DIR".into(), dir.to_str().unwrap().into())];
    s.timeout = Duration::from_secs(20);
    s.term_grace = Duration::from_millis(300);
    s
}

#[tokio::test]
async fn double_fork_in_the_group_is_tracked_and_setsid_escapes() {
    if !hatests::require_root() {
        return;
    }
    let scratch = ScratchDir::new("script_fallback");
    let t = Tracker::process_group(&service("pg")).unwrap();
    assert_eq!(t.mode(), &Mode::ProcessGroup);
    assert!(t.is_empty().unwrap());
    let program = hatests::scratch::write_script(
        scratch.path(),
        "start.sh",
        r#"( ( echo $BASHPID > "$DIR/grouped.pid"; exec sleep 1000 ) & )
( setsid bash -c '( echo $BASHPID > "$1"; exec sleep 1000 ) & exit 0' _ "$DIR/escaped.pid" & )
echo started"#,
    );
    let outcome = script::run(spec(vec![program], &t, scratch.path()))
        .await
        .unwrap();
    assert!(outcome.success(), "{outcome}");
    let grouped = read_pid(&scratch.join("grouped.pid")).await;
    let escaped = read_pid(&scratch.join("escaped.pid")).await;
    // Orphans come to this process (the subreaper), not to init.
    let me = std::process::id() as i32;
    let end = Instant::now() + Duration::from_secs(5);
    while parent_of(grouped) != me || parent_of(escaped) != me {
        assert!(Instant::now() < end, "not re-parented to the subreaper");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let pids = t.pids().unwrap();
    assert!(pids.contains(&grouped), "{grouped} not in {pids:?}");
    // The documented hole of this mode.
    assert!(
        !pids.contains(&escaped),
        "setsid daemon unexpectedly tracked"
    );

    let report = t.kill_all(Duration::from_secs(5)).await.unwrap();
    assert!(report.pids.contains(&grouped));
    assert!(t.is_empty().unwrap());
    // The tracker reaps the zombies of its groups re-parented to us.
    assert!(t.pids().unwrap().is_empty());
    assert!(!exists(grouped), "zombie {grouped} not reaped");
    assert!(
        exists(escaped) && !zombie_or_gone(escaped),
        "escaped daemon should still run"
    );
    nix::sys::signal::kill(Pid::from_raw(escaped), nix::sys::signal::Signal::SIGKILL).unwrap();
    nix::sys::wait::waitpid(Pid::from_raw(escaped), None).unwrap();
    t.remove().unwrap();
}

#[tokio::test]
async fn timeout_kills_the_group_in_fallback_mode() {
    if !hatests::require_root() {
        return;
    }
    let scratch = ScratchDir::new("script_fallback_timeout");
    let t = Tracker::process_group(&service("to")).unwrap();
    let program = hatests::scratch::write_script(
        scratch.path(),
        "stubborn.sh",
        r#"trap '' TERM
sleep 1000 &
echo $! > "$DIR/child.pid"
while :; do wait; done"#,
    );
    let mut s = spec(vec![program], &t, scratch.path());
    s.timeout = Duration::from_millis(300);
    let outcome = script::run(s).await.unwrap();
    assert_eq!(outcome.termination, Termination::TimedOut);
    let child = read_pid(&scratch.join("child.pid")).await;
    let end = Instant::now() + Duration::from_secs(3);
    // Its sleep, re-parented here, is reaped by the tracker's next look.
    while !t.pids().unwrap().is_empty() || exists(child) {
        assert!(Instant::now() < end, "child {child} left");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
