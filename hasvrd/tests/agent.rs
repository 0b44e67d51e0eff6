//! The agent socket for real: hasvrd's server on a unix socket in a scratch
//! directory, with two known services, and clients speaking the line
//! protocol over plain blocking `std` sockets, as `libhaapi.so` and `socat`
//! will. Checks heartbeats, silence ("fake alive"), `err`, `close`, agent
//! exits, errors on bad lines, and who may send `cmd` (other users are run
//! through `setpriv`, re-running this test binary as the client).

use haschema::agent::Verb;
use hasvrd::agent::server::MAX_USER_CLIENTS;
use hasvrd::agent::{Agents, Event, FailCause, Watch, WatchParams};
use hatests::command::run_for;
use hatests::scratch::ScratchDir;
use hatests::{RunAs, TempGroup, require_root};
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `www` is watched with check_interval 200 ms and check_tko 3.
const INTERVAL: Duration = Duration::from_millis(200);
const TKO: u32 = 3;
const WINDOW: Duration = Duration::from_millis(600);
/// Longest wait for an event that must come.
const EVENT_WAIT: Duration = Duration::from_secs(10);

/// Variables that make [`client_helper`] act as a client.
const HELPER_SOCKET: &str = "HASVRD_AGENT_TEST_SOCKET";
const HELPER_LINES: &str = "HASVRD_AGENT_TEST_LINES";
/// Connections [`client_helper`] opens (and keeps) before its own.
const HELPER_HOLD: &str = "HASVRD_AGENT_TEST_HOLD";

// ---- harness -----------------------------------------------------------------

/// A running agent server (on its own runtime) over `www` and `db`.
struct Server {
    // Dropped before the runtime that runs it, and the directory.
    agents: Agents,
    rt: tokio::runtime::Runtime,
    dir: ScratchDir,
}

impl Server {
    fn start(test: &str, admin_gid: Option<u32>) -> Server {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_max_level(tracing::Level::DEBUG)
            .try_init();
        let dir = ScratchDir::new(test);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let watch = Watch::new([
            (
                "www".to_owned(),
                WatchParams {
                    check_interval: INTERVAL,
                    check_tko: TKO,
                },
            ),
            (
                "db".to_owned(),
                WatchParams {
                    check_interval: Duration::from_secs(5),
                    check_tko: 2,
                },
            ),
        ]);
        let path = dir.join("run/agent.sock");
        let agents = {
            let _in_runtime = rt.enter();
            Agents::start(&path, admin_gid, watch).unwrap()
        };
        Server { agents, rt, dir }
    }

    fn path(&self) -> &Path {
        self.agents.path()
    }

    fn connect(&self) -> Conn {
        Conn::connect(self.path())
    }

    /// The next event within `wait`, if any.
    fn event_within(&mut self, wait: Duration) -> Option<Event> {
        let agents = &mut self.agents;
        self.rt
            .block_on(async { tokio::time::timeout(wait, agents.next_event()).await })
            .ok()
            .flatten()
    }

    #[track_caller]
    fn event(&mut self) -> Event {
        match self.event_within(EVENT_WAIT) {
            Some(e) => e,
            None => panic!("no event within {EVENT_WAIT:?}"),
        }
    }

    #[track_caller]
    fn no_event(&mut self, during: Duration) {
        if let Some(e) = self.event_within(during) {
            panic!("unexpected event {e:?}");
        }
    }
}

