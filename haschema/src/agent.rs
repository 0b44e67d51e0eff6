//! The agent protocol: how agents (SureHA's `apiopen`, `apiok`, `apierr`,
//! `apiclose` and `apicmd`, in `libhaapi.so` and the `haapi` shell tool)
//! and applications sending a user heartbeat (Skyge's "user heartbeat")
//! talk to hasvrd.
//!
//! # Transport
//!
//! A unix stream socket, [`DEFAULT_SOCKET`] by default. The client writes
//! request lines; hasvrd answers each with exactly one reply line, in order.
//! A connection may carry any number of requests (a C agent keeps one open
//! for its lifetime) or just one (a shell agent connects per call); closing
//! it means nothing by itself. Lines end with `\n` (a `\r` before it is
//! ignored) and hold at most [`MAX_LINE`] bytes before it; a longer line is
//! answered with an error once its newline arrives, and the connection stays
//! usable. The last line may lack its newline when the client then shuts
//! down its side. Text is UTF-8 without control characters (tab aside);
//! words are separated by spaces or tabs; keywords are case-insensitive,
//! service names are not.
//!
//! # Requests
//!
//! | line | SureHA call | meaning |
//! |---|---|---|
//! | `open NAME` | `apiopen` | start expecting heartbeats for service NAME |
//! | `ok NAME` | `apiok` | one heartbeat: the application works |
//! | `err NAME [reason...]` | `apierr` | the application does not work (the rest of the line is the reason, for the log) |
//! | `close NAME` | `apiclose` | stop expecting heartbeats |
//! | `cmd BRINGIN\|BRINGOUT\|FAILOVER NAME` | `apicmd` | ask hasvrd to bring the service in, out, or move it to a standby (what the GUI buttons do) |
//!
//! NAME follows the service-name rule of the service files (1 to 32 of
//! `A-Z a-z 0-9 _ . -`, starting with a letter or digit).
//!
//! # Replies
//!
//! `ok`, or `error <message>` (one line, for a human). `ok` to `cmd` means
//! the command was accepted and handed to the service logic, not that it
//! has completed. Errors: a malformed line ([`ParseError`]), `unknown
//! service NAME` (no such service on this node), permission denied (`cmd`
//! only).
//!
//! # What hasvrd does with them
//!
//! While a service is *open*, hasvrd expects an `ok` at least every
//! `check_interval x check_tko` (from its service file) counted from the
//! `open` or from the last `ok`; silence that long is a failure of the
//! application, "silent (fake alive)": its process may still exist, but it
//! no longer says it works. An `err` is a failure too, with the reason
//! given. An agent process that hasvrd started for the service and that
//! exits while the service is open is a failure as well; one that calls
//! `close` first is not. An `ok` for a service that is not open opens it
//! (the SureHA shell template never calls `apiopen`). After a failure the
//! service is no longer expected to send heartbeats until the next `open`
//! or `ok`.
//!
//! # Who may send what
//!
//! The peer is identified by SO_PEERCRED, never by what it says. `open`,
//! `ok`, `err` and `close` are accepted from any local process: the
//! bundled agents run as root, but a user heartbeat comes from the
//! application itself, under its own uid. `cmd` is accepted only from root
//! or a member of the configured admin group (primary or supplementary, see
//! [`crate::access`]).
//!
//! # User heartbeat
//!
//! Skyge's "user heartbeat" (`sk_user_heartbeat`: an application sends
//! heartbeats to the cluster itself, so that a hung "fake alive" process is
//! noticed) is this same protocol: the application sends `open NAME`, then
//! `ok NAME` from its main loop, e.g. from a shell:
//!
//! ```text
//! $ echo "ok www" | socat - UNIX-CONNECT:/run/hacluster/agent.sock
//! ok
//! $ printf 'cmd FAILOVER www\n' | socat - UNIX-CONNECT:/run/hacluster/agent.sock
//! error permission denied: cmd needs root or the admin group (uid 1000)
//! ```

use crate::toml_walk::valid_name;
use std::fmt;

/// Default path of hasvrd's agent socket.
pub const DEFAULT_SOCKET: &str = "/run/hacluster/agent.sock";

