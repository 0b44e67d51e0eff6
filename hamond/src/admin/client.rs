//! The client side of the admin endpoint (used by `hactl --remote`): TLS
//! to HOST:PORT with the server's certificate pinned by fingerprint on first
//! use in a known-hosts file (one `HOST:PORT FINGERPRINT` line per server),
//! then the login line and JSON request lines. A changed certificate is
//! refused during the handshake, before the password is sent. `hactl`
//! trusts a new server's certificate at once ([`Client::connect`]); the GUI
//! shows its fingerprint first and pins only the one the operator accepted
//! ([`Client::connect_with`], [`FirstUse`]).

use super::tls;
use haschema::ctl::{Login, LoginResponse, Request, Response};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Environment variable naming the known-hosts file (for tests and scripts).
pub const KNOWN_HOSTS_ENV: &str = "HA_KNOWN_HOSTS";
/// Longest answer line read.
const MAX_ANSWER: u64 = 4 * 1024 * 1024;

/// The known-hosts file: `$HA_KNOWN_HOSTS`, else
/// `$XDG_CONFIG_HOME/hacluster/known_hosts`, else
/// `~/.config/hacluster/known_hosts`.
pub fn default_known_hosts() -> Option<PathBuf> {
    let env = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env(KNOWN_HOSTS_ENV)
        .or_else(|| env("XDG_CONFIG_HOME").map(|d| d.join("hacluster/known_hosts")))
        .or_else(|| env("HOME").map(|d| d.join(".config/hacluster/known_hosts")))
}

/// The pinned fingerprint of `server` in `file`, with its line number.
pub fn pinned(file: &Path, server: &str) -> Result<Option<(usize, String)>, String> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: cannot read: {e}", file.display())),
    };
    Ok(text.lines().enumerate().find_map(|(i, line)| {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some(name), Some(fp)) if name == server && !name.starts_with('#') => {
                Some((i + 1, fp.to_owned()))
            }
            _ => None,
        }
    }))
}

/// Appends `server`'s fingerprint to `file` (made, with its directory, if
/// missing).
fn pin(file: &Path, server: &str, fingerprint: &str) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    let err = |e: std::io::Error| format!("{}: cannot record the certificate: {e}", file.display());
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .map_err(err)?;
    writeln!(f, "{server} {fingerprint}").map_err(err)
}

/// What to do with a server whose certificate is not pinned yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstUse<'a> {
    /// Trust and pin whatever certificate it shows.
    PinAny,
    /// Pin it only if its fingerprint is this one (the operator accepted
    /// it); otherwise refuse with [`ConnectError::NotPinned`].
    PinOnly(&'a str),
    /// Refuse with [`ConnectError::NotPinned`] (nothing is sent), so that
    /// the operator can be shown the fingerprint.
    Refuse,
}

/// Why [`Client::connect_with`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// The server's certificate is not pinned (or not the one accepted):
    /// its fingerprint, for the operator to check and accept.
    NotPinned { fingerprint: String },
    /// Anything else, said for the operator.
    Failed(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::NotPinned { fingerprint } => write!(
                f,
                "the server's certificate (SHA-256 {fingerprint}) is not trusted yet"
            ),
            ConnectError::Failed(message) => f.write_str(message),
        }
    }
}

impl From<String> for ConnectError {
    fn from(message: String) -> Self {
        ConnectError::Failed(message)
    }
}

