//! The console's state, without any drawing or I/O: the connection, the
//! last status and services reports, the cluster config as last read, the
//! failovers of the history, the message bar's lines, the selected service
//! and the lock. The view turns the operator's actions into [`Job`]s queued
//! here; [`Model::next_job`] hands them to the client thread one at a time
//! (a refresh every [`REFRESH`] and after each command, never while a
//! request is outstanding), and the thread's [`Event`]s come back through
//! [`Model::apply`]. The cluster config and the failovers are read again
//! only when a status report shows that they may have changed.

use haschema::config::ClusterConfig;
use haschema::ctl::{ConfigVersion, Nic, Request, ServiceOp, ServiceStatus, StatusReport};
use haschema::event::Event as ClusterEvent;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Time between two status refreshes.
pub const REFRESH: Duration = Duration::from_secs(2);
/// Lines kept in the message bar.
const MAX_MESSAGES: usize = 200;
/// The cluster config's document.
pub const CLUSTER_DOC: &str = "cluster.toml";
/// Failovers the timeline shows, the newest.
pub const TIMELINE_LEN: usize = 50;

/// The document of service `name`.
pub fn service_doc(name: &str) -> String {
    format!("services/{name}.toml")
}

/// What the client thread is asked to do. Each job is answered by exactly
/// one [`Event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Job {
    /// Connect to `server` (HOST:PORT) and log in; `accept` is the
    /// certificate fingerprint the operator accepted for a first use.
    Connect {
        server: String,
        password: String,
        accept: Option<String>,
    },
    /// Read the status and the services.
    Refresh,
    /// A command (service operation), named `what` for the messages.
    Command { request: Request, what: String },
    /// Read configuration document `name`.
    Read { name: String },
    /// A change of a configuration document (a `ConfigPut`), named `what`.
    Put { request: Request, what: String },
    /// Remove configuration document `name`, whatever its version.
    Remove { name: String, what: String },
    /// Read the failovers of the history.
    Failovers,
    /// Read `node`'s network interfaces (AutoGet).
    Nics { node: String },
    /// Check the password again with a fresh login (the lock).
    Unlock { password: String },
    /// Close the connection.
    Disconnect,
}

/// A node's AutoGet answer: its network interfaces and whether some were
/// left out (more than one cluster message carries), or why they could not
/// be read.
pub type NicAnswer = Result<(Vec<Nic>, bool), String>;

/// What the client thread answers.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Logged in; `first_use` is the fingerprint pinned just now.
    Connected {
        server: String,
        first_use: Option<String>,
    },
    /// The server's certificate is not trusted yet: show it.
    NotTrusted {
        server: String,
        fingerprint: String,
    },
    /// The connection or the login failed (wrong password, changed
    /// certificate, unreachable ...), said for the operator.
    ConnectFailed(String),
    Refreshed {
        status: Result<Box<StatusReport>, String>,
        services: Result<Vec<ServiceStatus>, String>,
    },
    /// A command's result: the daemon's message or its refusal.
    Done {
        what: String,
        result: Result<String, String>,
    },
    /// A configuration document: its version and content (None: removed).
    Read {
        name: String,
        result: Result<(ConfigVersion, Option<String>), String>,
    },
    /// A configuration change committed (its new version) or refused.
    Committed {
        what: String,
        result: Result<ConfigVersion, String>,
    },
    /// The newest failovers, oldest first.
    Failovers(Result<Vec<ClusterEvent>, String>),
    /// A node's network interfaces, or why they could not be read.
    Nics {
        node: String,
        result: NicAnswer,
    },
    Unlocked(Result<(), String>),
    /// The connection broke.
    Lost(String),
    Disconnected,
}

/// The connection to a node's admin endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    Disconnected,
    Connecting {
        server: String,
    },
    /// Waiting for the operator to accept the server's certificate.
    Trust {
        server: String,
        fingerprint: String,
    },
    Connected {
        server: String,
    },
}

/// How bad a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

impl Level {
    /// The message bar's tag.
    pub fn tag(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        }
    }
}

