//! The Rust client of hasvrd's agent socket: one connection per request,
//! retried while hasvrd is away for a bounded grace period (see the crate
//! documentation for the rules).

use haschema::agent::{DEFAULT_SOCKET, MAX_LINE, Reply, Request, Verb};
use nix::sys::socket::{MsgFlags, send};
use std::io::{self, BufRead as _, BufReader, Read as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Variable naming hasvrd's agent socket.
pub const SOCKET_ENV: &str = "HA_AGENT_SOCKET";

/// Variable giving the grace period, in seconds.
pub const GRACE_ENV: &str = "HA_AGENT_GRACE";

/// How long a call waits for hasvrd by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// First pause between attempts; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_millis(500);

/// Shortest wait for a reply, even when the grace period is (nearly) over:
/// hasvrd answers in microseconds unless it is stopped.
const MIN_REPLY_WAIT: Duration = Duration::from_secs(1);

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request cannot be sent: bad service name or command.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// hasvrd answered with an error (unknown service, permission denied...).
    #[error("hasvrd refused {request:?}: {message}")]
    Refused { request: String, message: String },
    /// No answer from hasvrd within the grace period.
    #[error("hasvrd unreachable at {path} (gave up after {waited:?}): {last}")]
    Unreachable {
        path: PathBuf,
        waited: Duration,
        last: io::Error,
    },
    /// hasvrd answered something that is not a reply.
    #[error("bad reply from hasvrd: {0}")]
    Protocol(String),
    /// A malformed environment variable.
    #[error("{0}")]
    Config(String),
}

/// Where hasvrd is, and how long to wait for it.
#[derive(Clone, Debug)]
pub struct Client {
    socket: PathBuf,
    grace: Duration,
}

/// How one attempt failed.
enum Failure {
    /// Nothing was delivered: try again.
    NotSent(io::Error),
    /// Sent, but no reply came: delivered or not, nobody knows.
    NoReply(io::Error),
    /// Trying again cannot help.
    Final(Error),
}

impl Client {
    /// A client of the socket at `socket`, with the default grace period.
    pub fn new(socket: impl Into<PathBuf>) -> Client {
        Client {
            socket: socket.into(),
            grace: DEFAULT_GRACE,
        }
    }

