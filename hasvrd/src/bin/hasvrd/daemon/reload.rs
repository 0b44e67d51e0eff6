//! Services added, changed and removed while hasvrd runs. On SIGHUP, or
//! when hamond says configuration replication wrote the service files
//! ([`ToHasvrd::ServicesChanged`](haschema::svclink::ToHasvrd)), hasvrd
//! rereads its services directory with the loader it starts with, against
//! the cluster config it runs with. A directory that fails to load is
//! logged (file, line, field) and nothing changes. Otherwise, per service
//! of this node ([`diff`]):
//!
//! * **new**: added brought out (OUTSTB: its `onstart` is not honoured, it
//!   starts only when the operator brings it in), watched (public network,
//!   storage path, agent heartbeats) and advertised like the others; hamond
//!   learns its lock ([`ToHamond::Services`]). One whose lock id is another
//!   service's is refused and logged.
//! * **removed**: forgotten (its watches end, hamond and the other nodes
//!   forget it, and its persisted bring-out or stop and fail count here
//!   are dropped) when this node neither holds it nor has anything of it up;
//!   otherwise it keeps running, stays managed, and an error says to bring
//!   it out, then remove its file again.
//! * **changed**: its definition is replaced (its machine keeps its fail
//!   count, brought in or out, node standby) when this node neither holds
//!   it nor has anything of it up; otherwise it keeps running with the old
//!   definition, a warning says the new one applies at its next start, and
//!   it is applied as soon as the service is stopped here.
//! * **unchanged**: untouched; a reload never restarts a running service.

use super::{Daemon, Unit};
use crate::worker::{self, Done, Job};
use haschema::config::ClusterConfig;
use haschema::service::{ServiceConfig, lock_id};
use haschema::svclink::ToHamond;
use hasvrd::agent::WatchParams;
use hasvrd::fip::Fip;
use hasvrd::service::{Input, Service, Settings};
use hasvrd::steps::{StepEvent, Steps};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// Logs, for each of `services` whose longest stop outlasts `cluster`'s
/// watchdog lease, what that means and what to do.
pub(crate) fn warn_short_leases(services: &[ServiceConfig], cluster: &ClusterConfig) {
    for warning in services
        .iter()
        .filter_map(|s| s.lease_warning(&cluster.watchdog))
    {
        tracing::warn!("{warning}");
    }
}

/// What a reload needs: where the service files are, what they are checked
/// against, and what a service's steps are built with.
pub(crate) struct Reloader {
    pub(crate) dir: PathBuf,
    pub(crate) cluster: ClusterConfig,
    pub(crate) fencing: bool,
    pub(crate) fip: Arc<Fip>,
    pub(crate) events: UnboundedSender<StepEvent>,
    pub(crate) done: UnboundedSender<Done>,
    pub(crate) agent_socket: PathBuf,
    /// The cluster's ping addresses, as hamond last sent them.
    pub(crate) ping: Vec<IpAddr>,
    /// New definitions of services held or up here, applied once the
    /// service is stopped here.
    pub(crate) deferred: BTreeMap<String, Arc<ServiceConfig>>,
}

/// What the reread files change for this node's services.
#[derive(Debug, Default, PartialEq)]
struct Diff {
    added: Vec<ServiceConfig>,
    changed: Vec<ServiceConfig>,
    removed: Vec<String>,
}

/// Compares the services this node knows (`known`: the newest definition
/// of each) with the files `loaded`; services that do not run on `me` are
/// not this node's.
fn diff(
    known: &BTreeMap<String, Arc<ServiceConfig>>,
    loaded: Vec<ServiceConfig>,
    me: &str,
) -> Diff {
    let mut d = Diff::default();
    let mut seen = BTreeSet::new();
    for cfg in loaded {
        if !cfg.nodes().contains(&me) {
            continue;
        }
        seen.insert(cfg.name.clone());
        match known.get(&cfg.name) {
            None => d.added.push(cfg),
            Some(old) if **old != cfg => d.changed.push(cfg),
            Some(_) => {}
        }
    }
    d.removed = known
        .keys()
        .filter(|n| !seen.contains(*n))
        .cloned()
        .collect();
    d
}

/// Whether this node neither holds the service nor has anything of it up
/// or under way: its definition may be replaced, or it may be forgotten.
fn idle_here(svc: &Service) -> bool {
    !svc.owned() && svc.steps_up().is_empty() && svc.settled()
}

impl Reloader {
    /// The steps of `cfg` on `me`, watched, with the worker that runs them.
    fn steps(
        &self,
        me: &str,
        cfg: &Arc<ServiceConfig>,
    ) -> Result<(Arc<Steps>, UnboundedSender<Job>), String> {
        let steps = Arc::new(Steps::new(
            me,
            cfg.clone(),
            self.fip.clone(),
            self.events.clone(),
            Some(self.agent_socket.clone()),
        )?);
        let watched = steps.clone();
        tokio::spawn(async move {
            if let Err(e) = watched.watch_public_network().await {
                tracing::error!("{e}");
            }
        });
        steps.watch_storage();
        steps.set_ping(self.ping.clone());
        let jobs = worker::spawn(cfg.name.clone(), steps.clone(), self.done.clone());
        Ok((steps, jobs))
    }
}

