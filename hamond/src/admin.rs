//! The remote admin endpoint (`[admin] listen` in the cluster config): TLS
//! (rustls, a self-signed certificate made on first start, see [`tls`])
//! carrying the local control socket's JSON lines, after a login.
//!
//! A client first sends `{"cmd":"login","password":"..."}`
//! ([`haschema::ctl::Login`]); nothing else is served before a successful
//! login on that connection, and anything else first closes it. The
//! password is checked against the argon2id hash in `[admin]
//! password_file` ([`password`], written by `hactl passwd`, read at each
//! login). A failed login is answered after [`FAIL_DELAY`], logged with its
//! source, and counted per source address ([`limiter`]): 5 in a row lock
//! the address out for 60 s. A successful login is logged too. Then each
//! [`Request`] line gets one [`Response`] line, asked of the daemon loop
//! over the same channel as the control socket, or, for the service
//! requests, of this node's hasvrd on its control socket ([`hasvrd`]), so
//! the answers are the local ones. Every command (anything but a status
//! read) is logged at info with who (`admin`), from where, what and the
//! result, and written with every login to the audit log in hamond's state
//! directory ([`haschema::audit`]). [`client`] is the other end, for
//! `hactl --remote` and the GUI.

pub mod client;
pub mod hasvrd;
pub mod limiter;
pub mod password;
pub mod tls;

use haschema::audit::AuditLog;
use haschema::ctl::{Login, LoginResponse, Request, Response};
use haschema::ctl_server::CtlCall;
use limiter::{Limiter, Refused};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsAcceptor;

/// A failed login is answered this late.
pub const FAIL_DELAY: Duration = Duration::from_secs(1);
/// A client has this long for the TLS handshake and its login line.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);
/// A logged-in connection idle this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// A client has this long to take an answer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The daemon loop has this long to answer a request.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest accepted line.
const MAX_LINE: u64 = 64 * 1024;
/// Connections served at once; more wait in the listen backlog.
const MAX_CLIENTS: usize = 16;
/// Time between attempts to bind the address after a failure.
const BIND_RETRY: Duration = Duration::from_secs(30);

/// What the endpoint needs to start.
#[derive(Clone, Debug)]
pub struct Setup {
    pub listen: SocketAddr,
    /// The admin password's hash file.
    pub password_file: PathBuf,
    /// Where the certificate and key are kept (hamond's state dir).
    pub state_dir: PathBuf,
    /// hasvrd's control socket, where the service requests go.
    pub service_socket: PathBuf,
}

/// Serves the admin endpoint until the runtime stops. Without a usable
/// certificate it logs why and serves nothing; a failure to bind is logged
/// and retried every [`BIND_RETRY`]. Neither stops the daemon.
pub async fn serve(setup: Setup, calls: mpsc::Sender<CtlCall>) {
    let id = match tls::load_or_create(&setup.state_dir) {
        Ok(id) => id,
        Err(e) => {
            tracing::error!("admin: {e}; hamond runs on without the admin endpoint");
            return;
        }
    };
    if id.created {
        tracing::info!(
            "admin: made a new TLS certificate in {}",
            setup.state_dir.join(tls::CERT_FILE).display()
        );
    }
    let config = match tls::server_config(&id) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!("admin: {e}; hamond runs on without the admin endpoint");
            return;
        }
    };
    let mut last_error: Option<String> = None;
    let listener = loop {
        match TcpListener::bind(setup.listen).await {
            Ok(listener) => break listener,
            Err(e) => {
                let error = e.to_string();
                if last_error.as_ref() != Some(&error) {
                    tracing::error!(
                        "admin: cannot listen on {}: {error}; hamond runs on without the admin \
                         endpoint and retries every {} s (check [admin] listen in the cluster config)",
                        setup.listen,
                        BIND_RETRY.as_secs()
                    );
                    last_error = Some(error);
                }
                tokio::time::sleep(BIND_RETRY).await;
            }
        }
    };
    tracing::info!(
        "admin: serving on {} (TLS, certificate SHA-256 {})",
        setup.listen,
        id.fingerprint()
    );
    let server = Server {
        acceptor: TlsAcceptor::from(config),
        password_file: setup.password_file,
        service_socket: setup.service_socket,
        limiter: Mutex::new(Limiter::new()),
        audit: AuditLog::in_dir(&setup.state_dir),
    };
    serve_on(listener, Arc::new(server), calls).await;
}

/// What every connection shares.
struct Server {
    acceptor: TlsAcceptor,
    password_file: PathBuf,
    service_socket: PathBuf,
    limiter: Mutex<Limiter>,
    audit: AuditLog,
}

