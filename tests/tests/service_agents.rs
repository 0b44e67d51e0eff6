//! Agents run by a real hasvrd on namespaced nodes (the [`WebService`]
//! fixture: real hamond and hasvrd, a floating IP, a client in its own
//! namespace), and an OCF resource agent as the service's script. Every
//! poll checks that the floating IP (and the volume, where there is one)
//! is on at most one node (safety rule 1).
//!
//! * Debian's nginx with the WWW template's conventions and the bundled
//!   `www` agent: a hung worker (SIGSTOP; the master lives, so the status
//!   script still says running) is found by the agent alone and the
//!   service is restarted where it runs; nginx's master killed with the
//!   restart spent, the service fails over;
//! * the manual's C template agent and its shell template agent: their
//!   heartbeats keep the service up; killed, the service is restarted
//!   here; reporting an error with the restart spent, it fails over, and
//!   the peer's agent keeps it up there;
//! * Debian's resource-agents `Dummy` used unchanged as start, stop and
//!   status (`monitor`), its state file on the shared volume: its exit 7
//!   (OCF_NOT_RUNNING) reads as not running, restarted here, then failed
//!   over.

use hatests::apps::{
    AGENT_CHECK, AGENT_FAILURE, AGENT_OPENED, Template, agent_key, bundled_agent, keeps,
    wait_log_since,
};
use hatests::require_root;
use hatests::web::{App, Commands, PORT, SERVICE, WebService, WebSpec};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a test watches a healthy service stay put: longer than the
/// agents' 6 s heartbeat window ([`AGENT_CHECK`]).
const QUIET: Duration = Duration::from_secs(8);
/// Where Debian's resource-agents keeps its OCF agents.
const OCF_ROOT: &str = "/usr/lib/ocf";
/// What hasvrd logs once the start script succeeded.
const STARTED: &str = "service www: start of application done";
/// The OCF agent used as the service's script.
const DUMMY: &str = "/usr/lib/ocf/resource.d/heartbeat/Dummy";

/// The fixture with fencing, one local restart before a failover, the
/// agents' check timing, and `agent` as the service's agent.
#[track_caller]
fn start(test: &str, agent: &[String], spec: WebSpec) -> WebService {
    WebService::start_with(
        test,
        WebSpec {
            fencing: true,
            restart_times: Some(1),
            check: Some(AGENT_CHECK),
            service_extra: agent_key(agent),
            ..spec
        },
    )
}

/// For [`QUIET`], the service stays ACTIVE on `node` with the floating IP
/// there, and `node` logs no agent failure.
#[track_caller]
fn stays_up(w: &WebService, node: &str) {
    let mark = w.cluster().log_len(node);
    keeps(
        w,
        QUIET,
        "the agent's heartbeats keep the service up",
        || {
            let state = w.cluster().service_state(node, SERVICE);
            if !state.as_deref().is_some_and(|s| s.starts_with("ACTIVE")) {
                return Err(format!("{node} reports {state:?}"));
            }
            if w.holders() != [node] {
                return Err(format!("the floating IP is on {:?}", w.holders()));
            }
            let log = w.cluster().log_since(node, mark);
            match log.lines().find(|l| l.contains(AGENT_FAILURE)) {
                Some(line) => Err(line.to_owned()),
                None => Ok(()),
            }
        },
    );
}

/// nginx's master on `node` and its worker (its only child).
#[track_caller]
fn nginx_pids(w: &WebService, node: &str) -> (i32, i32) {
    let master: i32 = w.app_pid(node).parse().expect("a pid");
    let file = format!("/proc/{master}/task/{master}/children");
    let children = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let worker = children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("nginx's master {master} has no worker"));
    (master, worker)
}

/// Sends `signal` to `pid`.
#[track_caller]
fn signal(pid: i32, signal: Signal) {
    kill(Pid::from_raw(pid), signal).unwrap_or_else(|e| panic!("{signal} to {pid}: {e}"));
}