/// Accepts exactly the expected certificate (or any, when none is
/// expected), and remembers the one it saw. Handshake signatures are still checked, so
/// only the holder of the pinned certificate's key gets through.
#[derive(Debug)]
struct Pin {
    expected: Option<String>,
    /// Without an expected fingerprint, refuse every certificate.
    refuse_unknown: bool,
    seen: Mutex<Option<String>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pin {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = tls::fingerprint(end_entity);
        let ok = match &self.expected {
            Some(e) => *e == seen,
            None => !self.refuse_unknown,
        };
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(seen);
        if ok {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the server certificate is not the trusted one".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A connection to an admin endpoint.
pub struct Client {
    stream: BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>,
    server: String,
    /// Set when this connection pinned the server's certificate (first
    /// use): its fingerprint.
    pub first_use: Option<String>,
}

impl Client {
    /// Connects to `server` (HOST:PORT) and checks its certificate against
    /// `known_hosts`; on first use the certificate is pinned there.
    pub fn connect(server: &str, known_hosts: &Path, timeout: Duration) -> Result<Client, String> {
        Client::connect_with(server, known_hosts, timeout, FirstUse::PinAny)
            .map_err(|e| e.to_string())
    }

    /// [`Client::connect`], with `first_use` saying what to do when the
    /// server's certificate is not pinned yet.
    pub fn connect_with(
        server: &str,
        known_hosts: &Path,
        timeout: Duration,
        first_use: FirstUse<'_>,
    ) -> Result<Client, ConnectError> {
        let unreachable = |e: std::io::Error| format!("cannot reach {server}: {e}");
        let pinned = pinned(known_hosts, server)?;
        let expected = match (&pinned, first_use) {
            (Some((_, fp)), _) => Some(fp.clone()),
            (None, FirstUse::PinOnly(fp)) => Some(fp.to_owned()),
            (None, FirstUse::PinAny | FirstUse::Refuse) => None,
        };
        let addr = server
            .to_socket_addrs()
            .map_err(|e| format!("{server}: not a HOST:PORT ({e})"))?
            .next()
            .ok_or_else(|| format!("{server}: no address"))?;
        let tcp = TcpStream::connect_timeout(&addr, timeout).map_err(unreachable)?;
        tcp.set_read_timeout(Some(timeout)).map_err(unreachable)?;
        tcp.set_write_timeout(Some(timeout)).map_err(unreachable)?;
        let provider = tls::provider();
        let verifier = Arc::new(Pin {
            expected,
            refuse_unknown: first_use == FirstUse::Refuse,
            seen: Mutex::new(None),
            provider: Arc::clone(&provider),
        });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::clone(&verifier) as Arc<dyn ServerCertVerifier>)
            .with_no_client_auth();
        let host = server
            .rsplit_once(':')
            .map_or(server, |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .unwrap_or_else(|_| ServerName::try_from("hamond-admin").expect("a valid name"));
        let conn = rustls::ClientConnection::new(Arc::new(config), name)
            .map_err(|e| format!("cannot set up TLS: {e}"))?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        let handshake = stream.conn.complete_io(&mut stream.sock);
        let seen = verifier
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let (Some((line, old)), Some(new)) = (&pinned, &seen)
            && old != new
        {
            return Err(ConnectError::Failed(format!(
                "the certificate of {server} has CHANGED: it is now SHA-256 {new}, but line {line} of {file} \
                 pins {old}. Nothing was sent. Someone may be intercepting the connection, or the node's \
                 admin certificate was regenerated (its {cert} was removed or its state dir reset): compare \
                 with `openssl x509 -noout -fingerprint -sha256 -in /var/lib/hacluster/{cert}` on the node. \
                 If the change is legitimate, remove line {line} from {file} and connect again.",
                file = known_hosts.display(),
                cert = tls::CERT_FILE,
            )));
        }
        if let (None, Some(fingerprint)) = (&pinned, &seen)
            && first_use != FirstUse::PinAny
            && handshake.is_err()
        {
            return Err(ConnectError::NotPinned {
                fingerprint: fingerprint.clone(),
            });
        }
        handshake.map_err(|e| format!("TLS with {server} failed: {e}"))?;
        let first_use = match (pinned, seen) {
            (None, Some(fp)) => {
                pin(known_hosts, server, &fp)?;
                Some(fp)
            }
            _ => None,
        };
        Ok(Client {
            stream: BufReader::new(stream),
            server: server.to_owned(),
            first_use,
        })
    }

    /// Sends one line (a newline is added) and reads one answer line.
    pub fn exchange(&mut self, line: &[u8]) -> Result<String, String> {
        let lost = |e: std::io::Error| format!("connection to {} lost: {e}", self.server);
        let s = self.stream.get_mut();
        s.write_all(line)
            .and_then(|()| s.write_all(b"\n"))
            .and_then(|()| s.flush())
            .map_err(lost)?;
        let mut answer = String::new();
        let n = (&mut self.stream)
            .take(MAX_ANSWER)
            .read_line(&mut answer)
            .map_err(lost)?;
        if n == 0 {
            return Err(format!(
                "{} closed the connection without an answer",
                self.server
            ));
        }
        Ok(answer)
    }

    /// Logs in with the admin password.
    pub fn login(&mut self, password: &str) -> Result<(), String> {
        let line = serde_json::to_vec(&Login::Login {
            password: password.to_owned(),
        })
        .map_err(|e| e.to_string())?;
        let answer = self.exchange(&line)?;
        match serde_json::from_str(&answer) {
            Ok(LoginResponse::LoggedIn) => Ok(()),
            Ok(LoginResponse::Error { message }) => {
                Err(format!("{} refused: {message}", self.server))
            }
            Err(e) => Err(format!("unexpected answer from {}: {e}", self.server)),
        }
    }

    /// Sends a request (after [`Client::login`]) and reads the answer.
    pub fn call(&mut self, request: &Request) -> Result<Response, String> {
        let line = serde_json::to_vec(request).map_err(|e| e.to_string())?;
        let answer = self.exchange(&line)?;
        serde_json::from_str(&answer)
            .map_err(|e| format!("unexpected answer from {}: {e}", self.server))
    }
}