/// A client connection, as a C agent keeps one.
struct Conn {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Conn {
    fn connect(path: &Path) -> Conn {
        let stream = UnixStream::connect(path).unwrap();
        stream.set_read_timeout(Some(EVENT_WAIT)).unwrap();
        Conn {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    /// Sends raw bytes (a newline is not added).
    fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// The next reply line, without its newline.
    fn reply(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(line.ends_with('\n'), "reply {line:?} lacks its newline");
        line.pop();
        line
    }

    /// Sends one request line, returns the reply.
    fn ask(&mut self, line: &str) -> String {
        self.send_raw(format!("{line}\n").as_bytes());
        self.reply()
    }
}

fn opened(event: &Event, name: &str) -> bool {
    matches!(event, Event::AgentOpened { service, .. } if service == name)
}

// ---- heartbeats --------------------------------------------------------------

#[test]
fn heartbeats_keep_a_service_open_and_silence_fails_it() {
    let mut s = Server::start("agent-silence", None);
    let mut c = s.connect();
    assert_eq!(c.ask("open www"), "ok");
    let e = s.event();
    assert!(opened(&e, "www"), "{e:?}");

    // Heartbeats every 100 ms for 2 s (over three windows): no failure.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        assert_eq!(c.ask("ok www"), "ok");
        std::thread::sleep(Duration::from_millis(100));
        if let Some(e) = s.event_within(Duration::ZERO) {
            panic!("event while heartbeats flow: {e:?}");
        }
    }
    assert_eq!(c.ask("ok www"), "ok");
    let stopped = Instant::now();

    // Then the agent hangs (its process and connection still there).
    match s.event() {
        Event::AgentFailed {
            service,
            cause: FailCause::Silent { silence },
        } if service == "www" => {
            assert!(silence >= WINDOW, "silence {silence:?}");
            let cause = FailCause::Silent { silence };
            assert!(cause.to_string().starts_with("silent (fake alive)"));
            eprintln!(
                "silent failure reported {:?} after the last ok (window {WINDOW:?})",
                stopped.elapsed()
            );
        }
        other => panic!("expected www silent, got {other:?}"),
    }
    // Reported once, and the other service was never open.
    s.no_event(WINDOW * 2);
}

#[test]
fn err_fails_the_service_with_its_reason() {
    let mut s = Server::start("agent-err", None);
    let mut c = s.connect();
    assert_eq!(c.ask("open www"), "ok");
    assert!(opened(&s.event(), "www"));
    assert_eq!(c.ask("err www httpd answers 503 on /"), "ok");
    assert_eq!(
        s.event(),
        Event::AgentFailed {
            service: "www".into(),
            cause: FailCause::Reported {
                reason: "httpd answers 503 on /".into()
            },
        }
    );
    // No silence failure follows: nothing is expected after a failure.
    s.no_event(WINDOW * 2);
}

#[test]
fn close_ends_the_watch() {
    let mut s = Server::start("agent-close", None);
    let mut c = s.connect();
    assert_eq!(c.ask("open www"), "ok");
    assert!(opened(&s.event(), "www"));
    assert_eq!(c.ask("close www"), "ok");
    assert!(matches!(s.event(), Event::AgentClosed { service, .. } if service == "www"));
    s.no_event(WINDOW * 2);
}

#[test]
fn an_agent_that_exits_while_open_fails_the_service() {
    let mut s = Server::start("agent-exit", None);
    let mut c = s.connect();
    assert_eq!(c.ask("open www"), "ok");
    assert!(opened(&s.event(), "www"));
    s.agents.agent_exited("www", "exit status 1");
    assert_eq!(
        s.event(),
        Event::AgentFailed {
            service: "www".into(),
            cause: FailCause::Exited {
                how: "exit status 1".into()
            },
        }
    );
    // Disarmed before a deliberate stop: neither silence nor the exit count.
    assert_eq!(c.ask("open www"), "ok");
    assert!(opened(&s.event(), "www"));
    s.agents.disarm("www");
    s.agents.agent_exited("www", "killed by signal 15");
    s.no_event(WINDOW * 2);
}

#[test]
fn one_connection_per_request_as_a_shell_agent_does() {
    let mut s = Server::start("agent-shell", None);
    // SureHA's shell template calls APIOK.x each time and never opens.
    for _ in 0..3 {
        let mut c = s.connect();
        c.send_raw(b"ok www"); // last line without its newline, then EOF
        c.writer.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(c.reply(), "ok");
    }
    assert!(opened(&s.event(), "www"), "the first ok opened it");
    let e = s.event();
    assert!(
        matches!(&e, Event::AgentFailed { service, cause: FailCause::Silent { .. } } if service == "www"),
        "{e:?}"
    );
}

// ---- errors ------------------------------------------------------------------

#[test]
fn bad_lines_get_an_error_line_and_the_connection_stays_usable() {
    let mut s = Server::start("agent-garbage", None);
    let mut c = s.connect();
    assert_eq!(c.ask("ok mail"), "error unknown service mail");
    assert_eq!(
        c.ask("hello"),
        "error unknown request \"hello\": expected open, ok, err, close or cmd"
    );
    assert_eq!(
        c.ask(""),
        "error empty request: expected open, ok, err, close or cmd"
    );
    assert_eq!(c.ask("ok"), "error ok needs a service name: ok NAME");
    assert_eq!(
        c.ask("cmd RESTART www"),
        "error unknown command \"RESTART\": expected BRINGIN, BRINGOUT or FAILOVER"
    );
    c.send_raw(b"ok \xff\xfe\x00\n");
    assert_eq!(c.reply(), "error line is not UTF-8");
    c.send_raw(b"ok w\x1b[2Jww\n");
    assert_eq!(c.reply(), "error control character U+001B in line");
    // A line far over the limit, sent in one go: one error, once it ends.
    let mut long = b"err www ".to_vec();
    long.extend(std::iter::repeat_n(b'x', 100_000));
    long.push(b'\n');
    c.send_raw(&long);
    assert_eq!(c.reply(), "error line longer than 512 bytes");
    // Several requests in one write, CRLF line ends.
    c.send_raw(b"OPEN www\r\nok www\r\n");
    assert_eq!(c.reply(), "ok");
    assert_eq!(c.reply(), "ok");
    let e = s.event();
    assert!(opened(&e, "www"), "{e:?}");
    assert_eq!(c.ask("close www"), "ok");
}

#[test]
fn the_socket_replaces_a_stale_one_but_not_a_live_one() {
    let s = Server::start("agent-socket", None);
    let path = s.path().to_path_buf();
    let mode = std::fs::metadata(&path).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        mode.permissions().mode() & 0o777,
        0o666,
        "any local process may connect"
    );
    let second = {
        let _in_runtime = s.rt.enter();
        Agents::start(&path, None, Watch::new([]))
    };
    let e = second.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");

