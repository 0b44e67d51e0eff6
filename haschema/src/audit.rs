//! The audit log of admin actions, shared by both daemons: every command
//! (anything but a read: status, service list, history, config list and
//! get) that reaches a daemon on its local control socket (`hactl`) or on
//! hamond's admin endpoint (`hactl --remote`, the GUI), and every login on
//! that endpoint, is appended to `audit.log` in the daemon's state
//! directory as one JSON line:
//!
//! ```json
//! {"time":"2026-11-23T02:40:00.123Z","who":"admin","from":"192.0.2.9:50102",
//!  "what":{"cmd":"service","op":"bring_in","service":"www"},"result":"ok"}
//! ```
//!
//! * `time`: RFC 3339, UTC, milliseconds.
//! * `who`: `admin` on the endpoint, the peer's user and uid (SO_PEERCRED)
//!   on the control socket.
//! * `from`: the client's address, or `local`.
//! * `what`: the request as sent, with every secret replaced ([`redact`]):
//!   a password by its length only, a file's content (or a hash) by its
//!   length and SHA-256; nothing secret is ever written.
//! * `result`: `ok`, `refused: WHY` (the daemon answered with an error) or
//!   `error: WHY` (it could not answer).
//!
//! The file is mode 0600 and bounded: a line that would take it past
//! [`MAX_SIZE`] first moves it to `audit.log.1` (replacing the older one).
//! Lines are appended whole (`O_APPEND`) under an exclusive lock of the
//! file, so hamond and hasvrd may share a state directory and its log.

use crate::ctl::{Request, Response};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// The log's file name in a state directory.
pub const FILE: &str = "audit.log";
/// Where a full log goes (one generation is kept).
pub const ROTATED: &str = "audit.log.1";
/// Size at which the log is rotated.
pub const MAX_SIZE: u64 = 1024 * 1024;

/// Fields whose string value is a secret: written as its length only.
const SECRETS: [&str; 4] = ["password", "passphrase", "secret", "key"];
/// Fields whose string value is a file's content: written as its length
/// and SHA-256.
const CONTENTS: [&str; 3] = ["content", "hash", "data"];

/// One process writes its log a line at a time (every [`AuditLog`] of the
/// process shares this), so a rotation never splits a line.
static WRITING: Mutex<()> = Mutex::new(());

/// A daemon's audit log.
#[derive(Clone, Debug)]
pub struct AuditLog {
    path: PathBuf,
}

/// One line.
#[derive(Serialize)]
struct Entry<'a> {
    time: String,
    who: &'a str,
    from: &'a str,
    what: Value,
    result: &'a str,
}

impl AuditLog {
    /// The log in `state_dir` ([`FILE`]).
    pub fn in_dir(state_dir: &Path) -> AuditLog {
        AuditLog {
            path: state_dir.join(FILE),
        }
    }

    /// Where the log is written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records `request`, asked by `who` from `from` and answered with
    /// `response`, unless it only reads.
    pub fn command(
        &self,
        who: &str,
        from: &str,
        request: &Request,
        response: &Response,
    ) -> Result<(), String> {
        match what(request) {
            Some(what) => self.append(who, from, what, &result(response)),
            None => Ok(()),
        }
    }

    /// Records a login on the admin endpoint from `from`, with its
    /// `result` (`ok`, `refused: ...`, `error: ...`).
    pub fn login(&self, from: &str, result: &str) -> Result<(), String> {
        let what = serde_json::json!({ "cmd": "login" });
        self.append("admin", from, what, result)
    }

    /// Appends one line (rotating first when it would pass [`MAX_SIZE`]).
    /// The error says what to fix; the action itself is not undone.
    pub fn append(&self, who: &str, from: &str, what: Value, result: &str) -> Result<(), String> {
        let entry = Entry {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            who,
            from,
            what,
            result,
        };
        let mut line = serde_json::to_vec(&entry).map_err(|e| self.failed(&e))?;
        line.push(b'\n');
        let _writing = WRITING.lock().unwrap_or_else(|p| p.into_inner());
        let mut file = self.open()?;
        // The other daemon may append or rotate at the same time: its
        // check and rename happen under this lock too.
        file.lock().map_err(|e| self.failed(&e))?;
        let size = file.metadata().map_err(|e| self.failed(&e))?.len();
        if size > 0 && size + line.len() as u64 > MAX_SIZE {
            // hamond and hasvrd may share a state directory: rotate only
            // the file this process found full, not one the other just
            // started.
            let same = std::fs::metadata(&self.path).is_ok_and(|now| {
                file.metadata()
                    .is_ok_and(|open| (now.dev(), now.ino()) == (open.dev(), open.ino()))
            });
            if same {
                let rotated = self.path.with_file_name(ROTATED);
                std::fs::rename(&self.path, rotated).map_err(|e| self.failed(&e))?;
            }
            file = self.open()?;
            file.lock().map_err(|e| self.failed(&e))?;
        }
        file.write_all(&line).map_err(|e| self.failed(&e))
    }

    /// Opens the log for appending, creating it (and the state directory,
    /// which a daemon may not have written to yet).
    fn open(&self) -> Result<std::fs::File, String> {
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&self.path)
        };
        match open() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = self.path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| self.failed(&e))?;
                }
                open()
            }
            opened => opened,
        }
        .map_err(|e| self.failed(&e))
    }

    fn failed(&self, e: &dyn std::fmt::Display) -> String {
        format!(
            "cannot write the audit log {}: {e}; make the daemon's state directory writable \
             (the action itself went ahead)",
            self.path.display()
        )
    }
}