impl Server {
    fn limiter(&self) -> std::sync::MutexGuard<'_, Limiter> {
        self.limiter.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes a line of the audit log; a failure is logged.
    fn record(&self, written: Result<(), String>) {
        if let Err(e) = written {
            tracing::error!("admin: {e}");
        }
    }
}

/// Accepts clients on a bound listener, [`MAX_CLIENTS`] at a time.
async fn serve_on(listener: TcpListener, server: Arc<Server>, calls: mpsc::Sender<CtlCall>) {
    crate::accept::serve(listener, MAX_CLIENTS, "admin", move |stream, peer| {
        let (server, calls) = (Arc::clone(&server), calls.clone());
        async move { handle(stream, peer, &server, &calls).await }
    })
    .await;
}

type Tls = BufReader<tokio_rustls::server::TlsStream<TcpStream>>;

/// Serves one connection: handshake, login, then requests.
async fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    server: &Server,
    calls: &mpsc::Sender<CtlCall>,
) -> std::io::Result<()> {
    let tls = tokio::time::timeout(LOGIN_TIMEOUT, server.acceptor.accept(stream))
        .await
        .map_err(|_| std::io::Error::other("no TLS handshake within 10 s"))??;
    let mut conn = BufReader::new(tls);
    let Some(line) = read_line(&mut conn, LOGIN_TIMEOUT).await? else {
        return Ok(());
    };
    let answer = match serde_json::from_str::<Login>(&line) {
        Ok(Login::Login { password }) => login(server, peer, password).await,
        Err(_) => {
            tracing::warn!("admin: {peer} sent a request before logging in; closed");
            Err(r#"log in first: send {"cmd":"login","password":"..."}"#.to_owned())
        }
    };
    let result = match &answer {
        Ok(()) => "ok".to_owned(),
        Err(message) => format!("refused: {message}"),
    };
    server.record(server.audit.login(&peer.to_string(), &result));
    let logged_in = answer.is_ok();
    let answer = match answer {
        Ok(()) => LoginResponse::LoggedIn,
        Err(message) => LoginResponse::Error { message },
    };
    send(&mut conn, &answer).await?;
    if !logged_in {
        return conn.get_mut().shutdown().await;
    }
    while let Some(line) = read_line(&mut conn, IDLE_TIMEOUT).await? {
        let response = match serde_json::from_str::<Request>(&line) {
            Ok(request) => serve_request(server, calls, peer, request).await,
            Err(_) if serde_json::from_str::<Login>(&line).is_ok() => Response::Error {
                message: "already logged in".into(),
            },
            Err(e) => Response::Error {
                message: format!("bad request: {e}"),
            },
        };
        send(&mut conn, &response).await?;
    }
    Ok(())
}

/// Checks a login from `peer`: the lockout, then the password. Err: what
/// to tell the client.
async fn login(server: &Server, peer: SocketAddr, password: String) -> Result<(), String> {
    let ip = peer.ip();
    match server.limiter().begin(ip, Instant::now()) {
        Ok(()) => {}
        Err(Refused::LockedOut(left)) => {
            tracing::warn!(
                "admin: login from {peer} refused: locked out for {} s more",
                secs(left)
            );
            return Err(format!(
                "too many failed logins, try again in {} s",
                secs(left)
            ));
        }
        Err(Refused::Busy) => {
            tracing::warn!("admin: login from {peer} refused: too many logins from it at once");
            return Err(
                "too many logins from your address at once, try again in a few seconds".into(),
            );
        }
    }
    let file = server.password_file.clone();
    let checked = tokio::task::spawn_blocking(move || {
        password::load(&file).map(|phc| phc.map(|phc| password::verify(&phc, &password)))
    })
    .await
    .unwrap_or_else(|e| Err(format!("password check failed: {e}")));
    match checked {
        Ok(Some(true)) => {
            server.limiter().succeeded(ip, Instant::now());
            tracing::info!("admin: login from {peer}");
            Ok(())
        }
        Ok(Some(false)) => {
            let failure = server.limiter().failed(ip, Instant::now());
            let lock = match failure.locked_for {
                Some(d) => {
                    tracing::warn!(
                        "admin: failed login from {peer}; {} failures in a row, locked out for {} s",
                        limiter::MAX_FAILURES,
                        d.as_secs()
                    );
                    format!("; too many failed logins, try again in {} s", d.as_secs())
                }
                None => {
                    tracing::warn!(
                        "admin: failed login from {peer} ({} of {} before a lockout)",
                        failure.count,
                        limiter::MAX_FAILURES
                    );
                    String::new()
                }
            };
            tokio::time::sleep(FAIL_DELAY).await;
            Err(format!("wrong password{lock}"))
        }
        Ok(None) => {
            server.limiter().abandoned(ip, Instant::now());
            tracing::warn!(
                "admin: login from {peer} refused: no admin password is set ({} does not exist); \
                 set one with `hactl passwd`",
                server.password_file.display()
            );
            Err("no admin password is set on this node; set one there with `hactl passwd` (as root)".into())
        }
        Err(e) => {
            server.limiter().abandoned(ip, Instant::now());
            tracing::error!("admin: login from {peer} refused: {e}");
            Err("the admin password file is unusable; see hamond's log on this node".into())
        }
    }
}

/// Whole seconds, rounded up (never "0 s" while locked).
fn secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).try_into().unwrap_or(u64::MAX)
}