/// One line of the message bar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub level: Level,
    pub text: String,
}

/// The cluster config as last read.
#[derive(Clone, Debug)]
pub struct ClusterDoc {
    pub version: ConfigVersion,
    pub text: String,
    /// The text as the daemons read it, or why they could not.
    pub config: Result<ClusterConfig, String>,
}

impl ClusterDoc {
    pub fn new(version: ConfigVersion, text: String) -> ClusterDoc {
        let config = ClusterConfig::parse(&text, std::path::Path::new(CLUSTER_DOC))
            .map_err(|e| e.to_string());
        ClusterDoc {
            version,
            text,
            config,
        }
    }
}

/// The console's state.
#[derive(Debug)]
pub struct Model {
    pub link: Link,
    pub status: Option<StatusReport>,
    pub services: Vec<ServiceStatus>,
    /// cluster.toml, the base of the network dialogs and the check of the
    /// service dialog.
    pub cluster: Option<ClusterDoc>,
    /// The newest failovers, oldest first.
    pub failovers: Vec<ClusterEvent>,
    /// Oldest first.
    pub messages: VecDeque<Message>,
    pub selected: Option<String>,
    /// Everything is hidden until the password is typed again.
    pub locked: bool,
    /// An unlock is being checked.
    pub unlocking: bool,
    /// The last connect or unlock failed: why (shown in its dialog).
    pub login_error: Option<String>,
    /// AutoGet answers ([`Model::autoget`]) not yet taken by the dialog.
    pub nics: Vec<(String, NicAnswer)>,
    queue: VecDeque<Job>,
    outstanding: bool,
    /// When the next refresh is due (None: none while disconnected).
    refresh_at: Option<Instant>,
    /// What the last status report said of the membership and the
    /// services: when it changes, the failovers are read again.
    seen: Option<Seen>,
}

/// What a status report says of the membership epoch and of each service
/// (name, holder, state on each node).
type Seen = (Option<u64>, Vec<(String, Option<String>, Vec<String>)>);

impl Default for Model {
    fn default() -> Self {
        Model::new()
    }
}

impl Model {
    pub fn new() -> Model {
        Model {
            link: Link::Disconnected,
            status: None,
            services: Vec::new(),
            cluster: None,
            failovers: Vec::new(),
            messages: VecDeque::new(),
            selected: None,
            locked: false,
            unlocking: false,
            login_error: None,
            nics: Vec::new(),
            queue: VecDeque::new(),
            outstanding: false,
            refresh_at: None,
            seen: None,
        }
    }

    /// Logged in.
    pub fn connected(&self) -> bool {
        matches!(self.link, Link::Connected { .. })
    }

    /// A request is out.
    pub fn busy(&self) -> bool {
        self.outstanding
    }

    pub fn say(&mut self, level: Level, text: impl Into<String>) {
        if self.messages.len() == MAX_MESSAGES {
            self.messages.pop_front();
        }
        self.messages.push_back(Message {
            level,
            text: text.into(),
        });
    }

    /// Connect (again) to `server`; `accept` is a fingerprint the operator
    /// accepted.
    pub fn connect(&mut self, server: String, password: String, accept: Option<String>) {
        self.queue.clear();
        self.refresh_at = None;
        self.login_error = None;
        self.link = Link::Connecting {
            server: server.clone(),
        };
        self.queue.push_back(Job::Connect {
            server,
            password,
            accept,
        });
    }

    /// The operator declined the server's certificate.
    pub fn decline(&mut self) {
        if let Link::Trust { server, .. } = &self.link {
            let text = format!("certificate of {server} not accepted; not connected");
            self.link = Link::Disconnected;
            self.say(Level::Warning, text);
        }
    }

    /// Close the connection now; what was queued is dropped.
    pub fn disconnect(&mut self) {
        self.queue.clear();
        self.refresh_at = None;
        self.status = None;
        self.services.clear();
        self.cluster = None;
        self.failovers.clear();
        self.seen = None;
        self.locked = false;
        if let Link::Connected { server } = &self.link {
            let text = format!("disconnected from {server}");
            self.say(Level::Info, text);
            self.queue.push_back(Job::Disconnect);
        }
        self.link = Link::Disconnected;
    }

