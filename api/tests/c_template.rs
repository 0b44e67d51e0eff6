//! The manual's C agent template (agents/templates/ha_ag_tmp.c), compiled
//! with gcc against api/include and libhaapi.so, run against a real hasvrd
//! agent server: it opens the service and heartbeats while
//! $HAHOME/tmp/agent exists, reports an error when the file is gone, is
//! found silent when killed, and stops on an unknown service or when hasvrd
//! stays away longer than the grace period.

mod support;

use hatests::scratch::ScratchDir;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{Agent, SLACK, Server, WINDOW};

/// A compiled template with its home directory and a socket path.
struct Setup {
    _dir: ScratchDir,
    program: PathBuf,
    home: PathBuf,
    socket: PathBuf,
}

impl Setup {
    fn new(test: &str) -> Setup {
        let dir = ScratchDir::new(test);
        let program = dir.join("ha_ag_tmp.x");
        support::compile_shared(
            dir.path(),
            &support::templates_dir().join("ha_ag_tmp.c"),
            &program,
            &[],
        );
        let home = dir.join("home");
        std::fs::create_dir_all(home.join("tmp")).unwrap();
        let socket = dir.join("run/agent.sock");
        Setup {
            _dir: dir,
            program,
            home,
            socket,
        }
    }

    /// The watched file, `$HAHOME/tmp/agent`.
    fn flag(&self) -> PathBuf {
        self.home.join("tmp/agent")
    }

    /// `ha_ag_tmp.x SERVICE INTERVAL` with HAHOME, the socket and a grace.
    fn command(&self, service: &str, interval: &str, grace: &str) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args([service, interval])
            .env("HAHOME", &self.home)
            .env("HA_AGENT_SOCKET", &self.socket)
            .env("HA_AGENT_GRACE", grace)
            .stdin(Stdio::null());
        cmd
    }
}

fn touch(path: &Path) {
    std::fs::write(path, b"").unwrap();
}

#[test]
fn the_c_template_heartbeats_reports_errors_and_is_missed_when_killed() {
    let s = Setup::new("c-template");
    let mut server = Server::start(&s.socket);
    touch(&s.flag());
    // Interval 2: the template sleeps Interval-1 = 1 s between calls.
    let mut agent = Agent::spawn(&mut s.command("www", "2", "2"));
    let pid = agent.pid();
    server.wait_for(SLACK, "AgentOpened by the agent", |e| {
        support::opened(e, pid)
    });

    // Heartbeats every second keep it open past the 3 s window.
    server.quiet(WINDOW + Duration::from_secs(2));

    // The file goes: apierr.
    std::fs::remove_file(s.flag()).unwrap();
    server.wait_for(SLACK, "a reported failure", support::reported);
    // It comes back: apiok reopens.
    touch(&s.flag());
    server.wait_for(SLACK, "AgentOpened again", |e| support::opened(e, pid));
    server.quiet(WINDOW + Duration::from_secs(1));

    // Killed: the heartbeats stop, and the silence is noticed.
    agent.kill();
    server.wait_for(WINDOW + SLACK, "a silent failure", support::silent);
}

#[test]
fn the_c_template_stops_on_an_unknown_service() {
    let s = Setup::new("c-template-unknown");
    let mut server = Server::start(&s.socket);
    touch(&s.flag());
    let mut agent = Agent::spawn(&mut s.command("nosuch", "2", "10"));
    // apiopen and apiok fail at once (no retry for an answer), apiclose too.
    assert_eq!(agent.exit_code_within(SLACK), Some(0));
    server.quiet(Duration::from_millis(300));
}

#[test]
fn the_c_template_stops_when_hasvrd_stays_away_past_the_grace() {
    let s = Setup::new("c-template-gone");
    let mut server = Server::start(&s.socket);
    touch(&s.flag());
    let mut agent = Agent::spawn(&mut s.command("www", "2", "1"));
    let pid = agent.pid();
    server.wait_for(SLACK, "AgentOpened by the agent", |e| {
        support::opened(e, pid)
    });
    drop(server);
    // Next apiok: 1 s of retries, then -1; apiclose likewise; exit 0.
    assert_eq!(agent.exit_code_within(Duration::from_secs(8)), Some(0));
}

#[test]
fn the_c_template_checks_once_with_interval_zero() {
    let s = Setup::new("c-template-once");
    touch(&s.flag());
    let mut agent = Agent::spawn(&mut s.command("www", "0", "0"));
    assert_eq!(agent.exit_code_within(SLACK), Some(1), "file present");
    std::fs::remove_file(s.flag()).unwrap();
    let mut agent = Agent::spawn(&mut s.command("www", "0", "0"));
    assert_eq!(agent.exit_code_within(SLACK), Some(0), "file absent");
}
