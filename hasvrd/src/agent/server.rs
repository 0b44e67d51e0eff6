//! The agent socket: a tokio unix listener that reads request lines from
//! any number of clients, checks who they are with SO_PEERCRED, and hands
//! each request to the one task that owns the [`Watch`] (and runs its
//! timer), which answers it and emits the [`Event`]s the daemon reads from
//! [`Agents::next_event`].

use super::watch::{Client, Event, Watch, WatchParams};
use haschema::access::PeerCred;
use haschema::agent::{LineBuffer, Reply, Request};
use std::io;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Connections at once from processes other than root's; root's are never
/// refused, so a local user cannot crowd out the agents.
pub const MAX_USER_CLIENTS: usize = 128;

/// Events not yet read by the daemon before the watch waits for it.
const EVENT_QUEUE: usize = 256;

/// Requests waiting for the watch task.
const CALL_QUEUE: usize = 256;

/// A refused client gets this long to finish sending before the close.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// How long to wait after a failed accept (out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The running agent socket. Dropping it stops the listener, every client
/// connection and the watch, and removes the socket file.
#[derive(Debug)]
pub struct Agents {
    path: PathBuf,
    inputs: mpsc::UnboundedSender<Input>,
    events: mpsc::Receiver<Event>,
    accept: JoinHandle<()>,
    driver: JoinHandle<()>,
}

/// What the daemon tells the watch, besides requests (`Set`: after a
/// reload, a service's heartbeat timing, or None to forget it).
#[derive(Debug)]
enum Input {
    Exited { service: String, how: String },
    Disarm { service: String },
    Set(String, Option<WatchParams>),
}

/// A request for the watch task, with where to send the reply.
struct Call {
    client: Client,
    request: Request,
    reply: oneshot::Sender<Reply>,
}

