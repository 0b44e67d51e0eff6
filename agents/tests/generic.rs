//! The generic agent against hasvrd's real agent server: a pid file whose
//! process lives or is gone, a TCP port that accepts or refuses; and how
//! every agent ends when hasvrd refuses its service or its flags are wrong.

mod support;

use nix::sys::signal::Signal;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use support::{Harness, SERVICE};

#[test]
fn pid_file_and_tcp_port() {
    let mut h = Harness::start("agent-generic");
    let pidfile = h.scratch.join("app.pid");
    let mut app = Command::new("sleep")
        .arg("1000")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut dead = Command::new("true").spawn().unwrap();
    dead.wait().unwrap();
    std::fs::write(&pidfile, format!("{}\n", app.id())).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = listener.local_addr().unwrap().to_string();
    let mut agent = h.agent(
        env!("CARGO_BIN_EXE_generic"),
        &[
            "--interval",
            "50ms",
            "--pidfile",
            pidfile.to_str().unwrap(),
            "--tcp",
            &tcp,
        ],
    );
    let ok = format!("ok {SERVICE}");
    h.wait_line(&format!("open {SERVICE}"));
    h.wait_line(&ok);

    // The pid file names a process that is gone.
    std::fs::write(&pidfile, format!("{}\n", dead.id())).unwrap();
    let line = h.wait_line(&format!("err {SERVICE} "));
    assert!(line.contains("is gone"), "{line}");
    std::fs::write(&pidfile, format!("{}\n", app.id())).unwrap();
    h.wait_line(&ok);

    // The port refuses connections.
    drop(listener);
    let line = h.wait_line(&format!("err {SERVICE} "));
    assert!(
        line.contains(&format!("no TCP connection to {tcp}")),
        "{line}"
    );

    agent.signal(Signal::SIGTERM);
    h.wait_line(&format!("close {SERVICE}"));
    assert_eq!(agent.exit_code(), Some(0));
    app.kill().unwrap();
    app.wait().unwrap();
}

#[test]
fn an_unknown_service_ends_the_agent() {
    let mut h = Harness::start("agent-unknown");
    let mut agent = h.agent(
        env!("CARGO_BIN_EXE_generic"),
        &["--service", "nosuch", "--tcp", "127.0.0.1:9"],
    );
    h.wait_line("open nosuch");
    assert_eq!(agent.exit_code(), Some(1));
    let log = std::fs::read_to_string(h.scratch.join("generic.log")).unwrap();
    assert!(log.contains("unknown service nosuch"), "{log}");
}

#[test]
fn nothing_to_check_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_generic"))
        .args(["--service", "app"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nothing to check"), "{stderr}");
}
