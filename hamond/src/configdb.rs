//! The driver of configuration replication (invariant 5, safety rule 9):
//! this node's replica of the cluster's configuration documents
//! (`litecloud::config::Store`: `cluster.toml`, the service files, the admin
//! password hash; see [`files`]), persisted in the state dir
//! (`config-store`), fed by the daemon loop with views, channel messages,
//! its timer and the operators' edits, and carried out here: the store
//! written durably before anything else, each committed document written to
//! its file atomically, the edits answered when they commit or are refused.
//! What needs the rest of hamond comes back as an [`Out`]: messages to send,
//! hasvrd to reread its services, hamond (and hasvrd) to restart on a new
//! cluster config (`haschema::process::reexec`), conflicts for the operator.
//!
//! At the first start the store is seeded from the files on disk. Each
//! document's file write is marked done (`config-applied`, the version
//! whose file was written) once it is durable: at a later start, a document
//! whose mark is older than the store's version was persisted but not yet
//! written when hamond stopped (a crash in between), so its file is written
//! now; a file that differs from a version marked done was edited by hand:
//! it is left as it is, with a warning saying how to replicate it.

pub mod check;
pub mod files;
#[cfg(test)]
mod testkit;

use files::{Files, Kind};
use haschema::config::ClusterConfig;
use haschema::ctl::{ConfigConflict, ConfigDocInfo, Response};
use litecloud::Time;
use litecloud::config::{Action, Edit, MAX_DOC, Refusal, Store, Ticket, Version};
use litecloud::view::{NodeSet, View};
use litecloud::wire::NodeId;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use tokio::sync::oneshot;

/// The store's file in the state dir.
const STORE_FILE: &str = "config-store";
/// The file of the versions whose documents' files were written, in the
/// state dir.
const APPLIED_FILE: &str = "config-applied";

/// What the rest of hamond must do.
#[derive(Debug, PartialEq, Eq)]
pub enum Out {
    /// Send on the channel to `to`.
    Send { to: NodeId, data: Vec<u8> },
    /// Service files were written or removed: hasvrd rereads them.
    ServicesChanged,
    /// The cluster config file was written: hamond restarts to load it.
    Restart { version: Version, from: String },
    /// A conflict the operator must resolve: an emergency for the history.
    Conflict { name: String, what: String },
    /// An operator's change committed (`by`: who asked): for the history.
    Committed { what: String, by: String },
}

/// This node's configuration replica and the edits waiting for commit.
pub struct ConfigDb {
    store: Store,
    files: Files,
    store_path: PathBuf,
    /// Each document's version whose file was written, persisted in
    /// [`APPLIED_FILE`].
    applied: BTreeMap<String, Version>,
    /// Node names by domain id, for messages.
    names: BTreeMap<NodeId, String>,
    /// Each proposed edit and its operator's answer.
    waiting: BTreeMap<Ticket, Waiting>,
    out: VecDeque<Out>,
}

/// A proposed change of one document, as a control request gives it.
pub struct Put {
    pub name: String,
    pub base: Option<Version>,
    pub content: Option<String>,
    pub force_local: bool,
    /// Who asked, for the log and the history.
    pub by: String,
}

/// An edit waiting for its commit.
struct Waiting {
    name: String,
    removal: bool,
    by: String,
    reply: oneshot::Sender<Response>,
}

