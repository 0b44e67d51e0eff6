//! The console's client thread: it owns the admin connection
//! ([`hamond::admin::client::Client`], blocking TLS) and carries out the
//! model's [`Job`]s one by one, answering each with one [`Event`]. The
//! thread lives as long as the console; it is spawned by [`Worker::spawn`],
//! so it is in the network namespace of the thread that spawns it.
//!
//! When the connection breaks (hamond restarts to load a new cluster
//! config, for one), the thread logs in again with the password it keeps
//! for the session: a read is then asked again, a change is not (it may
//! have been made) and its answer says so.

use crate::model::{Event, Job};
use hamond::admin::client::{Client, ConnectError, FirstUse};
use haschema::ctl::{MAX_HISTORY, Request, Response};
use haschema::event::{EventKind, Filter};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::time::Duration;

/// Longest wait for a connection or an answer.
const TIMEOUT: Duration = Duration::from_secs(15);
/// Logins tried again after the connection broke ...
const RELOGIN_TRIES: u32 = 20;
/// ... this far apart (a restarting hamond is back within seconds).
const RELOGIN_PAUSE: Duration = Duration::from_millis(500);

/// The console's end of the client thread.
pub struct Worker {
    jobs: Sender<Job>,
    events: Receiver<Event>,
}

impl Worker {
    /// Starts the thread; servers' certificates are pinned in
    /// `known_hosts`.
    pub fn spawn(known_hosts: PathBuf) -> std::io::Result<Worker> {
        let (jobs, job_rx) = channel();
        let (event_tx, events) = channel();
        std::thread::Builder::new()
            .name("hagui-client".into())
            .spawn(move || run(&known_hosts, &job_rx, &event_tx))?;
        Ok(Worker { jobs, events })
    }

    /// Hands a job to the thread. Err: the thread is gone.
    pub fn send(&self, job: Job) -> Result<(), String> {
        self.jobs
            .send(job)
            .map_err(|_| "the client thread stopped; restart hagui".to_owned())
    }