/// The request as the log writes it, secrets replaced; None for a read,
/// which is not logged. A request kind added later is logged by default.
pub fn what(request: &Request) -> Option<Value> {
    let read = matches!(
        request,
        Request::Status
            | Request::Services
            | Request::History { .. }
            | Request::ConfigList
            | Request::ConfigGet { .. }
    );
    if read {
        return None;
    }
    let value = serde_json::to_value(request).unwrap_or_else(|e| Value::String(e.to_string()));
    Some(redact(value))
}

/// `result` for a response: `ok`, or `refused: WHY` for an error.
pub fn result(response: &Response) -> String {
    match response {
        Response::Error { message } => format!("refused: {message}"),
        _ => "ok".into(),
    }
}

/// Replaces, at any depth, the string value of a secret field by its
/// length, and of a content field by its length and SHA-256.
pub fn redact(value: Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(name, v)| {
                    let field = name.to_ascii_lowercase();
                    let v = match v {
                        Value::String(s) if SECRETS.iter().any(|k| field.contains(k)) => {
                            Value::String(format!("(secret, {} bytes)", s.len()))
                        }
                        Value::String(s) if CONTENTS.contains(&field.as_str()) => {
                            let sum = Sha256::digest(s.as_bytes());
                            let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
                            Value::String(format!("({} bytes, sha256 {hex})", s.len()))
                        }
                        other => redact(other),
                    };
                    (name, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::ServiceOp;

    fn scratch() -> tempfile::TempDir {
        tempfile::tempdir().expect("a temporary directory")
    }

    fn lines(path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn a_command_is_one_json_line_with_who_where_what_and_result() {
        let dir = scratch();
        let log = AuditLog::in_dir(&dir.path().join("state"));
        let request = Request::Service {
            op: ServiceOp::BringIn,
            service: "www".into(),
            node: None,
        };
        let done = Response::Done {
            message: "bring_in on alpha".into(),
        };
        log.command("admin", "192.0.2.9:50102", &request, &done)
            .unwrap();
        let refused = Response::Error {
            message: "no service www".into(),
        };
        log.command("root (uid 0)", "local", &request, &refused)
            .unwrap();
        log.command("admin", "192.0.2.9:50102", &Request::Status, &done)
            .unwrap();
        let got = lines(log.path());
        assert_eq!(got.len(), 2, "reads are not logged: {got:?}");
        assert_eq!(got[0]["who"], "admin");
        assert_eq!(got[0]["from"], "192.0.2.9:50102");
        assert_eq!(got[0]["what"]["cmd"], "service");
        assert_eq!(got[0]["what"]["service"], "www");
        assert_eq!(got[0]["result"], "ok");
        assert_eq!(got[1]["result"], "refused: no service www");
        let time = got[0]["time"].as_str().unwrap();
        assert!(humantime::parse_rfc3339(time).is_ok(), "{time}");
        assert!(time.ends_with('Z') && time.len() == 24, "UTC, ms: {time}");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(log.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn secrets_and_contents_never_reach_the_log() {
        let dir = scratch();
        let log = AuditLog::in_dir(dir.path());
        let put = Request::ConfigPut {
            name: "services/www.toml".into(),
            base: None,
            content: Some("name = \"www\"\n".into()),
            force_local: false,
        };
        log.command(
            "admin",
            "local",
            &put,
            &Response::Done { message: "".into() },
        )
        .unwrap();
        let what = serde_json::json!({
            "cmd": "passwd",
            "password": "hunter2hunter2",
            "nested": [{ "new_password": "s3cret!" }],
        });
        log.append("root (uid 0)", "local", redact(what), "ok")
            .unwrap();
        let text = std::fs::read_to_string(log.path()).unwrap();
        for secret in ["hunter2hunter2", "s3cret!", "name = "] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let got = lines(log.path());
        let sum: String = Sha256::digest(b"name = \"www\"\n")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            got[0]["what"]["content"],
            format!("(13 bytes, sha256 {sum})")
        );
        assert_eq!(got[0]["what"]["name"], "services/www.toml");
        assert_eq!(got[1]["what"]["password"], "(secret, 14 bytes)");
        assert_eq!(
            got[1]["what"]["nested"][0]["new_password"],
            "(secret, 7 bytes)"
        );
    }

    #[test]
    fn a_full_log_is_rotated_and_one_generation_kept() {
        let dir = scratch();
        let log = AuditLog::in_dir(dir.path());
        let from = "x".repeat(1000);
        let mut written = 0;
        // Twice the limit: rotated twice, the first generation dropped.
        while written < 2 * MAX_SIZE + 2000 {
            log.login(&from, "refused: wrong password").unwrap();
            written += 1000;
            assert!(std::fs::metadata(log.path()).unwrap().len() <= MAX_SIZE);
        }
        let rotated = dir.path().join(ROTATED);
        let old = std::fs::metadata(&rotated).unwrap().len();
        assert!(old <= MAX_SIZE && old > MAX_SIZE - 2000, "{old}");
        for path in [log.path(), rotated.as_path()] {
            assert!(lines(path).iter().all(|l| l["what"]["cmd"] == "login"));
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn an_unwritable_log_is_an_error_that_says_what_to_do() {
        let dir = scratch();
        let file = dir.path().join("file");
        std::fs::write(&file, "not a directory").unwrap();
        let log = AuditLog::in_dir(&file.join("state"));
        let e = log.login("local", "ok").unwrap_err();
        assert!(
            e.contains("make the daemon's state directory writable"),
            "{e}"
        );
    }
}
