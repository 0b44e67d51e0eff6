//! The daemons' local control socket server: a unix socket on which root,
//! or members of the configured control group, send one JSON request line
//! and read one JSON response line. The peer's credentials are checked with
//! SO_PEERCRED (and its supplementary groups from /proc), never trusted
//! from the request. Every command (refused ones too) goes to the daemon's
//! audit log with who sent it ([`crate::audit`]).

use crate::access::PeerCred;
use crate::audit::AuditLog;
use crate::ctl::{Request, Response};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// Longest accepted request line.
const MAX_REQUEST: u64 = 64 * 1024;
/// A client has this long to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A request for the daemon loop, with where to send the answer.
pub struct CtlCall {
    pub request: Request,
    /// Who asked (SO_PEERCRED), for the log; None for the daemon's own
    /// endpoints (metrics, the admin endpoint after its login).
    pub uid: Option<u32>,
    pub reply: oneshot::Sender<Response>,
}

/// Creates the control socket (replacing a stale one), mode 0660, group
/// `gid`.
pub fn bind(path: &Path, gid: Option<u32>) -> std::io::Result<UnixListener> {
    bind_socket(path, 0o660, gid)
}

/// The gid of the cluster's `control_group`, if it names one; an error
/// says what to fix when the group does not exist.
pub fn control_gid(config: &crate::config::ClusterConfig) -> Result<Option<u32>, String> {
    let Some(group) = &config.control_group else {
        return Ok(None);
    };
    let found = nix::unistd::Group::from_name(group)
        .map_err(|e| format!("cannot look up control_group {group:?}: {e}"))?
        .ok_or_else(|| {
            format!("control_group {group:?} does not exist; create it or remove the setting")
        })?;
    Ok(Some(found.gid.as_raw()))
}

/// Creates a unix socket (replacing a stale one, creating its directory)
/// with `mode`, and group `gid` when given.
pub fn bind_socket(path: &Path, mode: u32, gid: Option<u32>) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid))?;
    }
    Ok(listener)
}

/// Accepts clients until the daemon goes away; their commands go to
/// `audit`.
pub async fn serve(
    listener: UnixListener,
    gid: Option<u32>,
    calls: mpsc::Sender<CtlCall>,
    audit: AuditLog,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!("control socket accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (calls, audit) = (calls.clone(), audit.clone());
        tokio::spawn(async move {
            if let Err(e) = handle(stream, gid, calls, &audit).await {
                tracing::debug!("control client: {e}");
            }
        });
    }
}

async fn handle(
    mut stream: UnixStream,
    gid: Option<u32>,
    calls: mpsc::Sender<CtlCall>,
    audit: &AuditLog,
) -> std::io::Result<()> {
    let who = who(&stream);
    let audited = |request: &Request, response: &Response| {
        if let Err(e) = audit.command(&who, "local", request, response) {
            tracing::error!("{e}");
        }
    };
    let response = match authorize(&stream, gid) {
        Err(refusal) => {
            tracing::warn!("control socket: {refusal}");
            // Read the request line first: closing on a client still
            // writing it fails its write (EPIPE) or resets the connection,
            // and the client never sees why it was refused.
            let response = Response::Error { message: refusal };
            if let Ok(request) = read_request(&mut stream).await {
                audited(&request, &response);
            }
            response
        }
        Ok(uid) => match read_request(&mut stream).await {
            Err(message) => Response::Error { message },
            Ok(request) => {
                let audited_request = crate::audit::what(&request).map(|_| request.clone());
                let (reply, answer) = oneshot::channel();
                let call = CtlCall {
                    request,
                    uid: Some(uid),
                    reply,
                };
                if calls.send(call).await.is_err() {
                    return Ok(());
                }
                let response = answer.await.unwrap_or(Response::Error {
                    message: "the daemon is shutting down".into(),
                });
                if let Some(request) = audited_request {
                    audited(&request, &response);
                }
                response
            }
        },
    };
    let mut line = serde_json::to_vec(&response).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line).await?;
    stream.shutdown().await
}

async fn read_request(stream: &mut UnixStream) -> Result<Request, String> {
    let mut line = String::new();
    let mut reader = BufReader::new(stream.take(MAX_REQUEST));
    match tokio::time::timeout(READ_TIMEOUT, reader.read_line(&mut line)).await {
        Err(_) => return Err("no request within 5 s".into()),
        Ok(Err(e)) => return Err(format!("cannot read request: {e}")),
        Ok(Ok(_)) => {}
    }
    serde_json::from_str(line.trim()).map_err(|e| format!("bad request: {e}"))
}

/// Who is at the other end, for the audit log: `USER (uid N)` from
/// SO_PEERCRED (`uid N` when the user has no name, `unknown` when the
/// credentials cannot be read).
fn who(stream: &UnixStream) -> String {
    let Ok(cred) = stream.peer_cred() else {
        return "unknown".into();
    };
    let uid = cred.uid();
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => format!("{} (uid {uid})", user.name),
        _ => format!("uid {uid}"),
    }
}

/// Root is always allowed; others only as members of the control group.
/// Returns the caller's uid.
fn authorize(stream: &UnixStream, gid: Option<u32>) -> Result<u32, String> {
    let cred = stream
        .peer_cred()
        .map_err(|e| format!("cannot read peer credentials: {e}"))?;
    let pid = cred.pid();
    let peer = PeerCred {
        uid: cred.uid(),
        gid: cred.gid(),
        pid,
    };
    if peer.root_or_member(gid) {
        return Ok(cred.uid());
    }
    Err(format!(
        "permission denied for uid {} (pid {pid:?}): run as root or as a member of the cluster's control_group",
        cred.uid()
    ))
}