    /// An answer, if one came. Err: the thread is gone.
    pub fn try_recv(&self) -> Result<Option<Event>, String> {
        match self.events.try_recv() {
            Ok(event) => Ok(Some(event)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => {
                Err("the client thread stopped; restart hagui".to_owned())
            }
        }
    }
}

/// The logged-in connection, its server and the password it logged in
/// with (to log in again when the connection breaks).
struct Session {
    client: Client,
    server: String,
    password: String,
}

/// Whether a job may be asked again on a new connection.
enum Again {
    /// A read: yes.
    Read,
    /// A change, named for the messages: no, it may have been made before
    /// the connection broke.
    Change(String),
}

/// Carries out jobs until the console drops its end.
fn run(known_hosts: &std::path::Path, jobs: &Receiver<Job>, events: &Sender<Event>) {
    let mut session: Option<Session> = None;
    while let Ok(job) = jobs.recv() {
        let event = match job {
            Job::Connect {
                server,
                password,
                accept,
            } => {
                session = None;
                let first_use = accept
                    .as_deref()
                    .map_or(FirstUse::Refuse, FirstUse::PinOnly);
                match login(&server, known_hosts, first_use, &password) {
                    Ok(client) => {
                        let first_use = client.first_use.clone();
                        session = Some(Session {
                            client,
                            server: server.clone(),
                            password,
                        });
                        Event::Connected { server, first_use }
                    }
                    Err(ConnectError::NotPinned { fingerprint }) => Event::NotTrusted {
                        server,
                        fingerprint,
                    },
                    Err(ConnectError::Failed(message)) => Event::ConnectFailed(message),
                }
            }
            Job::Unlock { password } => match &session {
                Some(s) => match login(&s.server, known_hosts, FirstUse::Refuse, &password) {
                    Ok(client) => {
                        session = Some(Session {
                            client,
                            server: s.server.clone(),
                            password,
                        });
                        Event::Unlocked(Ok(()))
                    }
                    Err(e) => Event::Unlocked(Err(e.to_string())),
                },
                None => Event::Unlocked(Err("not connected".into())),
            },
            Job::Disconnect => {
                session = None;
                Event::Disconnected
            }
            Job::Refresh => with_session(&mut session, known_hosts, Again::Read, refresh),
            Job::Read { name } => with_session(&mut session, known_hosts, Again::Read, |client| {
                let result = read(client, &name)?;
                Ok(Event::Read {
                    name: name.clone(),
                    result,
                })
            }),
            Job::Failovers => with_session(&mut session, known_hosts, Again::Read, failovers),
            Job::Nics { node } => with_session(&mut session, known_hosts, Again::Read, |client| {
                nics(client, &node)
            }),
            Job::Command { request, what } => with_session(
                &mut session,
                known_hosts,
                Again::Change(what.clone()),
                |client| {
                    let result = match client.call(&request)? {
                        Response::Done { message } => Ok(message),
                        Response::Error { message } => Err(message),
                        _ => Err("unexpected answer".to_owned()),
                    };
                    Ok(Event::Done {
                        what: what.clone(),
                        result,
                    })
                },
            ),
            Job::Put { request, what } => with_session(
                &mut session,
                known_hosts,
                Again::Change(what.clone()),
                |client| {
                    Ok(Event::Committed {
                        what: what.clone(),
                        result: put(client, &request)?,
                    })
                },
            ),
            Job::Remove { name, what } => with_session(
                &mut session,
                known_hosts,
                Again::Change(what.clone()),
                |client| {
                    let result = match read(client, &name)? {
                        Ok((_, None)) => Err(format!("{name} was removed already")),
                        Ok((version, Some(_))) => put(
                            client,
                            &Request::ConfigPut {
                                name: name.clone(),
                                base: Some(version),
                                content: None,
                                force_local: false,
                            },
                        )?,
                        Err(e) => Err(e),
                    };
                    Ok(Event::Committed {
                        what: what.clone(),
                        result,
                    })
                },
            ),
        };
        if events.send(event).is_err() {
            return;
        }
    }
}

/// Connects and logs in.
fn login(
    server: &str,
    known_hosts: &std::path::Path,
    first_use: FirstUse<'_>,
    password: &str,
) -> Result<Client, ConnectError> {
    let mut client = Client::connect_with(server, known_hosts, TIMEOUT, first_use)?;
    client.login(password)?;
    Ok(client)
}

/// Runs `f` on the session's client. When the connection broke, logs in
/// again: a read is asked again, a change is answered with a refusal that
/// says it may have been made. When no login works, the session ends
/// ([`Event::Lost`]).
fn with_session(
    session: &mut Option<Session>,
    known_hosts: &Path,
    again: Again,
    mut f: impl FnMut(&mut Client) -> Result<Event, String>,
) -> Event {
    let Some(s) = session else {
        return Event::Lost("not connected".into());
    };
    let broke = match f(&mut s.client) {
        Ok(event) => return event,
        Err(message) => message,
    };
    let Some(client) = relogin(s, known_hosts) else {
        *session = None;
        return Event::Lost(broke);
    };
    s.client = client;
    match again {
        Again::Read => match f(&mut s.client) {
            Ok(event) => event,
            Err(message) => {
                *session = None;
                Event::Lost(message)
            }
        },
        Again::Change(what) => Event::Committed {
            what,
            result: Err(format!(
                "{broke}: no answer came, so it may or may not have been made; connected \
                 again: look at the status before trying again"
            )),
        },
    }
}

/// Logs in again on the session's server, trying [`RELOGIN_TRIES`] times.
fn relogin(s: &Session, known_hosts: &Path) -> Option<Client> {
    for attempt in 0..RELOGIN_TRIES {
        if attempt > 0 {
            std::thread::sleep(RELOGIN_PAUSE);
        }
        match login(&s.server, known_hosts, FirstUse::Refuse, &s.password) {
            Ok(client) => return Some(client),
            // The endpoint refused the login itself (password changed,
            // source locked out): trying again would only add failed logins.
            Err(ConnectError::Failed(e)) if e.contains("refused:") => {
                tracing::warn!("hagui: logging in again failed: {e}");
                return None;
            }
            Err(e) => tracing::debug!("hagui: logging in again: {e}"),
        }
    }
    None
}

/// Reads configuration document `name`. Outer Err: the connection broke.
type Read = Result<(haschema::ctl::ConfigVersion, Option<String>), String>;
fn read(client: &mut Client, name: &str) -> Result<Read, String> {
    Ok(
        match client.call(&Request::ConfigGet {
            name: name.to_owned(),
        })? {
            Response::ConfigDoc {
                version, content, ..
            } => Ok((version, content)),
            Response::Error { message } => Err(message),
            _ => Err(format!("unexpected answer to reading {name}")),
        },
    )
}

/// Sends a `ConfigPut`: the new version, or the refusal. Outer Err: the
/// connection broke.
fn put(
    client: &mut Client,
    request: &Request,
) -> Result<Result<haschema::ctl::ConfigVersion, String>, String> {
    Ok(match client.call(request)? {
        Response::ConfigCommitted { version, .. } => Ok(version),
        Response::Error { message } => Err(message),
        _ => Err("unexpected answer to a configuration change".to_owned()),
    })
}

/// Reads the newest failovers of the history.
fn failovers(client: &mut Client) -> Result<Event, String> {
    let request = Request::History {
        filter: Filter {
            kind: Some(EventKind::Failover),
            ..Filter::default()
        },
        limit: crate::model::TIMELINE_LEN.min(MAX_HISTORY),
    };
    Ok(Event::Failovers(match client.call(&request)? {
        Response::History { events } => Ok(events),
        Response::Error { message } => Err(message),
        _ => Err("unexpected answer to a history request".to_owned()),
    }))
}

/// Reads `node`'s network interfaces (AutoGet). Err: the connection
/// broke.
fn nics(client: &mut Client, node: &str) -> Result<Event, String> {
    let request = Request::Nics {
        node: Some(node.to_owned()),
    };
    let result = match client.call(&request)? {
        Response::Nics {
            nics, truncated, ..
        } => Ok((nics, truncated)),
        Response::Error { message } => Err(message),
        _ => Err("unexpected answer to an AutoGet request".to_owned()),
    };
    Ok(Event::Nics {
        node: node.to_owned(),
        result,
    })
}

/// Reads the status (hamond) and the services (hasvrd). Err: the
/// connection broke.
fn refresh(client: &mut Client) -> Result<Event, String> {
    let status = match client.call(&Request::Status)? {
        Response::Status(report) => Ok(report),
        Response::Error { message } => Err(message),
        _ => Err("unexpected answer to a status request".to_owned()),
    };
    let services = match client.call(&Request::Services)? {
        Response::Services { services } => Ok(services),
        Response::Error { message } => Err(message),
        _ => Err("unexpected answer to a services request".to_owned()),
    };
    Ok(Event::Refreshed { status, services })
}