/// Answers one logged-in request: service requests by hasvrd, the others
/// by the daemon loop. Commands are logged with their result.
async fn serve_request(
    server: &Server,
    calls: &mpsc::Sender<CtlCall>,
    peer: SocketAddr,
    request: Request,
) -> Response {
    let what = describe(&request);
    let audited = haschema::audit::what(&request);
    let response = if hasvrd::serves(&request) {
        hasvrd::ask(&server.service_socket, &request).await
    } else {
        ask(calls, request).await
    };
    match (&what, &response) {
        (None, _) => tracing::debug!("admin: status read by admin from {peer}"),
        (Some(what), Response::Error { message }) => {
            tracing::info!("admin: {what} by admin from {peer} refused: {message}")
        }
        (Some(what), Response::Done { message }) => {
            tracing::info!("admin: {what} by admin from {peer}: done: {message}")
        }
        (Some(what), _) => tracing::info!("admin: {what} by admin from {peer}: answered"),
    }
    if let Some(audited) = audited {
        let result = haschema::audit::result(&response);
        let from = peer.to_string();
        server.record(server.audit.append("admin", &from, audited, &result));
    }
    response
}

/// A command as the log names it; None for a status read.
fn describe(request: &Request) -> Option<String> {
    match request {
        Request::Status | Request::Services | Request::History { .. } => None,
        Request::AlertTest => Some("alert test".into()),
        Request::FenceConfirm { node } => Some(format!("fence confirm {node}")),
        Request::FenceTest { device } => Some(format!(
            "fence test {}",
            device.as_deref().unwrap_or("(every device)")
        )),
        Request::Service { op, service, node } => Some(format!(
            "service {} {service}{}",
            op.as_str(),
            node.as_deref().map(|n| format!(" {n}")).unwrap_or_default()
        )),
        Request::NodeStandby { on } => {
            Some(format!("node standby {}", if *on { "on" } else { "off" }))
        }
        Request::ConfigList | Request::ConfigGet { .. } | Request::Nics { .. } => None,
        Request::ConfigPut { name, content, .. } => Some(format!(
            "config {} {name}",
            if content.is_some() { "put" } else { "remove" }
        )),
    }
}

/// Asks the daemon loop, as the control socket does.
async fn ask(calls: &mpsc::Sender<CtlCall>, request: Request) -> Response {
    let gone = || Response::Error {
        message: "hamond is shutting down".into(),
    };
    let (reply, answer) = oneshot::channel();
    let call = CtlCall {
        request,
        uid: None,
        reply,
    };
    if calls.send(call).await.is_err() {
        return gone();
    }
    match tokio::time::timeout(CALL_TIMEOUT, answer).await {
        Ok(Ok(response)) => response,
        Ok(Err(_)) => gone(),
        Err(_) => Response::Error {
            message: "the daemon loop did not answer within 10 s".into(),
        },
    }
}

/// One line, without its end; None at the end of the stream.
async fn read_line(conn: &mut Tls, timeout: Duration) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    let mut limited = (&mut *conn).take(MAX_LINE);
    let n = tokio::time::timeout(timeout, limited.read_line(&mut line))
        .await
        .map_err(|_| std::io::Error::other("client idle, closed"))??;
    if n == 0 {
        return Ok(None);
    }
    if !line.ends_with('\n') && n as u64 == MAX_LINE {
        return Err(std::io::Error::other("line too long"));
    }
    Ok(Some(line.trim_end().to_owned()))
}

/// Writes one JSON line.
async fn send(conn: &mut Tls, answer: &impl Serialize) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(answer).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let stream = conn.get_mut();
    tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&line).await?;
        stream.flush().await
    })
    .await
    .map_err(|_| std::io::Error::other("client did not take the answer"))?
}
