//! The five calls against a real hasvrd agent server: from C
//! (tests/c/api_calls.c, linked to libhaapi.so and to libhaapi.a: fork,
//! threads, bad names), from the `haapi` tool (exit codes, SureHA's
//! command names), waiting out a hasvrd that is not there yet, giving up
//! after the grace period, and `cmd` only for root.

mod support;

use haschema::agent::Verb;
use hasvrd::agent::{Event, FailCause};
use hatests::command::run_for;
use hatests::scratch::ScratchDir;
use hatests::{RunAs, require_root};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{SLACK, Server};

fn api_calls_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/api_calls.c")
}

/// Runs the compiled api_calls against a server and checks what it saw.
fn run_api_calls(program: &Path, socket: &Path, server: &mut Server) {
    let mut cmd = Command::new(program);
    cmd.arg("www")
        .env("HA_AGENT_SOCKET", socket)
        .env("HA_AGENT_GRACE", "2");
    let f = run_for(&mut cmd, Duration::from_secs(30)).unwrap();
    assert_eq!(f.code(), Some(0), "{}{}", f.stdout, f.stderr);
    assert!(f.stdout.ends_with("pass\n"), "{}", f.stdout);
    let child: u32 = f
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("child "))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no child pid in {:?}", f.stdout));
    let mut events = Vec::new();
    while let Some(e) = server.event_within(Duration::from_millis(500)) {
        events.push(e);
    }
    // The parent's pid is not known here (run_for hides it): it is the one
    // of the first open, and must differ from the child's.
    let parent = match events.first() {
        Some(Event::AgentOpened { pid: Some(p), .. }) => *p as u32,
        other => panic!("first event {other:?}; all: {events:?}"),
    };
    assert_ne!(parent, child);
    let expected = [
        Event::AgentOpened {
            service: "www".into(),
            uid: nix::unistd::getuid().as_raw(),
            pid: Some(parent as i32),
        },
        Event::AgentClosed {
            service: "www".into(),
            uid: nix::unistd::getuid().as_raw(),
            pid: Some(parent as i32),
        },
        // The child's apiok, on its own connection, opens again.
        Event::AgentOpened {
            service: "www".into(),
            uid: nix::unistd::getuid().as_raw(),
            pid: Some(child as i32),
        },
        Event::AgentFailed {
            service: "www".into(),
            cause: FailCause::Reported {
                reason: String::new(),
            },
        },
        Event::AgentClosed {
            service: "www".into(),
            uid: nix::unistd::getuid().as_raw(),
            pid: Some(parent as i32),
        },
    ];
    assert_eq!(events, expected);
}

#[test]
fn c_calls_through_the_shared_library() {
    let dir = ScratchDir::new("api-calls-so");
    let program = dir.join("api_calls");
    let flags = ["-Wall", "-Wextra", "-Werror", "-pthread"];
    support::compile_shared(dir.path(), &api_calls_source(), &program, &flags);
    let socket = dir.join("run/agent.sock");
    let mut server = Server::start(&socket);
    run_api_calls(&program, &socket, &mut server);
}

#[test]
fn c_calls_through_the_static_library() {
    let dir = ScratchDir::new("api-calls-a");
    let program = dir.join("api_calls");
    let lib = support::profile_dir().join("libhaapi.a");
    let source = api_calls_source();
    let mut args: Vec<std::ffi::OsString> = ["-Wall", "-Wextra", "-Werror", "-pthread"]
        .map(Into::into)
        .to_vec();
    args.extend([
        source.into(),
        "-o".into(),
        program.clone().into(),
        lib.into(),
    ]);
    args.extend(["-lpthread", "-ldl", "-lm"].map(Into::into));
    support::gcc(args);
    let socket = dir.join("run/agent.sock");
    let mut server = Server::start(&socket);
    run_api_calls(&program, &socket, &mut server);
}

/// `haapi ARGS...` (or the program `program`) with the socket; its result.
fn haapi_at(program: &Path, socket: &Path, args: &[&str]) -> hatests::command::Finished {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("HA_AGENT_SOCKET", socket)
        .env("HA_AGENT_GRACE", "1");
    run_for(&mut cmd, SLACK).unwrap()
}