/// Most bytes of a request or reply line before its `\n`.
pub const MAX_LINE: usize = 512;

/// Longest excerpt of a bad word quoted back in an error.
const MAX_QUOTE: usize = 40;

/// What the five requests are called on the wire, for messages.
const REQUESTS: &str = "open, ok, err, close or cmd";

/// The `apicmd` commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    /// Bring the service in (start it on its node).
    BringIn,
    /// Bring the service out (stop it, without moving it).
    BringOut,
    /// Move the service to a standby node.
    Failover,
}

impl Verb {
    pub const ALL: [Verb; 3] = [Verb::BringIn, Verb::BringOut, Verb::Failover];

    /// The word on the wire (SureHA's spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::BringIn => "BRINGIN",
            Verb::BringOut => "BRINGOUT",
            Verb::Failover => "FAILOVER",
        }
    }

    /// The verb of a word, in any case.
    pub fn from_word(word: &str) -> Option<Verb> {
        Verb::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One request line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Open {
        service: String,
    },
    Ok {
        service: String,
    },
    /// `reason` is empty when none was given.
    Err {
        service: String,
        reason: String,
    },
    Close {
        service: String,
    },
    Cmd {
        verb: Verb,
        service: String,
    },
}

impl Request {
    /// Parses one line (without or with its `\n`).
    pub fn parse(line: &[u8]) -> Result<Request, ParseError> {
        let text = check_text(line)?;
        let (word, rest) = split_word(text);
        if word.is_empty() {
            return Err(ParseError::Empty);
        }
        let keyword = ["open", "ok", "err", "close", "cmd"]
            .into_iter()
            .find(|k| k.eq_ignore_ascii_case(word))
            .ok_or_else(|| ParseError::UnknownRequest(quote(word)))?;
        if keyword == "cmd" {
            let (verb, rest) = split_word(rest);
            if verb.is_empty() {
                return Err(ParseError::MissingCommand);
            }
            let verb =
                Verb::from_word(verb).ok_or_else(|| ParseError::UnknownCommand(quote(verb)))?;
            let (service, rest) = service_word(rest, "cmd").map_err(|e| match e {
                ParseError::MissingService(_) => ParseError::MissingCommand,
                other => other,
            })?;
            no_more(rest, "cmd")?;
            return Ok(Request::Cmd { verb, service });
        }
        let (service, rest) = service_word(rest, keyword)?;
        Ok(match keyword {
            "open" => no_more(rest, keyword).map(|()| Request::Open { service })?,
            "ok" => no_more(rest, keyword).map(|()| Request::Ok { service })?,
            "close" => no_more(rest, keyword).map(|()| Request::Close { service })?,
            _ => Request::Err {
                service,
                reason: rest.to_owned(),
            },
        })
    }

    /// The service the request is about.
    pub fn service(&self) -> &str {
        match self {
            Request::Open { service }
            | Request::Ok { service }
            | Request::Err { service, .. }
            | Request::Close { service }
            | Request::Cmd { service, .. } => service,
        }
    }

    /// The request's first word.
    pub fn keyword(&self) -> &'static str {
        match self {
            Request::Open { .. } => "open",
            Request::Ok { .. } => "ok",
            Request::Err { .. } => "err",
            Request::Close { .. } => "close",
            Request::Cmd { .. } => "cmd",
        }
    }

    /// The line to send, with its `\n`. An `err` reason is cleaned
    /// ([`clean_text`]) and shortened to fit in [`MAX_LINE`]; the service
    /// name is sent as it is (a bad one is refused by the server).
    pub fn to_line(&self) -> String {
        let mut line = match self {
            Request::Cmd { verb, service } => format!("cmd {verb} {service}"),
            Request::Err { service, reason } => {
                let head = format!("err {service}");
                let reason = clean_text(reason, MAX_LINE.saturating_sub(head.len() + 1));
                if reason.is_empty() {
                    head
                } else {
                    format!("{head} {reason}")
                }
            }
            other => format!("{} {}", other.keyword(), other.service()),
        };
        line.push('\n');
        line
    }
}

impl fmt::Display for Request {
    /// The line without its newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_line().trim_end_matches('\n'))
    }
}