impl Agents {
    /// Binds the socket at `path` (mode 0666: any local process may send
    /// heartbeats; `cmd` is checked per request) and starts serving it,
    /// with `watch` over the known services. `admin_gid`: the group whose
    /// members, besides root, may send `cmd`. Must run inside a tokio
    /// runtime.
    pub fn start(path: &Path, admin_gid: Option<u32>, watch: Watch) -> io::Result<Agents> {
        let listener = bind(path)?;
        let (calls_tx, calls) = mpsc::channel(CALL_QUEUE);
        let (inputs, inputs_rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let driver = tokio::spawn(drive(watch, calls, inputs_rx, events_tx));
        let accept = tokio::spawn(accept_loop(listener, admin_gid, calls_tx));
        Ok(Agents {
            path: path.to_path_buf(),
            inputs,
            events,
            accept,
            driver,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next event to act on; None once the watch has stopped. Keep
    /// reading: once the daemon leaves a few hundred events unread, the
    /// watch waits for it, and so do the agents' replies.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// The agent process started for `service` exited (`how`: its exit
    /// status, for the log).
    pub fn agent_exited(&self, service: &str, how: impl Into<String>) {
        let _ = self.inputs.send(Input::Exited {
            service: service.to_owned(),
            how: how.into(),
        });
    }

    /// The service files were reloaded: watch `service` with `params`, or
    /// forget it (see [`Watch::set_service`]).
    pub fn set_service(&self, service: &str, params: Option<WatchParams>) {
        let _ = self.inputs.send(Input::Set(service.to_owned(), params));
    }

    /// The daemon is stopping `service`: stop expecting its heartbeats (see
    /// [`Watch::disarm`]).
    pub fn disarm(&self, service: &str) {
        let _ = self.inputs.send(Input::Disarm {
            service: service.to_owned(),
        });
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        self.accept.abort();
        self.driver.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Creates the socket: the directory if missing, replacing a stale socket
/// (but neither a live one nor anything that is not a socket), mode 0666.
fn bind(path: &Path) -> io::Result<UnixListener> {
    let context = |what: &str, e: io::Error| {
        io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| context("cannot create the directory of", e))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket: not replacing it",
                    path.display()
                ),
            ));
        }
        Ok(_) => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use: is another hasvrd running?", path.display()),
                ));
            }
            std::fs::remove_file(path).map_err(|e| context("cannot remove the stale socket", e))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(context("cannot inspect", e)),
    }
    let listener = UnixListener::bind(path).map_err(|e| context("cannot bind", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .map_err(|e| context("cannot set the mode of", e))?;
    Ok(listener)
}

/// The task that owns the watch: requests, daemon inputs and the timer.
async fn drive(
    mut watch: Watch,
    mut calls: mpsc::Receiver<Call>,
    mut inputs: mpsc::UnboundedReceiver<Input>,
    events: mpsc::Sender<Event>,
) {
    let origin = Instant::now();
    loop {
        let deadline = watch.next_deadline();
        let timer = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(origin + d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            call = calls.recv() => {
                let Some(Call { client, request, reply }) = call else { return };
                let answer = watch.handle(origin.elapsed(), &client, &request);
                log_reply(&client, &request, &answer);
                let _ = reply.send(answer);
            }
            input = inputs.recv() => match input {
                Some(Input::Exited { service, how }) => watch.agent_exited(&service, &how),
                Some(Input::Disarm { service }) => watch.disarm(&service),
                Some(Input::Set(service, params)) => watch.set_service(&service, params),
                None => return,
            },
            () = timer => watch.handle_timeout(origin.elapsed()),
        }
        while let Some(event) = watch.poll_event() {
            log_event(&event);
            if events.send(event).await.is_err() {
                return;
            }
        }
    }
}

fn log_reply(client: &Client, request: &Request, reply: &Reply) {
    match reply {
        Reply::Error(message) if matches!(request, Request::Cmd { .. }) => tracing::warn!(
            "agent socket: uid {} pid {:?}: {request}: {message}",
            client.uid,
            client.pid
        ),
        Reply::Error(message) => tracing::debug!(
            "agent socket: uid {} pid {:?}: {request}: {message}",
            client.uid,
            client.pid
        ),
        Reply::Ok => tracing::trace!(
            "agent socket: uid {} pid {:?}: {request}",
            client.uid,
            client.pid
        ),
    }
}

fn log_event(event: &Event) {
    match event {
        Event::AgentOpened { service, uid, pid } => {
            tracing::info!("service {service}: agent opened (uid {uid}, pid {pid:?})")
        }
        Event::AgentClosed { service, uid, pid } => {
            tracing::info!("service {service}: agent closed (uid {uid}, pid {pid:?})")
        }
        Event::AgentFailed { service, cause } => {
            tracing::warn!("service {service}: agent failure: {cause}")
        }
        Event::Command {
            verb,
            service,
            requested_by,
        } => tracing::info!(
            "service {service}: {verb} requested through the agent API by uid {requested_by}"
        ),
        Event::CheckLate { service, late } => tracing::warn!(
            "service {service}: heartbeat check ran {late:?} late (hasvrd was not scheduled): giving its agent a new window"
        ),
    }
}

/// Accepts clients until aborted; the connections end with it.
async fn accept_loop(listener: UnixListener, admin_gid: Option<u32>, calls: mpsc::Sender<Call>) {
    let user_slots = Arc::new(Semaphore::new(MAX_USER_CLIENTS));
    let mut clients = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let calls = calls.clone();
                    let slots = user_slots.clone();
                    clients.spawn(async move {
                        if let Err(e) = serve_client(stream, admin_gid, slots, calls).await {
                            tracing::debug!("agent socket client: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("agent socket: accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = clients.join_next(), if !clients.is_empty() => {}
        }
    }
}

/// One connection: request lines in, reply lines out, until the client
/// closes it.
async fn serve_client(
    mut stream: UnixStream,
    admin_gid: Option<u32>,
    user_slots: Arc<Semaphore>,
    calls: mpsc::Sender<Call>,
) -> io::Result<()> {
    let cred = match stream.peer_cred() {
        Ok(cred) => cred,
        Err(e) => return refuse(stream, &format!("cannot read peer credentials: {e}")).await,
    };
    let peer = PeerCred {
        uid: cred.uid(),
        gid: cred.gid(),
        pid: cred.pid(),
    };
    let _slot = if peer.is_root() {
        None
    } else {
        match user_slots.try_acquire_owned() {
            Ok(slot) => Some(slot),
            Err(_) => {
                tracing::warn!(
                    "agent socket: refusing uid {} pid {:?}: {MAX_USER_CLIENTS} non-root clients connected",
                    peer.uid,
                    peer.pid
                );
                return refuse(stream, "too many agent connections; try again later").await;
            }
        }
    };
    let client = Client {
        uid: peer.uid,
        pid: peer.pid,
        admin: peer.root_or_member(admin_gid),
    };
    let mut lines = LineBuffer::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        lines.push(&buf[..n]);
        loop {
            let line = if n == 0 {
                lines.finish()
            } else {
                lines.next_line()
            };
            let Some(line) = line else { break };
            let reply = match line.and_then(|l| Request::parse(&l)) {
                Err(e) => Reply::error(e),
                Ok(request) => ask(&calls, client, request).await,
            };
            stream.write_all(reply.to_line().as_bytes()).await?;
        }
        if n == 0 {
            return Ok(());
        }
    }
}

/// Hands a request to the watch task and waits for its reply.
async fn ask(calls: &mpsc::Sender<Call>, client: Client, request: Request) -> Reply {
    let (reply, answer) = oneshot::channel();
    let call = Call {
        client,
        request,
        reply,
    };
    if calls.send(call).await.is_err() {
        return Reply::error("hasvrd is shutting down");
    }
    answer
        .await
        .unwrap_or_else(|_| Reply::error("hasvrd is shutting down"))
}

/// Answers `message` and closes, after giving the client a moment to
/// finish writing: closing on unread data resets the connection, and the
/// client would not see why.
async fn refuse(mut stream: UnixStream, message: &str) -> io::Result<()> {
    stream
        .write_all(Reply::error(message).to_line().as_bytes())
        .await?;
    stream.shutdown().await?;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    Ok(())
}
