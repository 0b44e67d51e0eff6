//! The console's client thread: it owns the admin connection
//! ([`hamond::admin::client::Client`], blocking TLS) and carries out the
//! model's [`Job`]s one by one, answering each with one [`Event`]. The
//! thread lives as long as the console; it is spawned by [`Worker::spawn`],
//! so it is in the network namespace of the thread that spawns it.

use crate::model::{Event, Job};
use hamond::admin::client::{Client, ConnectError, FirstUse};
use haschema::ctl::{Request, Response};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::time::Duration;

/// Longest wait for a connection or an answer.
const TIMEOUT: Duration = Duration::from_secs(15);

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

/// The logged-in connection and its server.
struct Session {
    client: Client,
    server: String,
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
            Job::Refresh => with_session(&mut session, refresh),
            Job::Command { request, what } => with_session(&mut session, |client| {
                let result = match client.call(&request)? {
                    Response::Done { message } => Ok(message),
                    Response::Error { message } => Err(message),
                    _ => Err("unexpected answer".to_owned()),
                };
                Ok(Event::Done { what, result })
            }),
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

/// Runs `f` on the session's client; a broken connection ends the session
/// ([`Event::Lost`]).
fn with_session(
    session: &mut Option<Session>,
    f: impl FnOnce(&mut Client) -> Result<Event, String>,
) -> Event {
    let Some(s) = session else {
        return Event::Lost("not connected".into());
    };
    match f(&mut s.client) {
        Ok(event) => event,
        Err(message) => {
            *session = None;
            Event::Lost(message)
        }
    }
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