    /// A service operation on the selected service.
    pub fn command(&mut self, op: ServiceOp) {
        let Some(service) = self.selected.clone().filter(|_| self.connected()) else {
            self.say(Level::Warning, "select a service first");
            return;
        };
        let what = format!("{} {service}", op.as_str());
        self.queue.push_back(Job::Command {
            request: Request::Service {
                op,
                service,
                node: None,
            },
            what,
        });
    }

    /// Change configuration document `name` from version `base` (None: it
    /// must not exist yet) to `content`; `what` names it in the messages.
    pub fn put(
        &mut self,
        name: String,
        base: Option<ConfigVersion>,
        content: String,
        what: String,
    ) {
        self.queue.push_back(Job::Put {
            request: Request::ConfigPut {
                name,
                base,
                content: Some(content),
                force_local: false,
            },
            what,
        });
    }

    /// Remove the selected service's file on every node.
    pub fn remove_service(&mut self) {
        let Some(service) = self.selected.clone().filter(|_| self.connected()) else {
            self.say(Level::Warning, "select a service first");
            return;
        };
        self.queue.push_back(Job::Remove {
            name: service_doc(&service),
            what: format!("remove service {service}"),
        });
    }

    /// Queues `job` unless it is queued already.
    fn queue_once(&mut self, job: Job) {
        if !self.queue.contains(&job) {
            self.queue.push_back(job);
        }
    }

    /// AutoGet: read each of `nodes`' network interfaces; the answers
    /// arrive in [`Model::nics`].
    pub fn autoget(&mut self, nodes: impl IntoIterator<Item = String>) {
        self.nics.clear();
        for node in nodes {
            self.queue_once(Job::Nics { node });
        }
    }

    /// Read cluster.toml again.
    fn reread_cluster(&mut self) {
        self.queue_once(Job::Read {
            name: CLUSTER_DOC.into(),
        });
    }

    pub fn lock(&mut self) {
        if self.connected() {
            self.locked = true;
            self.login_error = None;
        }
    }

    pub fn unlock(&mut self, password: String) {
        if self.locked && !self.unlocking {
            self.unlocking = true;
            self.queue.push_back(Job::Unlock { password });
        }
    }

    /// The next job for the client thread, if one may go now: queued jobs
    /// first, then a refresh when due; never while one is outstanding.
    pub fn next_job(&mut self, now: Instant) -> Option<Job> {
        if self.outstanding {
            return None;
        }
        let job = self.queue.pop_front().or_else(|| {
            let due = self.refresh_at.is_some_and(|t| t <= now);
            due.then_some(Job::Refresh)
        })?;
        if job == Job::Refresh {
            self.refresh_at = Some(now + REFRESH);
        }
        self.outstanding = true;
        Some(job)
    }