#[test]
fn nginx_with_the_www_agent_hung_worker_restarts_here_killed_master_fails_over() {
    if !require_root() {
        return;
    }
    let began = Instant::now();
    let url = format!("http://127.0.0.1:{PORT}/");
    let agent = bundled_agent("www", &["--url", &url, "--status", "200"]);
    let w = start(
        "agt_www",
        &agent,
        WebSpec {
            volume: true,
            app: App::Nginx,
            ..WebSpec::default()
        },
    );
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    wait_log_since(&w, "alpha", 0, AGENT_OPENED);
    stays_up(&w, "alpha");

    // A hung worker: the master lives (status says running), only the
    // agent's request times out; restarted here.
    let (master, worker) = nginx_pids(&w, "alpha");
    let mark = w.cluster().log_len("alpha");
    signal(worker, Signal::SIGSTOP);
    wait_log_since(&w, "alpha", mark, AGENT_FAILURE);
    wait_log_since(&w, "alpha", mark, "recovering here (1 of 1)");
    // Its start is over once its new agent runs.
    wait_log_since(&w, "alpha", mark, AGENT_OPENED);
    w.wait_served_by("alpha");
    assert_ne!(nginx_pids(&w, "alpha").0, master, "nginx was not restarted");
    let log = w.cluster().log_since("alpha", mark);
    assert!(
        !log.contains("status probe(s) in a row said"),
        "the status script, not the agent, found the hung worker\n{log}"
    );

    // The master killed, the restart spent: failed over to beta, where a
    // new agent watches it.
    let mark = w.cluster().log_len("beta");
    let ((), outage) = w.outage_during("alpha", "beta", || {
        signal(nginx_pids(&w, "alpha").0, Signal::SIGKILL);
    });
    eprintln!("fail-over after nginx's master was killed: {outage:?}");
    let log = w.cluster().log("alpha");
    assert!(
        log.contains("local attempts used up: failing over to beta"),
        "{log}"
    );
    wait_log_since(&w, "beta", mark, AGENT_OPENED);
    stays_up(&w, "beta");
    eprintln!("test took {:?}", began.elapsed());
}

/// A template agent keeps the service up on alpha; killed, the service
/// restarts here with a new agent; reporting an error (its file gone),
/// the service fails over, and beta's agent (its file back) keeps it up.
#[track_caller]
fn template_agent_scenario(test: &str, make: fn(&Path) -> Template) {
    let began = Instant::now();
    let dir = hatests::scratch::ScratchDir::new(&format!("{test}-agent"));
    let template = make(dir.path());
    template.set_healthy(true);
    let w = start(test, template.argv(), WebSpec::default());
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    wait_log_since(&w, "alpha", 0, AGENT_OPENED);
    stays_up(&w, "alpha");

    // Killed: hasvrd notices (exit or silence) and restarts here.
    let alpha = w.cluster().ns("alpha");
    let pid = template
        .pid(alpha)
        .unwrap_or_else(|| panic!("no template agent runs on alpha"));
    let mark = w.cluster().log_len("alpha");
    signal(pid, Signal::SIGKILL);
    wait_log_since(&w, "alpha", mark, AGENT_FAILURE);
    wait_log_since(&w, "alpha", mark, "recovering here (1 of 1)");
    wait_log_since(&w, "alpha", mark, AGENT_OPENED);
    w.wait_served_by("alpha");
    assert!(
        template.pid(alpha).is_some_and(|new| new != pid),
        "no new agent on alpha"
    );
    stays_up(&w, "alpha");

    // apierr, the restart spent: failed over. The file is back as soon as
    // alpha gave up, before beta starts the service and its agent.
    let mark = w.cluster().log_len("alpha");
    let beta_mark = w.cluster().log_len("beta");
    template.set_healthy(false);
    wait_log_since(
        &w,
        "alpha",
        mark,
        "agent failure: the agent reported an error",
    );
    wait_log_since(
        &w,
        "alpha",
        mark,
        "local attempts used up: failing over to beta",
    );
    template.set_healthy(true);
    w.wait_served_by("beta");
    wait_log_since(&w, "beta", beta_mark, AGENT_OPENED);
    stays_up(&w, "beta");
    assert_eq!(template.pid(alpha), None, "alpha's agent still runs");
    eprintln!("test took {:?}", began.elapsed());
}