    let dir: PathBuf = s.dir.join("other");
    std::fs::create_dir_all(&dir).unwrap();
    let stale = dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let file = dir.join("file");
    std::fs::write(&file, "keep me").unwrap();
    {
        let _in_runtime = s.rt.enter();
        let agents = Agents::start(&stale, None, Watch::new([])).unwrap();
        assert_eq!(
            Conn::connect(&stale).ask("ok www"),
            "error unknown service www"
        );
        drop(agents);
        assert!(!stale.exists(), "removed when the server stops");
        let e = Agents::start(&file, None, Watch::new([])).unwrap_err();
        assert!(e.to_string().contains("is not a socket"), "{e}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

// ---- who may send cmd ----------------------------------------------------------

#[test]
fn cmd_as_root_is_accepted() {
    if !require_root() {
        return;
    }
    let mut s = Server::start("agent-cmd-root", None);
    let mut c = s.connect();
    assert_eq!(c.ask("cmd FAILOVER mail"), "error unknown service mail");
    for verb in Verb::ALL {
        assert_eq!(c.ask(&format!("cmd {verb} www")), "ok");
        assert_eq!(
            s.event(),
            Event::Command {
                verb,
                service: "www".into(),
                requested_by: 0
            }
        );
    }
}

#[test]
fn other_users_send_heartbeats_but_cmd_only_in_the_admin_group() {
    if !require_root() {
        return;
    }
    let group = TempGroup::new("agent");
    let mut s = Server::start("agent-cmd-users", Some(group.gid()));
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("user nobody")
        .uid
        .as_raw();
    let refused =
        format!("error permission denied: cmd needs root or the admin group (uid {nobody})");

    // Heartbeats from any user; cmd refused without the group.
    let lines = ["open www", "ok www", "cmd FAILOVER www", "close www"];
    let replies = run_client_as(&RunAs::nobody(), s.path(), &lines);
    assert_eq!(replies, ["ok", "ok", refused.as_str(), "ok"]);
    let e = s.event();
    assert!(
        matches!(&e, Event::AgentOpened { service, uid, pid: Some(_) } if service == "www" && *uid == nobody),
        "{e:?}"
    );
    let e = s.event();
    assert!(
        matches!(&e, Event::AgentClosed { service, uid, .. } if service == "www" && *uid == nobody),
        "{e:?}"
    );
    s.no_event(Duration::from_millis(200));

    // In the admin group, as a supplementary or as the primary group.
    let member = RunAs::nobody().supplementary_group(group.gid());
    let replies = run_client_as(&member, s.path(), &["cmd BRINGIN www"]);
    assert_eq!(replies, ["ok"]);
    let primary = RunAs::nobody().primary_group(group.gid().to_string());
    let replies = run_client_as(&primary, s.path(), &["cmd bringout db"]);
    assert_eq!(replies, ["ok"]);
    for (verb, service) in [(Verb::BringIn, "www"), (Verb::BringOut, "db")] {
        assert_eq!(
            s.event(),
            Event::Command {
                verb,
                service: service.into(),
                requested_by: nobody
            }
        );
    }
    drop(s);
    drop(group);
}

#[test]
fn other_users_hold_a_bounded_number_of_connections() {
    if !require_root() {
        return;
    }
    let mut s = Server::start("agent-max-clients", None);
    let replies = run_client_holding(&RunAs::nobody(), s.path(), MAX_USER_CLIENTS, &["ok www"]);
    assert_eq!(
        replies,
        ["error too many agent connections; try again later"]
    );
    assert!(opened(&s.event(), "www"));
    // Their slots are freed as the server sees them close.
    let deadline = Instant::now() + EVENT_WAIT;
    loop {
        let replies = run_client_as(&RunAs::nobody(), s.path(), &["close www"]);
        if replies == ["ok"] {
            break;
        }
        assert!(Instant::now() < deadline, "still refused: {replies:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs this test binary as `who`, as a client that sends `lines` on
/// `socket` and prints each reply; returns the replies.
fn run_client_as(who: &RunAs, socket: &Path, lines: &[&str]) -> Vec<String> {
    run_client_holding(who, socket, 0, lines)
}

/// [`run_client_as`], the client first opening `hold` other connections
/// (each checked with an `ok www`) and keeping them open.
fn run_client_holding(who: &RunAs, socket: &Path, hold: usize, lines: &[&str]) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = who.command(&exe);
    cmd.args([
        "--exact",
        "client_helper",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(HELPER_SOCKET, socket)
    .env(HELPER_HOLD, hold.to_string())
    .env(HELPER_LINES, lines.join("\n"));
    let finished = run_for(&mut cmd, Duration::from_secs(30)).unwrap();
    assert!(finished.status.success(), "client failed: {finished:?}");
    finished
        .stdout
        .lines()
        // libtest may print "test client_helper ... " on the first line.
        .filter_map(|l| l.split_once("reply: "))
        .map(|(_, reply)| reply.to_owned())
        .collect()
}

/// Not a test of its own: the client that [`run_client_as`] runs as another
/// user (does nothing unless its variables are set).
#[test]
fn client_helper() {
    let (Some(socket), Ok(lines)) = (std::env::var_os(HELPER_SOCKET), std::env::var(HELPER_LINES))
    else {
        return;
    };
    let socket = Path::new(&socket);
    let hold = std::env::var(HELPER_HOLD).map_or(0, |n| n.parse().unwrap());
    let held: Vec<Conn> = (0..hold)
        .map(|_| {
            let mut c = Conn::connect(socket);
            assert_eq!(c.ask("ok www"), "ok");
            c
        })
        .collect();
    let mut c = Conn::connect(socket);
    for line in lines.lines() {
        println!("reply: {}", c.ask(line));
    }
    drop(held);
}