/// One reply line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Ok,
    Error(String),
}

impl Reply {
    /// An error reply; the message is cleaned when sent.
    pub fn error(message: impl fmt::Display) -> Reply {
        Reply::Error(message.to_string())
    }

    /// Parses a reply line (without or with its `\n`).
    pub fn parse(line: &[u8]) -> Result<Reply, ParseError> {
        let text = check_text(line)?;
        let (word, rest) = split_word(text);
        if word == "ok" && rest.is_empty() {
            Ok(Reply::Ok)
        } else if word == "error" {
            Ok(Reply::Error(rest.to_owned()))
        } else {
            Err(ParseError::UnknownReply(quote(text)))
        }
    }

    /// The line to send, with its `\n`; an error message is cleaned and
    /// shortened to fit in [`MAX_LINE`].
    pub fn to_line(&self) -> String {
        match self {
            Reply::Ok => "ok\n".to_owned(),
            Reply::Error(message) => {
                let message = clean_text(message, MAX_LINE - "error ".len());
                if message.is_empty() {
                    "error\n".to_owned()
                } else {
                    format!("error {message}\n")
                }
            }
        }
    }
}

/// Why a line is not a request (or not a reply).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("line longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("line is not UTF-8")]
    NotUtf8,
    #[error("control character U+{:04X} in line", u32::from(*.0))]
    Control(char),
    #[error("empty request: expected {REQUESTS}")]
    Empty,
    #[error("unknown request {0}: expected {REQUESTS}")]
    UnknownRequest(String),
    #[error("{0} needs a service name: {0} NAME")]
    MissingService(&'static str),
    #[error(
        "invalid service name {0}: use 1 to 32 of A-Z a-z 0-9 _ . -, starting with a letter or digit"
    )]
    InvalidService(String),
    #[error("cmd needs a command and a service name: cmd BRINGIN|BRINGOUT|FAILOVER NAME")]
    MissingCommand,
    #[error("unknown command {0}: expected BRINGIN, BRINGOUT or FAILOVER")]
    UnknownCommand(String),
    #[error("{request} takes one service name, found {extra} after it")]
    Trailing {
        request: &'static str,
        extra: String,
    },
    #[error("not a reply: {0}: expected ok or error MESSAGE")]
    UnknownReply(String),
}

/// Replaces control characters (tab included) with spaces, trims, and
/// shortens to at most `max` bytes (at a character boundary): a reason or
/// message that fits on one line.
pub fn clean_text(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
    {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out.trim_end().to_owned()
}

/// Cuts a byte stream into lines of at most [`MAX_LINE`] bytes, whatever
/// pieces it arrives in, holding at most one partial line (an over-long
/// line is dropped as it arrives and reported once its newline comes).
#[derive(Debug, Default)]
pub struct LineBuffer {
    buf: Vec<u8>,
    /// Inside a line already longer than [`MAX_LINE`].
    discarding: bool,
}

impl LineBuffer {
    pub fn new() -> LineBuffer {
        LineBuffer::default()
    }

    /// Adds received bytes; take the lines out with [`LineBuffer::next_line`]
    /// before adding more.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line, without its `\n`; `Err(TooLong)` for a line
    /// longer than [`MAX_LINE`]; `None` until more bytes arrive.
    pub fn next_line(&mut self) -> Option<Result<Vec<u8>, ParseError>> {
        match self.buf.iter().position(|&b| b == b'\n') {
            Some(end) => {
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                if std::mem::take(&mut self.discarding) || line.len() > MAX_LINE {
                    Some(Err(ParseError::TooLong))
                } else {
                    Some(Ok(line))
                }
            }
            None => {
                if self.buf.len() > MAX_LINE {
                    self.discarding = true;
                    self.buf.clear();
                }
                None
            }
        }
    }

    /// At the end of the stream: the last line if it lacked its newline.
    pub fn finish(&mut self) -> Option<Result<Vec<u8>, ParseError>> {
        if std::mem::take(&mut self.discarding) {
            self.buf.clear();
            return Some(Err(ParseError::TooLong));
        }
        if self.buf.is_empty() {
            return None;
        }
        self.buf.push(b'\n');
        self.next_line()
    }
}

/// The text of a line: bounded, UTF-8, no control character but tab, with
/// its line end and outer blanks removed.
fn check_text(line: &[u8]) -> Result<&str, ParseError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > MAX_LINE {
        return Err(ParseError::TooLong);
    }
    let text = std::str::from_utf8(line).map_err(|_| ParseError::NotUtf8)?;
    if let Some(c) = text.chars().find(|&c| c.is_control() && c != '\t') {
        return Err(ParseError::Control(c));
    }
    Ok(text.trim_matches(BLANK))
}