#[test]
fn the_haapi_tool_mirrors_the_calls() {
    let dir = ScratchDir::new("haapi-tool");
    let socket = dir.join("run/agent.sock");
    let mut server = Server::start(&socket);
    let haapi = |args: &[&str]| haapi_at(&support::haapi(), &socket, args);

    let f = haapi(&["open", "www"]);
    assert_eq!(f.code(), Some(0), "{f:?}");
    server.wait_for(SLACK, "AgentOpened", |e| {
        matches!(e, Event::AgentOpened { .. })
    });
    assert_eq!(haapi(&["ok", "www"]).code(), Some(0));

    let f = haapi(&["err", "www", "disk", "full"]);
    assert_eq!(f.code(), Some(0), "{f:?}");
    let want = FailCause::Reported {
        reason: "disk full".into(),
    };
    server.wait_for(
        SLACK,
        "the reported failure",
        |e| matches!(e, Event::AgentFailed { cause, .. } if *cause == want),
    );
    assert_eq!(haapi(&["close", "www"]).code(), Some(0));
    server.wait_for(SLACK, "AgentClosed", |e| {
        matches!(e, Event::AgentClosed { .. })
    });

    let f = haapi(&["ok", "nosuch"]);
    assert_eq!(f.code(), Some(1), "{f:?}");
    assert!(f.stderr.contains("unknown service nosuch"), "{}", f.stderr);
    for bad in [&["ok"][..], &["ok", "a", "b"], &["start", "www"], &[]] {
        let f = haapi(bad);
        assert_eq!(f.code(), Some(2), "{bad:?}: {f:?}");
        assert!(f.stderr.contains("usage: haapi"), "{}", f.stderr);
    }
    let f = haapi(&["cmd", "JUMP", "www"]);
    assert_eq!(f.code(), Some(1), "{f:?}");
    assert!(f.stderr.contains("unknown command"), "{}", f.stderr);

    // SureHA's command names, as links.
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let f = haapi(&["links", bin.to_str().unwrap()]);
    assert_eq!(f.code(), Some(0), "{f:?}");
    assert_eq!(
        haapi_at(&bin.join("APIOK.x"), &socket, &["www"]).code(),
        Some(0)
    );
    server.wait_for(SLACK, "AgentOpened", |e| {
        matches!(e, Event::AgentOpened { .. })
    });
    assert_eq!(
        haapi_at(&bin.join("APIERROR.x"), &socket, &["www", "503"]).code(),
        Some(0)
    );
    server.wait_for(SLACK, "the failure", support::reported);
    assert_eq!(
        haapi_at(&bin.join("APIOPEN.x"), &socket, &["www"]).code(),
        Some(0)
    );
    assert_eq!(
        haapi_at(&bin.join("APICLOSE.x"), &socket, &["www"]).code(),
        Some(0)
    );
    let f = haapi_at(&bin.join("APIOK.x"), &socket, &["nosuch"]);
    assert_eq!(f.code(), Some(1), "{f:?}");

    // A malformed grace is an error, not a silent default.
    let mut cmd = Command::new(support::haapi());
    cmd.args(["ok", "www"])
        .env("HA_AGENT_SOCKET", &socket)
        .env("HA_AGENT_GRACE", "10s");
    let f = run_for(&mut cmd, SLACK).unwrap();
    assert_eq!(f.code(), Some(1), "{f:?}");
    assert!(f.stderr.contains("HA_AGENT_GRACE"), "{}", f.stderr);
}

#[test]
fn a_call_waits_for_hasvrd_to_come_back() {
    let dir = ScratchDir::new("haapi-grace");
    let socket = dir.join("run/agent.sock");
    // First hasvrd, then none for 2 s (a restart), then hasvrd again.
    let server = Server::start(&socket);
    assert_eq!(
        haapi_at(&support::haapi(), &socket, &["ok", "www"]).code(),
        Some(0)
    );
    drop(server);

    let start = Instant::now();
    let mut cmd = Command::new(support::haapi());
    cmd.args(["ok", "www"])
        .env("HA_AGENT_SOCKET", &socket)
        .env("HA_AGENT_GRACE", "10")
        .stdin(Stdio::null());
    let mut tool = support::Agent::spawn(&mut cmd);
    let client = haapi::Client::new(&socket).with_grace(Duration::from_secs(10));
    let in_process = std::thread::spawn(move || client.open("www"));
    std::thread::sleep(Duration::from_secs(2));
    let mut server = Server::start(&socket);
    assert_eq!(tool.exit_code_within(SLACK), Some(0));
    in_process.join().unwrap().unwrap();
    let took = start.elapsed();
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    server.wait_for(SLACK, "AgentOpened", |e| {
        matches!(e, Event::AgentOpened { .. })
    });
}

#[test]
fn a_call_gives_up_after_the_grace_period() {
    let dir = ScratchDir::new("haapi-give-up");
    let socket = dir.join("run/agent.sock");
    let mut cmd = Command::new(support::haapi());
    cmd.args(["ok", "www"])
        .env("HA_AGENT_SOCKET", &socket)
        .env("HA_AGENT_GRACE", "0.5");
    let start = Instant::now();
    let f = run_for(&mut cmd, SLACK).unwrap();
    let took = start.elapsed();
    assert_eq!(f.code(), Some(1), "{f:?}");
    assert!(f.stderr.contains("unreachable"), "{}", f.stderr);
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn cmd_is_for_root_only() {
    if !require_root() {
        return;
    }
    let dir = ScratchDir::new("haapi-cmd");
    let socket = dir.join("run/agent.sock");
    let mut server = Server::start(&socket);
    let f = haapi_at(&support::haapi(), &socket, &["cmd", "failover", "www"]);
    assert_eq!(f.code(), Some(0), "{f:?}");
    let e = server.wait_for(SLACK, "the command", |e| matches!(e, Event::Command { .. }));
    assert_eq!(
        e,
        Event::Command {
            verb: Verb::Failover,
            service: "www".into(),
            requested_by: 0
        }
    );

    // nobody may heartbeat, not command. A copy of haapi nobody can run.
    let copy = dir.join("haapi");
    std::fs::copy(support::haapi(), &copy).unwrap();
    for path in [dir.path(), copy.as_path()] {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let as_nobody = |args: &[&str]| {
        let mut cmd = RunAs::nobody().command(&copy);
        cmd.args(args)
            .env("HA_AGENT_SOCKET", &socket)
            .env("HA_AGENT_GRACE", "1");
        run_for(&mut cmd, SLACK).unwrap()
    };
    let f = as_nobody(&["cmd", "BRINGOUT", "www"]);
    assert_eq!(f.code(), Some(1), "{f:?}");
    assert!(f.stderr.contains("permission denied"), "{}", f.stderr);
    let f = as_nobody(&["ok", "www"]);
    assert_eq!(f.code(), Some(0), "{f:?}");
    let e = server.wait_for(SLACK, "AgentOpened", |e| {
        matches!(e, Event::AgentOpened { .. })
    });
    assert!(
        matches!(e, Event::AgentOpened { uid, .. } if uid != 0),
        "{e:?}"
    );
}
