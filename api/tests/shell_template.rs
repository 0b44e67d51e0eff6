//! The manual's shell agent template (agents/templates/ha_ag_tmp.sh), run
//! unchanged by /bin/sh with $HAHOME/bin/APIOK.x and APIERROR.x made by
//! `haapi links`, against a real hasvrd agent server: heartbeats while
//! $HAHOME/tmp/agent.SERVICE exists, errors when it is gone, silence when
//! killed, a prompt stop on an unknown service, and its CHECKTIME 0 mode.

mod support;

use hatests::command::run_for;
use hatests::scratch::ScratchDir;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{Agent, SLACK, Server, WINDOW};

/// A home directory with the links, and a socket path.
struct Home {
    _dir: ScratchDir,
    home: PathBuf,
    socket: PathBuf,
}

impl Home {
    fn new(test: &str) -> Home {
        let dir = ScratchDir::new(test);
        let home = dir.join("home");
        std::fs::create_dir_all(home.join("tmp")).unwrap();
        std::fs::create_dir_all(home.join("bin")).unwrap();
        let links = run_for(
            Command::new(support::haapi())
                .arg("links")
                .arg(home.join("bin")),
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(links.status.success(), "haapi links: {}", links.stderr);
        let socket = dir.join("run/agent.sock");
        Home {
            _dir: dir,
            home,
            socket,
        }
    }

    fn flag(&self, service: &str) -> PathBuf {
        self.home.join(format!("tmp/agent.{service}"))
    }

    /// `sh ha_ag_tmp.sh SERVICE CHECKTIME`, output kept.
    fn command(&self, service: &str, checktime: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg(support::templates_dir().join("ha_ag_tmp.sh"))
            .args([service, checktime])
            .env("HAHOME", &self.home)
            .env("HA_AGENT_SOCKET", &self.socket)
            .env("HA_AGENT_GRACE", "2")
            .stdin(Stdio::null());
        cmd
    }
}

#[test]
fn the_shell_template_heartbeats_reports_errors_and_is_missed_when_killed() {
    let h = Home::new("sh-template");
    let mut server = Server::start(&h.socket);
    std::fs::write(h.flag("www"), b"").unwrap();
    let mut agent = Agent::spawn(h.command("www", "1").stdout(Stdio::null()));
    // The template never calls apiopen: its first APIOK.x opens.
    server.wait_for(
        SLACK,
        "AgentOpened",
        |e| matches!(e, hasvrd::agent::Event::AgentOpened { service, .. } if service == "www"),
    );
    server.quiet(WINDOW + Duration::from_secs(2));

    std::fs::remove_file(h.flag("www")).unwrap();
    server.wait_for(SLACK, "a reported failure", support::reported);
    std::fs::write(h.flag("www"), b"").unwrap();
    server.wait_for(SLACK, "AgentOpened again", |e| {
        matches!(e, hasvrd::agent::Event::AgentOpened { .. })
    });
    server.quiet(WINDOW + Duration::from_secs(1));

    agent.kill();
    server.wait_for(WINDOW + SLACK, "a silent failure", support::silent);
}

#[test]
fn the_shell_template_stops_on_an_unknown_service() {
    let h = Home::new("sh-template-unknown");
    let mut server = Server::start(&h.socket);
    std::fs::write(h.flag("nosuch"), b"").unwrap();
    let f = run_for(&mut h.command("nosuch", "1"), SLACK).unwrap();
    assert_eq!(f.code(), Some(0), "{f:?}");
    assert_eq!(f.stdout, "ha_ag_agent.sh exit\n");
    assert!(f.stderr.contains("unknown service nosuch"), "{f:?}");
    server.quiet(Duration::from_millis(300));
}

#[test]
fn the_shell_template_checks_once_with_checktime_zero() {
    let h = Home::new("sh-template-once");
    let mut server = Server::start(&h.socket);
    std::fs::write(h.flag("www"), b"").unwrap();
    // The file is there: one APIOK.x, then exit 1 (as the manual has it).
    let f = run_for(&mut h.command("www", "0"), SLACK).unwrap();
    assert_eq!(f.code(), Some(1), "{f:?}");
    server.wait_for(SLACK, "AgentOpened", |e| {
        matches!(e, hasvrd::agent::Event::AgentOpened { .. })
    });
    // Gone: one APIERROR.x, exit 0.
    std::fs::remove_file(h.flag("www")).unwrap();
    let f = run_for(&mut h.command("www", "0"), SLACK).unwrap();
    assert_eq!(f.code(), Some(0), "{f:?}");
    server.wait_for(SLACK, "a reported failure", support::reported);
}

#[test]
fn the_shell_template_prints_its_usage() {
    let h = Home::new("sh-template-usage");
    let f = run_for(&mut h.command("www", ""), SLACK).unwrap();
    assert_eq!(f.code(), Some(0), "{f:?}");
    assert_eq!(f.stdout, "Usage:ha_ag_agent.sh SERVICENAME CHECKTIME\n");
}