const BLANK: [char; 2] = [' ', '\t'];

/// The first word of `text` and the rest, both without outer blanks.
fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start_matches(BLANK);
    match text.find(BLANK) {
        Some(i) => (&text[..i], text[i..].trim_matches(BLANK)),
        None => (text, ""),
    }
}

/// The service name at the start of `rest`, checked.
fn service_word<'a>(rest: &'a str, request: &'static str) -> Result<(String, &'a str), ParseError> {
    let (name, rest) = split_word(rest);
    if name.is_empty() {
        return Err(ParseError::MissingService(request));
    }
    if !valid_name(name) {
        return Err(ParseError::InvalidService(quote(name)));
    }
    Ok((name.to_owned(), rest))
}

fn no_more(rest: &str, request: &'static str) -> Result<(), ParseError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(ParseError::Trailing {
            request,
            extra: quote(rest),
        })
    }
}

/// `"word"`, escaped, shortened to [`MAX_QUOTE`] characters.
fn quote(word: &str) -> String {
    let mut chars = word.chars();
    let head: String = chars.by_ref().take(MAX_QUOTE).collect();
    if chars.next().is_some() {
        format!("{head:?}...")
    } else {
        format!("{head:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Request, ParseError> {
        Request::parse(line.as_bytes())
    }

    fn service(name: &str) -> String {
        name.to_owned()
    }

    #[test]
    fn the_five_requests() {
        assert_eq!(
            parse("open www"),
            Ok(Request::Open {
                service: service("www")
            })
        );
        assert_eq!(
            parse("ok www\n"),
            Ok(Request::Ok {
                service: service("www")
            })
        );
        assert_eq!(
            parse("close db-1\r\n"),
            Ok(Request::Close {
                service: service("db-1")
            })
        );
        assert_eq!(
            parse("err www"),
            Ok(Request::Err {
                service: service("www"),
                reason: String::new()
            })
        );
        assert_eq!(
            parse("err www  ORA-03113: end-of-file  on channel \n"),
            Ok(Request::Err {
                service: service("www"),
                reason: "ORA-03113: end-of-file  on channel".into()
            })
        );
        for verb in Verb::ALL {
            assert_eq!(
                parse(&format!("cmd {verb} www")),
                Ok(Request::Cmd {
                    verb,
                    service: service("www")
                })
            );
        }
    }

    #[test]
    fn keywords_ignore_case_and_blanks_names_do_not() {
        assert_eq!(
            parse(" \tOK\t Www \t"),
            Ok(Request::Ok {
                service: service("Www")
            })
        );
        assert_eq!(
            parse("CMD failover www"),
            Ok(Request::Cmd {
                verb: Verb::Failover,
                service: service("www")
            })
        );
    }

    #[test]
    fn errors_say_what_is_expected() {
        let e = |line: &str| parse(line).unwrap_err().to_string();
        assert_eq!(e(""), "empty request: expected open, ok, err, close or cmd");
        assert_eq!(
            e("  \r\n"),
            "empty request: expected open, ok, err, close or cmd"
        );
        assert_eq!(
            e("hello www"),
            "unknown request \"hello\": expected open, ok, err, close or cmd"
        );
        assert_eq!(e("open"), "open needs a service name: open NAME");
        assert_eq!(e("err"), "err needs a service name: err NAME");
        assert_eq!(
            e("ok -www"),
            "invalid service name \"-www\": use 1 to 32 of A-Z a-z 0-9 _ . -, starting with a letter or digit"
        );
        assert_eq!(
            e("ok www now"),
            "ok takes one service name, found \"now\" after it"
        );
        assert_eq!(
            e("cmd"),
            "cmd needs a command and a service name: cmd BRINGIN|BRINGOUT|FAILOVER NAME"
        );
        assert_eq!(
            e("cmd START www"),
            "unknown command \"START\": expected BRINGIN, BRINGOUT or FAILOVER"
        );
        assert_eq!(
            e("cmd FAILOVER"),
            "cmd needs a command and a service name: cmd BRINGIN|BRINGOUT|FAILOVER NAME"
        );
        assert_eq!(e("ok w\u{1b}[2J"), "control character U+001B in line");
        assert_eq!(Request::parse(b"ok \xff"), Err(ParseError::NotUtf8));
        let long = format!("err www {}", "x".repeat(MAX_LINE));
        assert_eq!(parse(&long), Err(ParseError::TooLong));
    }

    #[test]
    fn bad_words_are_quoted_short_and_escaped() {
        let word = "é\"".repeat(100);
        let msg = parse(&format!("ok {word}")).unwrap_err().to_string();
        assert!(msg.starts_with("invalid service name \"é\\\"é"), "{msg}");
        assert!(msg.contains("\"..."), "{msg}");
        assert!(msg.len() < 200, "{msg}");
    }

    #[test]
    fn lines_are_written_as_parsed() {
        let r = Request::Cmd {
            verb: Verb::BringOut,
            service: service("db"),
        };
        assert_eq!(r.to_line(), "cmd BRINGOUT db\n");
        assert_eq!(r.to_string(), "cmd BRINGOUT db");
        let r = Request::Err {
            service: service("db"),
            reason: " disk\nfull \t".into(),
        };
        assert_eq!(r.to_line(), "err db disk full\n");
        let r = Request::Err {
            service: service("db"),
            reason: "é".repeat(MAX_LINE),
        };
        let line = r.to_line();
        assert!(line.len() <= MAX_LINE + 1, "{}", line.len());
        assert!(Request::parse(line.as_bytes()).is_ok());
    }

    #[test]
    fn replies() {
        assert_eq!(Reply::Ok.to_line(), "ok\n");
        assert_eq!(
            Reply::error("unknown service x").to_line(),
            "error unknown service x\n"
        );
        assert_eq!(Reply::error("two\nlines").to_line(), "error two lines\n");
        assert_eq!(Reply::parse(b"ok\n"), Ok(Reply::Ok));
        assert_eq!(
            Reply::parse(b"error unknown service x\r\n"),
            Ok(Reply::error("unknown service x"))
        );
        assert_eq!(Reply::parse(b"error"), Ok(Reply::error("")));
        assert!(Reply::parse(b"okay").is_err());
        assert!(Reply::parse(b"ok then").is_err());
    }

    #[test]
    fn line_buffer_cuts_and_bounds_lines() {
        let mut b = LineBuffer::new();
        b.push(b"ok a\nok");
        assert_eq!(b.next_line(), Some(Ok(b"ok a".to_vec())));
        assert_eq!(b.next_line(), None);
        b.push(b" b\n\n");
        assert_eq!(b.next_line(), Some(Ok(b"ok b".to_vec())));
        assert_eq!(b.next_line(), Some(Ok(Vec::new())));
        b.push(&[b'x'; MAX_LINE + 1]);
        assert_eq!(b.next_line(), None);
        assert!(b.buf.is_empty(), "an over-long line is not kept");
        b.push(b"xxx\nok c");
        assert_eq!(b.next_line(), Some(Err(ParseError::TooLong)));
        assert_eq!(b.next_line(), None);
        assert_eq!(b.finish(), Some(Ok(b"ok c".to_vec())));
        assert_eq!(b.finish(), None);
        b.push(&[b'x'; MAX_LINE]);
        assert_eq!(b.next_line(), None);
        b.push(b"\n");
        assert_eq!(
            b.next_line(),
            Some(Ok(vec![b'x'; MAX_LINE])),
            "MAX_LINE itself fits"
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn name() -> impl Strategy<Value = String> {
            "[A-Za-z0-9][A-Za-z0-9_.-]{0,31}"
        }

        fn request() -> impl Strategy<Value = Request> {
            prop_oneof![
                name().prop_map(|service| Request::Open { service }),
                name().prop_map(|service| Request::Ok { service }),
                name().prop_map(|service| Request::Close { service }),
                (name(), any::<String>())
                    .prop_map(|(service, reason)| Request::Err { service, reason }),
                (prop::sample::select(Verb::ALL.to_vec()), name())
                    .prop_map(|(verb, service)| Request::Cmd { verb, service }),
            ]
        }

        proptest! {
            #[test]
            fn any_bytes_parse_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..700)) {
                if let Err(e) = Request::parse(&bytes) {
                    let message = Reply::error(&e).to_line();
                    prop_assert!(message.len() <= MAX_LINE + 1);
                    prop_assert_eq!(message.matches('\n').count(), 1);
                }
                let _ = Reply::parse(&bytes);
            }

            #[test]
            fn text_lines_parse_or_fail_cleanly(line in "[ \\t]{0,2}(open|OK|err|close|cmd|FAILOVER)?[ \\t]{0,2}\\PC{0,40}") {
                let _ = Request::parse(line.as_bytes());
            }

            #[test]
            fn written_requests_parse_back(r in request()) {
                let back = Request::parse(r.to_line().as_bytes()).unwrap();
                let expected = match r {
                    Request::Err { service, reason } => Request::Err {
                        reason: clean_text(&reason, MAX_LINE),
                        service,
                    },
                    other => other,
                };
                // A reason that had to be shortened is a prefix of the cleaned one.
                match (&back, &expected) {
                    (Request::Err { reason: got, .. }, Request::Err { reason: want, .. }) => {
                        prop_assert!(want.starts_with(got.as_str()), "{:?} / {:?}", got, want);
                    }
                    _ => prop_assert_eq!(&back, &expected),
                }
                prop_assert!(r_len_ok(&back));
            }

            #[test]
            fn written_replies_parse_back(message in any::<String>()) {
                let line = Reply::error(&message).to_line();
                prop_assert!(line.len() <= MAX_LINE + 1);
                let back = Reply::parse(line.as_bytes()).unwrap();
                let cleaned = clean_text(&message, MAX_LINE);
                match back {
                    Reply::Error(got) => prop_assert!(cleaned.starts_with(&got)),
                    Reply::Ok => prop_assert!(false, "error read back as ok"),
                }
            }

            #[test]
            fn line_buffer_ignores_how_bytes_are_split(
                bytes in prop::collection::vec(prop_oneof![Just(b'\n'), Just(b'x'), any::<u8>()], 0..3000),
                cuts in prop::collection::vec(1usize..700, 1..20),
            ) {
                let whole = lines_of(&bytes, &[bytes.len().max(1)]);
                let pieces = lines_of(&bytes, &cuts);
                prop_assert_eq!(&whole, &pieces);
                // The reference: split at each newline.
                let mut parts: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
                if parts.last().is_some_and(|l| l.is_empty()) {
                    parts.pop();
                }
                let reference: Vec<Result<Vec<u8>, ParseError>> = parts
                    .into_iter()
                    .map(|l| if l.len() > MAX_LINE { Err(ParseError::TooLong) } else { Ok(l.to_vec()) })
                    .collect();
                prop_assert_eq!(whole, reference);
            }
        }

        fn r_len_ok(r: &Request) -> bool {
            r.to_line().len() <= MAX_LINE + 1
        }

        /// Feeds `bytes` in pieces of the sizes in `cuts` (cycled).
        fn lines_of(bytes: &[u8], cuts: &[usize]) -> Vec<Result<Vec<u8>, ParseError>> {
            let mut b = LineBuffer::new();
            let mut out = Vec::new();
            let mut rest = bytes;
            for &n in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (piece, tail) = rest.split_at(n.min(rest.len()));
                rest = tail;
                b.push(piece);
                while let Some(line) = b.next_line() {
                    out.push(line);
                }
                assert!(b.buf.len() <= MAX_LINE, "buffer bounded");
            }
            out.extend(b.finish());
            out
        }
    }
}