    /// The client the environment describes: [`SOCKET_ENV`] (or the default
    /// socket) and [`GRACE_ENV`].
    pub fn from_env() -> Result<Client, Error> {
        let socket = std::env::var_os(SOCKET_ENV)
            .filter(|s| !s.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_SOCKET), PathBuf::from);
        let grace = match std::env::var_os(GRACE_ENV) {
            None => DEFAULT_GRACE,
            Some(v) => parse_grace(&v.to_string_lossy()).map_err(Error::Config)?,
        };
        Ok(Client::new(socket).with_grace(grace))
    }

    /// The same client with another grace period.
    pub fn with_grace(mut self, grace: Duration) -> Client {
        self.grace = grace;
        self
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// `apiopen`: start expecting heartbeats for `service`.
    pub fn open(&self, service: &str) -> Result<(), Error> {
        self.send(&Request::Open {
            service: service.to_owned(),
        })
    }

    /// `apiok`: one heartbeat.
    pub fn ok(&self, service: &str) -> Result<(), Error> {
        self.send(&Request::Ok {
            service: service.to_owned(),
        })
    }

    /// `apierr`: the service does not work (`reason` may be empty).
    pub fn err(&self, service: &str, reason: &str) -> Result<(), Error> {
        self.send(&Request::Err {
            service: service.to_owned(),
            reason: reason.to_owned(),
        })
    }

    /// `apiclose`: stop expecting heartbeats.
    pub fn close(&self, service: &str) -> Result<(), Error> {
        self.send(&Request::Close {
            service: service.to_owned(),
        })
    }

    /// `apicmd`: `command` is `BRINGIN`, `BRINGOUT` or `FAILOVER` (any case).
    pub fn cmd(&self, command: &str, service: &str) -> Result<(), Error> {
        let verb = Verb::from_word(command).ok_or_else(|| {
            Error::Invalid(format!(
                "unknown command {command:?}: expected BRINGIN, BRINGOUT or FAILOVER"
            ))
        })?;
        self.send(&Request::Cmd {
            verb,
            service: service.to_owned(),
        })
    }

    /// Sends one request and waits for its reply, retrying while hasvrd is
    /// away; `Ok` when hasvrd answered `ok`.
    pub fn send(&self, request: &Request) -> Result<(), Error> {
        let line = checked_line(request)?;
        let retry_unanswered = !matches!(request, Request::Cmd { .. });
        let start = Instant::now();
        let deadline = start + self.grace;
        let mut pause = FIRST_PAUSE;
        loop {
            let last = match self.attempt(&line, deadline) {
                Ok(Reply::Ok) => return Ok(()),
                Ok(Reply::Error(message)) => {
                    return Err(Error::Refused {
                        request: request.to_string(),
                        message,
                    });
                }
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::NotSent(e)) => e,
                Err(Failure::NoReply(e)) if retry_unanswered => e,
                Err(Failure::NoReply(e)) => {
                    return Err(self.unreachable(start, no_reply(e)));
                }
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(self.unreachable(start, last));
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    fn unreachable(&self, start: Instant, last: io::Error) -> Error {
        Error::Unreachable {
            path: self.socket.clone(),
            waited: start.elapsed(),
            last,
        }
    }

    /// One connection: send `line`, read the reply.
    fn attempt(&self, line: &str, deadline: Instant) -> Result<Reply, Failure> {
        let stream = UnixStream::connect(&self.socket).map_err(|e| match e.kind() {
            // Neither fixes itself while we wait.
            io::ErrorKind::PermissionDenied | io::ErrorKind::InvalidInput => {
                Failure::Final(self.unreachable(Instant::now(), e))
            }
            _ => Failure::NotSent(e),
        })?;
        send_all(&stream, line.as_bytes()).map_err(Failure::NotSent)?;
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .max(MIN_REPLY_WAIT);
        stream
            .set_read_timeout(Some(wait))
            .map_err(Failure::NotSent)?;
        let mut reply = Vec::new();
        // A reply is at most MAX_LINE bytes and its newline (and a `\r`).
        BufReader::new(&stream)
            .take(MAX_LINE as u64 + 2)
            .read_until(b'\n', &mut reply)
            .map_err(Failure::NoReply)?;
        if reply.last() != Some(&b'\n') {
            let e = if reply.is_empty() {
                io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed")
            } else {
                io::Error::new(io::ErrorKind::UnexpectedEof, "reply cut short")
            };
            return Err(Failure::NoReply(e));
        }
        Reply::parse(&reply).map_err(|e| Failure::Final(Error::Protocol(e.to_string())))
    }
}

/// The request's line, refused here when hasvrd would not read it back as
/// the same request (a name with blanks or a newline would otherwise send
/// other words, or a second request).
fn checked_line(request: &Request) -> Result<String, Error> {
    let line = request.to_line();
    let back = Request::parse(line.as_bytes()).map_err(|e| Error::Invalid(e.to_string()))?;
    if back.keyword() != request.keyword() || back.service() != request.service() {
        return Err(Error::Invalid(format!(
            "invalid service name {:?}",
            request.service()
        )));
    }
    Ok(line)
}

/// Writes all of `bytes` without raising SIGPIPE.
fn send_all(stream: &UnixStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match send(stream.as_raw_fd(), bytes, MsgFlags::MSG_NOSIGNAL) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn no_reply(e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("no reply ({e}); a command is not sent twice"),
    )
}

/// Seconds, decimals allowed, finite, not negative, at most a day.
fn parse_grace(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "{GRACE_ENV}={text:?}: expected a number of seconds from 0 to 86400, e.g. 10 or 0.5"
        )
    };
    let seconds: f64 = text.trim().parse().map_err(|_| bad())?;
    if !(0.0..=86_400.0).contains(&seconds) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_is_seconds() {
        assert_eq!(parse_grace("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_grace(" 0.5 "), Ok(Duration::from_millis(500)));
        assert_eq!(parse_grace("0"), Ok(Duration::ZERO));
        for bad in ["", "-1", "NaN", "inf", "10s", "1e9"] {
            let e = parse_grace(bad).unwrap_err();
            assert!(e.contains("HA_AGENT_GRACE"), "{e}");
        }
    }

    #[test]
    fn names_that_would_change_the_line_are_refused() {
        for name in ["", "www db", "www\nopen db", "-www", "w\u{7f}"] {
            let r = Request::Ok {
                service: name.to_owned(),
            };
            assert!(
                matches!(checked_line(&r), Err(Error::Invalid(_))),
                "{name:?}"
            );
        }
        let r = Request::Err {
            service: "www".to_owned(),
            reason: "disk\nfull".to_owned(),
        };
        assert_eq!(checked_line(&r).unwrap(), "err www disk full\n");
    }

    #[test]
    fn unknown_commands_are_refused_before_connecting() {
        let c = Client::new("/nonexistent/agent.sock").with_grace(Duration::ZERO);
        assert!(matches!(c.cmd("JUMP", "www"), Err(Error::Invalid(_))));
    }

    #[test]
    fn a_missing_socket_is_retried_until_the_grace_ends() {
        let grace = Duration::from_millis(300);
        let c = Client::new("/nonexistent/agent.sock").with_grace(grace);
        let start = Instant::now();
        let e = c.ok("www").unwrap_err();
        let took = start.elapsed();
        assert!(matches!(e, Error::Unreachable { .. }), "{e}");
        assert!(took >= grace && took < grace * 3, "{took:?}");
    }
}