impl ConfigDb {
    /// The store persisted in `state_dir`, or (first start) one seeded from
    /// the files on disk. Files that differ from the persisted store are
    /// reported as hand edits.
    pub fn open(
        config: &ClusterConfig,
        me: NodeId,
        files: Files,
        state_dir: &Path,
    ) -> Result<ConfigDb, String> {
        let nodes = NodeSet::of(config.nodes.iter().map(|n| n.domain));
        let store_path = state_dir.join(STORE_FILE);
        let persisted = match std::fs::read(&store_path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(format!(
                    "{}: cannot read the configuration store: {e}; fix the state directory, \
                     then restart hamond",
                    store_path.display()
                ));
            }
        };
        let store = match &persisted {
            Some(bytes) => Store::restore(me, nodes, bytes).map_err(|e| {
                format!(
                    "{}: the configuration store is damaged ({e}); move it away and restart \
                     hamond: it starts again from the files on this node",
                    store_path.display()
                )
            })?,
            None => {
                let docs = files.read_all().map_err(|e| {
                    format!("{e}; fix it, then restart hamond (it replicates these files)")
                })?;
                tracing::info!(
                    "configuration store started from the {} files on this node",
                    docs.len()
                );
                Store::seed(me, nodes, docs)
            }
        };
        let names = config
            .nodes
            .iter()
            .map(|n| (n.domain, n.name.clone()))
            .collect();
        let stored: BTreeMap<String, Version> = store
            .docs()
            .into_iter()
            .map(|d| (d.name, d.version))
            .collect();
        let applied = match &persisted {
            Some(_) => read_applied(&state_dir.join(APPLIED_FILE))?,
            None => None,
        };
        let mut db = ConfigDb {
            store,
            files,
            store_path,
            // A first start, or a store from before the marks: its files
            // count as written.
            applied: applied.clone().unwrap_or_else(|| stored.clone()),
            names,
            waiting: BTreeMap::new(),
            out: VecDeque::new(),
        };
        if applied.is_none() {
            db.persist_applied();
        }
        let unwritten: Vec<_> = db
            .store
            .docs()
            .into_iter()
            .filter(|d| db.applied.get(&d.name) != Some(&d.version))
            .collect();
        for doc in &unwritten {
            tracing::warn!(
                "configuration: {} version {} was committed but its file not written when                  hamond stopped: writing it now",
                doc.name,
                doc.version
            );
            db.apply(&doc.name, doc.version, doc.content.as_deref());
        }
        if persisted.is_some() {
            for warning in db.hand_edits() {
                tracing::warn!("{warning}");
            }
        }
        Ok(db)
    }

    /// Writes [`APPLIED_FILE`] (a failure is logged: at the next start the
    /// documents written since are written again, which is harmless).
    fn persist_applied(&self) {
        let path = self.store_path.with_file_name(APPLIED_FILE);
        let data = serde_json::to_vec(&self.applied).unwrap_or_default();
        if let Err(e) = haschema::private_file::write(&path, &data) {
            tracing::error!(
                "cannot write {}: {e}; at its next start hamond writes the configuration files                  again: fix the disk (full? read-only?)",
                path.display()
            );
        }
    }

    /// A warning for every file whose content is not the store's version.
    fn hand_edits(&self) -> Vec<String> {
        let on_disk = self.files.read_all().unwrap_or_else(|e| {
            tracing::warn!("cannot read the configuration files to compare them: {e}");
            Vec::new()
        });
        let mut docs: BTreeMap<String, (Option<Version>, Option<Vec<u8>>)> = self
            .store
            .docs()
            .into_iter()
            .map(|d| (d.name, (Some(d.version), d.content)))
            .collect();
        for (name, _) in &on_disk {
            docs.entry(name.clone()).or_insert((None, None));
        }
        let mut warnings = Vec::new();
        for (name, (version, stored)) in docs {
            let disk = on_disk.iter().find(|(n, _)| *n == name).map(|(_, c)| c);
            if disk == stored.as_ref() {
                continue;
            }
            let path = self.files.path(&name).unwrap_or_default();
            let version = version.map_or_else(|| "none".to_owned(), |v| v.to_string());
            warnings.push(format!(
                "{} differs from the replicated {name} (version {version}): edited by hand, \
                 so the other nodes do not have it; replicate it with `hactl config put {name} \
                 {}`, or put the replicated one back with `hactl config get {name} -o {}`",
                path.display(),
                path.display(),
                path.display()
            ));
        }
        warnings
    }

    /// A view was installed.
    pub fn view_installed(&mut self, now: Time, view: &View) {
        self.store.view_installed(now, view);
    }

    /// A message of this protocol from `from`, its proposals checked here.
    pub fn message(
        &mut self,
        now: Time,
        from: NodeId,
        data: &[u8],
        cx: &check::Context,
    ) -> Result<(), String> {
        let files = &self.files;
        let check = |name: &str, content: Option<&[u8]>| check::document(cx, files, name, content);
        self.store.message(now, from, data, &check)
    }

    /// The store's timer.
    pub fn tick(&mut self, now: Time) {
        self.store.tick(now);
    }

    /// When [`ConfigDb::tick`] is due next.
    pub fn deadline(&self) -> Option<Time> {
        self.store.next_deadline()
    }

    /// Every document with its version.
    pub fn list(&self) -> Response {
        let docs = self
            .store
            .docs()
            .into_iter()
            .map(|d| ConfigDocInfo {
                size: d.content.as_ref().map(Vec::len),
                conflict: d.conflict.map(|(node, version)| ConfigConflict {
                    node: self.name(node),
                    version,
                }),
                name: d.name,
                version: d.version,
            })
            .collect();
        Response::ConfigList { docs }
    }

    /// One document.
    pub fn get(&self, name: &str) -> Response {
        let Some(doc) = self.store.get(name) else {
            return error(format!(
                "there is no configuration document {name}; `hactl config list` shows them"
            ));
        };
        match doc.content.map(String::from_utf8).transpose() {
            Ok(content) => Response::ConfigDoc {
                name: doc.name,
                version: doc.version,
                content,
            },
            Err(_) => error(format!("{name} is not UTF-8 text")),
        }
    }

    /// Proposes an operator's edit, checked here first; `reply` gets the
    /// answer once it commits or is refused.
    pub fn put(
        &mut self,
        now: Time,
        put: Put,
        cx: &check::Context,
        reply: oneshot::Sender<Response>,
    ) {
        let removal = put.content.is_none();
        tracing::info!(
            "configuration: {} of {} asked by {}",
            if removal { "removal" } else { "change" },
            put.name,
            put.by
        );
        let edit = Edit {
            name: put.name.clone(),
            base: put.base,
            content: put.content.map(String::into_bytes),
            force_local: put.force_local,
        };
        let files = &self.files;
        let check = |name: &str, content: Option<&[u8]>| check::document(cx, files, name, content);
        match self.store.propose(now, edit, &check) {
            Ok(ticket) => {
                let waiting = Waiting {
                    name: put.name,
                    removal,
                    by: put.by,
                    reply,
                };
                self.waiting.insert(ticket, waiting);
            }
            Err(refusal) => {
                let _ = reply.send(error(self.refusal(&put.name, &refusal)));
            }
        }
    }

    /// Next thing for the rest of hamond to do; the store's own actions
    /// (persist, write files, answer edits) are carried out on the way.
    pub fn poll(&mut self) -> Option<Out> {
        loop {
            if let Some(out) = self.out.pop_front() {
                return Some(out);
            }
            match self.store.poll()? {
                Action::Send { to, data } => return Some(Out::Send { to, data }),
                Action::Persist(data) => self.persist(&data),
                Action::Apply {
                    name,
                    version,
                    content,
                } => self.apply(&name, version, content.as_deref()),
                Action::Done { ticket, version } => {
                    if let Some(w) = self.waiting.remove(&ticket) {
                        let what = format!(
                            "configuration: {} {} (version {version})",
                            w.name,
                            if w.removal { "removed" } else { "changed" }
                        );
                        tracing::info!("{what}, asked by {}", w.by);
                        let name = w.name;
                        let _ = w.reply.send(Response::ConfigCommitted { name, version });
                        return Some(Out::Committed { what, by: w.by });
                    }
                }
                Action::Refused { ticket, refusal } => {
                    if let Some(w) = self.waiting.remove(&ticket) {
                        let message = self.refusal(&w.name, &refusal);
                        tracing::info!(
                            "configuration: change of {} asked by {} refused: {message}",
                            w.name,
                            w.by
                        );
                        let _ = w.reply.send(error(message));
                    }
                }
                Action::Conflict {
                    name,
                    mine,
                    theirs,
                    node,
                } => {
                    let what = format!(
                        "configuration conflict: {name} is at version {mine} here and {theirs} on \
                         {}, and neither follows from the other; compare them (hactl config get \
                         {name} on each node) and put the right one with --force-local",
                        self.name(node)
                    );
                    tracing::error!(severity = "emerg", "{what}");
                    return Some(Out::Conflict { name, what });
                }
            }
        }
    }

    /// Writes the store durably (mode 0600: it holds the password hash).
    fn persist(&self, data: &[u8]) {
        if let Err(e) = haschema::private_file::write(&self.store_path, data) {
            tracing::error!(
                severity = "crit",
                "cannot persist the configuration store in {}: {e}; this node may forget \
                 configuration changes at its next start: fix the disk (full? read-only?), \
                 then restart hamond",
                self.store_path.display()
            );
        }
    }

    /// Writes one committed document to its file, then says who must
    /// reload it.
    fn apply(&mut self, name: &str, version: Version, content: Option<&[u8]>) {
        let from = self.name(version.node);
        match self.files.apply(name, content) {
            Ok(path) => {
                tracing::info!(
                    "configuration: {name} now version {version} (from {from}): {} {}",
                    if content.is_some() {
                        "wrote"
                    } else {
                        "removed"
                    },
                    path.display()
                );
                self.applied.insert(name.to_owned(), version);
                self.persist_applied();
            }
            Err(e) => {
                tracing::error!(
                    severity = "crit",
                    "configuration: cannot write {name} version {version} (from {from}): {e}; \
                     this node runs with the old file: fix the disk, then run `hactl config get \
                     {name} -o FILE` and put that file in place"
                );
                return;
            }
        }
        match self.files.kind(name) {
            Some(Kind::Service(_)) => {
                if !self.out.contains(&Out::ServicesChanged) {
                    self.out.push_back(Out::ServicesChanged);
                }
            }
            Some(Kind::Cluster) => self.out.push_back(Out::Restart { version, from }),
            // Read at each login.
            Some(Kind::Password) | None => {}
        }
    }

    /// A refusal in the operator's words, naming nodes and versions.
    fn refusal(&self, name: &str, refusal: &Refusal) -> String {
        let names = |nodes: &[NodeId]| {
            nodes
                .iter()
                .map(|&n| self.name(n))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match refusal {
            Refusal::Stale { current: Some(v) } => format!(
                "{name} changed meanwhile: it is now at {v}; reread it and redo your change"
            ),
            Refusal::Stale { current: None } => {
                format!("{name} does not exist (any more); put it without --base to create it")
            }
            Refusal::Busy { by } => format!(
                "{name} is being changed from {} right now; retry once that change is done",
                self.name(*by)
            ),
            Refusal::Missing { nodes } => format!(
                "{} not up: a change needs every node (safety rule 9); bring {} back, or \
                 commit on the nodes that are up with --force-local (the others take this \
                 version when they return)",
                if nodes.len() == 1 {
                    format!("{} is", names(nodes))
                } else {
                    format!("{} are", names(nodes))
                },
                if nodes.len() == 1 { "it" } else { "them" }
            ),
            Refusal::Rejected { node, reason } => {
                format!("{} refused {name}: {reason}", self.name(*node))
            }
            Refusal::Conflict { theirs: (node, v) } => format!(
                "{name} is in conflict with version {v} on {}: compare both (hactl config get \
                 {name} on each node) and put the right one with --force-local",
                self.name(*node)
            ),
            Refusal::Timeout => format!(
                "not every node answered in time, so {name} was not changed anywhere; check \
                 `hactl status` and retry"
            ),
            Refusal::TooLarge { len } => {
                format!("{name} is {len} bytes; a configuration document holds at most {MAX_DOC}")
            }
            Refusal::Full { max } => format!(
                "this node holds {max} configuration documents (removed ones count), the most \
                 it may: {name} cannot be added"
            ),
            Refusal::BadName { name } => format!(
                "{name} is not a configuration document; the documents are {}",
                files::known_names(self.files.path(files::PASSWORD).is_some())
            ),
        }
    }

    fn name(&self, id: NodeId) -> String {
        self.names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("domain {id}"))
    }
}

fn error(message: String) -> Response {
    Response::Error { message }
}

/// The versions in [`APPLIED_FILE`] at `path`; None when it does not exist.
fn read_applied(path: &Path) -> Result<Option<BTreeMap<String, Version>>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            format!(
                "{}: damaged ({e}); remove it and restart hamond (every configuration file is \
                 then taken as written)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!(
            "{}: cannot read it: {e}; fix the state directory, then restart hamond",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests;