impl Daemon {
    /// Rereads the service files (`why`: what asked for it) and applies
    /// what changed; see the module documentation.
    pub(super) fn reload(&mut self, why: &str) {
        if self.leaving {
            tracing::info!("service files not reread ({why}): hasvrd is shutting down");
            return;
        }
        let dir = self.reload.dir.clone();
        let loaded = match haschema::service::load_dir(&dir, &self.reload.cluster) {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::error!(
                    "service files in {} not reread ({why}): {e}; nothing changed: fix the file, \
                     then reload again (SIGHUP to hasvrd)",
                    dir.display()
                );
                return;
            }
        };
        warn_short_leases(&loaded, &self.reload.cluster);
        let known = self
            .units
            .iter()
            .map(|(name, unit)| {
                let cfg = self.reload.deferred.get(name).unwrap_or(&unit.cfg);
                (name.clone(), cfg.clone())
            })
            .collect();
        let diff = diff(&known, loaded, &self.me);
        tracing::info!(
            "service files in {} reread ({why}): {} new, {} changed, {} removed",
            dir.display(),
            diff.added.len(),
            diff.changed.len(),
            diff.removed.len()
        );
        let mut forgot = false;
        for name in &diff.removed {
            forgot |= self.forget(name);
        }
        for cfg in diff.changed {
            self.change(cfg);
        }
        let added = self.prepare(diff.added);
        if forgot || !added.is_empty() {
            let services = self
                .units
                .keys()
                .cloned()
                .chain(added.iter().map(|(c, _, _)| c.name.clone()))
                .collect();
            self.send(ToHamond::Services { services });
        }
        for (cfg, steps, jobs) in added {
            self.add(cfg, steps, jobs);
        }
    }

    /// The steps of each new service, leaving out (logged) one whose lock
    /// id is another's or whose steps cannot be built.
    fn prepare(
        &self,
        added: Vec<ServiceConfig>,
    ) -> Vec<(Arc<ServiceConfig>, Arc<Steps>, UnboundedSender<Job>)> {
        let mut locks: BTreeMap<u32, String> =
            self.units.keys().map(|n| (lock_id(n), n.clone())).collect();
        let mut ready = Vec::new();
        for cfg in added {
            let name = cfg.name.clone();
            if let Some(other) = locks.get(&lock_id(&name)) {
                tracing::error!(
                    "new service {name} not added: it maps to the lock number of {other}; rename \
                     one of them in its service file on every node, then reload"
                );
                continue;
            }
            let cfg = Arc::new(cfg);
            match self.reload.steps(&self.me, &cfg) {
                Ok((steps, jobs)) => {
                    locks.insert(lock_id(&name), name);
                    ready.push((cfg, steps, jobs));
                }
                Err(e) => tracing::error!("new service {name} not added: {e}"),
            }
        }
        ready
    }

    /// A new service: brought out until the operator brings it in.
    fn add(&mut self, cfg: Arc<ServiceConfig>, steps: Arc<Steps>, jobs: UnboundedSender<Job>) {
        let name = cfg.name.clone();
        let mut settings = Settings::from_config(&cfg, self.reload.fencing);
        settings.onstart = false;
        let svc = Service::restored(
            settings,
            &self.me,
            self.now(),
            false,
            0,
            self.standby.clone(),
        );
        self.agents
            .set_service(&name, Some(WatchParams::from(cfg.as_ref())));
        tracing::info!(
            "service {name}: new (from {}), brought out: `hactl service bring-in {name}` starts it",
            cfg.file.display()
        );
        self.units.insert(
            name.clone(),
            Unit {
                cfg,
                svc,
                steps,
                jobs,
                advertised: None,
            },
        );
        let up: Vec<String> = self.up.iter().cloned().collect();
        for node in up {
            self.peer_state(&node, &name);
        }
        self.pump(&name);
    }

    /// A removed service file: forgets the service if nothing of it is
    /// held or up here (true), else keeps it (logged).
    fn forget(&mut self, name: &str) -> bool {
        let Some(unit) = self.units.get(name) else {
            return false;
        };
        if !idle_here(&unit.svc) {
            tracing::error!(
                "service {name}: its file was removed, but this node holds it or has it up: it \
                 keeps running here and stays managed; bring it out (`hactl service bring-out \
                 {name}`), then remove its file again"
            );
            return false;
        }
        if self.requests.remove(name).is_some() {
            self.send(ToHamond::Release {
                service: name.to_owned(),
            });
        }
        // Dropping its steps ends its watches; its worker ends with `jobs`.
        self.units.remove(name);
        self.agents.set_service(name, None);
        self.reload.deferred.remove(name);
        self.owners.remove(name);
        self.why.remove(name);
        self.takeovers.remove(name);
        self.peer_services.retain(|(_, s), _| s != name);
        // Nothing of it is kept for a service of the same name added later.
        self.operator.note(name, None);
        let now = self.now();
        self.failures.note(name, std::iter::empty(), now);
        tracing::info!("service {name}: its file was removed: no longer managed here");
        true
    }

    /// A changed service file: the new definition now, or once the service
    /// is stopped here.
    fn change(&mut self, cfg: ServiceConfig) {
        let name = cfg.name.clone();
        let Some(unit) = self.units.get(&name) else {
            return;
        };
        if *unit.cfg == cfg {
            if self.reload.deferred.remove(&name).is_some() {
                tracing::info!("service {name}: its file is back to the definition it runs with");
            }
            return;
        }
        if idle_here(&unit.svc) {
            self.replace(Arc::new(cfg));
        } else {
            tracing::warn!(
                "service {name}: its file changed while this node holds it or has it up: it \
                 keeps running with the definition it started with; the new one applies at its \
                 next start here (bring it out and in again to apply it now)"
            );
            self.reload.deferred.insert(name, Arc::new(cfg));
        }
    }

    /// Applies a deferred new definition of `service` once it is stopped
    /// here.
    pub(super) fn apply_deferred(&mut self, service: &str) {
        let Some(unit) = self.units.get(service) else {
            return;
        };
        if !idle_here(&unit.svc) {
            return;
        }
        if let Some(cfg) = self.reload.deferred.remove(service) {
            self.replace(cfg);
        }
    }

    /// Runs `service` with the definition `cfg` from now on: new steps and
    /// worker, the machine's settings replaced.
    fn replace(&mut self, cfg: Arc<ServiceConfig>) {
        let name = cfg.name.clone();
        let (steps, jobs) = match self.reload.steps(&self.me, &cfg) {
            Ok(built) => built,
            Err(e) => {
                tracing::error!(
                    "service {name}: its new definition is not applied ({e}); it keeps the old \
                     one: fix its file, then reload"
                );
                return;
            }
        };
        let settings = Settings::from_config(&cfg, self.reload.fencing);
        self.agents
            .set_service(&name, Some(WatchParams::from(cfg.as_ref())));
        let Some(unit) = self.units.get_mut(&name) else {
            return;
        };
        unit.svc.replace_settings(settings);
        unit.cfg = cfg;
        unit.steps = steps;
        unit.jobs = jobs;
        tracing::info!("service {name}: its new definition applies");
        let up: Vec<String> = self.up.iter().cloned().collect();
        for node in up {
            self.peer_state(&node, &name);
        }
        self.feed(&name, Input::Timer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const CLUSTER: &str = include_str!("../../../../../etc/cluster.toml");
    const VIP: &str = include_str!("../../../../../etc/services/vip.toml");

    fn service(name: &str, nodes: &str, check: &str) -> ServiceConfig {
        let cluster = ClusterConfig::parse(CLUSTER, Path::new("/etc/hacluster/cluster.toml"))
            .expect("the sample cluster");
        let text = VIP
            .replace("name = \"vip\"", &format!("name = \"{name}\""))
            .replace("standby = [\"beta\"]", nodes)
            .replace("[[ip]]", &format!("check_interval = \"{check}\"\n\n[[ip]]"));
        let file = format!("/etc/hacluster/services/{name}.toml");
        ServiceConfig::parse(&text, Path::new(&file), &cluster).expect("a valid service")
    }

    fn both(name: &str) -> ServiceConfig {
        service(name, "standby = [\"beta\"]", "1s")
    }

    fn known(services: &[ServiceConfig]) -> BTreeMap<String, Arc<ServiceConfig>> {
        services
            .iter()
            .map(|s| (s.name.clone(), Arc::new(s.clone())))
            .collect()
    }

    #[test]
    fn the_same_files_change_nothing() {
        let now = [both("a"), both("b")];
        assert_eq!(diff(&known(&now), now.to_vec(), "alpha"), Diff::default());
    }

    #[test]
    fn added_changed_removed_and_unchanged_services_are_told_apart() {
        let now = [both("kept"), both("edited"), both("gone")];
        let files = vec![
            both("kept"),
            service("edited", "standby = [\"beta\"]", "2s"),
            both("new"),
        ];
        let d = diff(&known(&now), files, "beta");
        assert_eq!(d.added, [both("new")]);
        assert_eq!(d.changed, [service("edited", "standby = [\"beta\"]", "2s")]);
        assert_eq!(d.removed, ["gone"]);
    }

    #[test]
    fn services_of_other_nodes_are_not_this_nodes() {
        // gamma is in none of the services' nodes (the files moved them
        // away): what it ran is removed, nothing is added.
        let d = diff(&known(&[both("a")]), vec![both("a"), both("b")], "gamma");
        assert_eq!(d.removed, ["a"]);
        assert!(d.added.is_empty() && d.changed.is_empty());
    }
}