#[test]
fn the_c_template_agent_keeps_the_service_up_and_its_failures_move_it() {
    if !require_root() {
        return;
    }
    template_agent_scenario("agt_c", Template::c);
}

#[test]
fn the_shell_template_agent_keeps_the_service_up_and_its_failures_move_it() {
    if !require_root() {
        return;
    }
    template_agent_scenario("agt_sh", Template::shell);
}

/// `env OCF_ROOT=... OCF_RESOURCE_INSTANCE=www OCF_RESKEY_state=STATE
/// Dummy ACTION`.
fn dummy(state: &Path, action: &str) -> Vec<String> {
    [
        "/usr/bin/env",
        &format!("OCF_ROOT={OCF_ROOT}"),
        &format!("OCF_RESOURCE_INSTANCE={SERVICE}"),
        &format!("OCF_RESKEY_state={}", state.display()),
        DUMMY,
        action,
    ]
    .iter()
    .map(|a| (*a).to_owned())
    .collect()
}

#[test]
fn an_ocf_resource_agent_unchanged_is_the_service_script_and_its_not_running_is_understood() {
    if !require_root() {
        return;
    }
    assert!(
        Path::new(DUMMY).exists(),
        "{DUMMY} is missing: install Debian's resource-agents (scripts/install-deps)"
    );
    let began = Instant::now();
    let dir = hatests::scratch::ScratchDir::new("agt_ocf-volume");
    let mount = dir.join("volume");
    let state = mount.join("dummy.state");
    let w = WebService::start_with(
        "agt_ocf",
        WebSpec {
            fencing: true,
            volume: true,
            restart_times: Some(1),
            commands: Some(Commands {
                start: dummy(&state, "start"),
                stop: dummy(&state, "stop"),
                status: dummy(&state, "monitor"),
            }),
            mount_point: Some(mount),
            ..WebSpec::default()
        },
    );
    wait_log_since(&w, "alpha", 0, STARTED);
    w.wait_state("beta", "STANDBY");
    w.assert_volume_on("alpha");
    let on = |node: &str| w.volume_file(node, "dummy.state");
    assert!(
        on("alpha").exists(),
        "Dummy start wrote no state on alpha's volume"
    );
    // monitor's 0 keeps it up.
    keeps(
        &w,
        Duration::from_secs(4),
        "Dummy runs on alpha",
        || match w.cluster().service_state("alpha", SERVICE).as_deref() {
            Some("ACTIVE") if w.holders() == ["alpha"] => Ok(()),
            other => Err(format!("alpha reports {other:?}, IP on {:?}", w.holders())),
        },
    );

    // Its state gone, monitor exits 7: not running, restarted here.
    let mark = w.cluster().log_len("alpha");
    std::fs::remove_file(on("alpha")).expect("remove Dummy's state");
    wait_log_since(
        &w,
        "alpha",
        mark,
        "status probe(s) in a row said not running",
    );
    wait_log_since(&w, "alpha", mark, "recovering here (1 of 1)");
    wait_log_since(&w, "alpha", mark, STARTED);
    assert!(on("alpha").exists(), "Dummy was not started again");

    // Again, with the restart spent: failed over, with the volume.
    let mark = w.cluster().log_len("alpha");
    std::fs::remove_file(on("alpha")).expect("remove Dummy's state");
    wait_log_since(
        &w,
        "alpha",
        mark,
        "local attempts used up: failing over to beta",
    );
    wait_log_since(&w, "beta", 0, STARTED);
    w.wait_state("beta", "ACTIVEACT");
    w.assert_volume_on("beta");
    assert_eq!(w.holders(), ["beta"]);
    assert!(on("beta").exists(), "Dummy did not start on beta");
    let log = w.cluster().log("alpha");
    assert!(
        !log.contains("said failed"),
        "an OCF code read as a failure\n{log}"
    );
    eprintln!("test took {:?}", began.elapsed());
}