    /// How long until [`Model::next_job`] may have something (None: not
    /// before an event or an action).
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        if self.outstanding || !self.queue.is_empty() {
            return None;
        }
        self.refresh_at.map(|t| t.saturating_duration_since(now))
    }

    /// Takes the client thread's answer.
    pub fn apply(&mut self, event: Event, now: Instant) {
        self.outstanding = false;
        match event {
            Event::Connected { server, first_use } => {
                if !matches!(&self.link, Link::Connecting { server: s } if *s == server) {
                    // Disconnected (or connecting elsewhere) meanwhile.
                    self.queue.push_front(Job::Disconnect);
                    return;
                }
                if let Some(fp) = first_use {
                    self.say(
                        Level::Info,
                        format!("trusting the certificate of {server}: SHA-256 {fp}"),
                    );
                }
                self.say(Level::Info, format!("connected to {server}"));
                self.link = Link::Connected { server };
                self.refresh_at = Some(now);
                self.reread_cluster();
                self.queue_once(Job::Failovers);
            }
            Event::NotTrusted {
                server,
                fingerprint,
            } => {
                self.say(
                    Level::Warning,
                    format!(
                        "first connection to {server}: check its certificate (SHA-256 \
                         {fingerprint}) before accepting it"
                    ),
                );
                self.link = Link::Trust {
                    server,
                    fingerprint,
                };
            }
            Event::ConnectFailed(message) => {
                self.say(Level::Error, message.clone());
                self.login_error = Some(message);
                self.link = Link::Disconnected;
            }
            Event::Refreshed { status, services } => self.refreshed(status, services),
            Event::Done { what, result } => {
                match result {
                    Ok(message) => self.say(Level::Info, format!("{what}: {message}")),
                    Err(message) => self.say(Level::Error, format!("{what} refused: {message}")),
                }
                if self.connected() {
                    self.refresh_at = Some(now);
                }
            }
            Event::Read { name, result } => match result {
                Ok((version, Some(text))) if name == CLUSTER_DOC => {
                    self.cluster = Some(ClusterDoc::new(version, text));
                }
                Ok(_) => {}
                Err(e) => self.say(Level::Error, format!("reading {name}: {e}")),
            },
            Event::Committed { what, result } => {
                match result {
                    Ok(version) => self.say(
                        Level::Info,
                        format!("{what}: committed on every node, version {version}"),
                    ),
                    Err(e) => self.say(Level::Error, format!("{what} refused: {e}")),
                }
                if self.connected() {
                    self.reread_cluster();
                    self.refresh_at = Some(now);
                }
            }
            Event::Nics { node, result } => self.nics.push((node, result)),
            Event::Failovers(result) => match result {
                Ok(events) => self.failovers = events,
                Err(e) => self.say_once(Level::Warning, format!("failover history: {e}")),
            },
            Event::Unlocked(result) => {
                self.unlocking = false;
                match result {
                    Ok(()) => {
                        self.locked = false;
                        self.login_error = None;
                    }
                    Err(message) => {
                        self.say(Level::Error, format!("unlock refused: {message}"));
                        self.login_error = Some(message);
                    }
                }
            }
            Event::Lost(message) => {
                self.say(
                    Level::Error,
                    format!("{message}; connect again (Tools > Connect)"),
                );
                self.link = Link::Disconnected;
                self.locked = false;
                self.queue.clear();
                self.refresh_at = None;
            }
            Event::Disconnected => {}
        }
    }

    fn refreshed(
        &mut self,
        status: Result<Box<StatusReport>, String>,
        services: Result<Vec<ServiceStatus>, String>,
    ) {
        if !self.connected() {
            return;
        }
        match status {
            Ok(report) => {
                if self
                    .status
                    .as_ref()
                    .is_some_and(|old| old.config_hash != report.config_hash)
                {
                    self.reread_cluster();
                }
                self.status = Some(*report);
            }
            Err(e) => self.say_once(Level::Error, format!("status: {e}")),
        }
        match services {
            Ok(services) => {
                if !self
                    .selected
                    .as_ref()
                    .is_some_and(|s| services.iter().any(|x| &x.name == s))
                {
                    self.selected = services.first().map(|s| s.name.clone());
                }
                self.services = services;
            }
            Err(e) => self.say_once(Level::Warning, format!("services: {e}")),
        }
        let seen = self.summary();
        if self.seen.as_ref().is_some_and(|old| *old != seen) {
            self.queue_once(Job::Failovers);
        }
        self.seen = Some(seen);
    }

    /// The membership epoch and every service's holder and states: what a
    /// failover changes.
    fn summary(&self) -> Seen {
        let services = self
            .services
            .iter()
            .map(|s| {
                let states = s.nodes.iter().map(|n| n.state.clone()).collect();
                (s.name.clone(), s.owner.clone(), states)
            })
            .collect();
        (self.status.as_ref().map(|s| s.epoch), services)
    }

    /// Says `text` unless it is the last line already (a failing refresh
    /// does not fill the bar).
    fn say_once(&mut self, level: Level, text: String) {
        if self.messages.back().is_none_or(|m| m.text != text) {
            self.say(level, text);
        }
    }
}

#[cfg(test)]
mod tests;
