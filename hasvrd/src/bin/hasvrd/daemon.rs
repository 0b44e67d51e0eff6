//! hasvrd's loop: one state machine ([`hasvrd::service::Service`]) per
//! service of this node, fed with what hamond says (ownership, peers,
//! fencing, forwarded commands, isolation; the cluster's ping addresses go
//! to each service's ping watch), the workers' results, the agents' reports,
//! the public network (each service's carrier watch and IP keeper,
//! [`StepEvent`]), the storage path (each service's storage watch) and the
//! operator's commands; their outputs carried out by
//! the workers (steps, probes), sent to hamond (lock requests and releases,
//! advertised states and whether this node can host, [`Service::can_host`])
//! or logged. A command the machine would refuse
//! ([`Service::refusal`]) is answered with the reason, and not forwarded.
//!
//! Every state change (with its cause), take-over (with why and how long
//! it took), stall and operator command is sent to hamond as an event for
//! the cluster's history and alerts.
//!
//! At start it connects to hamond first and learns which services this
//! node still owns, then looks at what is up here ([`Steps::held_here`] and
//! a probe): an owner adopts what runs without restarting it, a non-owner
//! stops it. Each machine is built with the operator's bring-out or stop
//! kept for it ([`crate::operator`]), so a brought-out service is left as
//! it is (adopted, not watched) and a stopped one stays stopped, and
//! neither asks for its lock. On SIGTERM/SIGINT every service is stopped (proven) and
//! released for a peer to take over before hasvrd exits. On SIGHUP, or
//! when hamond says the service files changed, it rereads them
//! ([`reload`]).

use crate::link::{self, Link, Welcome};
use crate::worker::{self, Done, Job, Outcome};
use haschema::ctl::{Request, Response, ServiceOp};
use haschema::ctl_server;
use haschema::event::{Event, EventKind, Severity};
use haschema::service::ServiceConfig;
use haschema::svclink::{ToHamond, ToHasvrd};
use hasvrd::agent::{Agents, Event as AgentEvent, Watch};
use hasvrd::fip::{Fip, FipConfig, ProbeConfig};
use hasvrd::service::{Cause, Input, Level, Output, Service, Settings, State, Status, Step};
use hasvrd::steps::{StepEvent, Steps};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::Instant;

pub(crate) mod reload;

/// What the daemon runs with.
pub struct Setup {
    pub me: String,
    /// Whether the cluster has fencing devices.
    pub fencing: bool,
    pub services: Vec<ServiceConfig>,
    pub link: PathBuf,
    pub socket: PathBuf,
    pub agent_socket: PathBuf,
    pub gid: Option<u32>,
    /// The services directory and the cluster config its files are
    /// checked against, reread on SIGHUP or when hamond says they changed
    /// ([`reload`]).
    pub services_dir: PathBuf,
    /// Where the control socket's commands are recorded.
    pub audit: haschema::audit::AuditLog,
    pub cluster: haschema::config::ClusterConfig,
    /// Where node standby is persisted ([`crate::standby`]).
    pub standby_file: PathBuf,
    /// Where the fail counts are persisted ([`crate::failures`]).
    pub failures_file: PathBuf,
    /// Where the operator's per-service choices (bring-out, stop) are
    /// persisted ([`crate::operator`]).
    pub operator_file: PathBuf,
}

/// One service on this node.
pub(crate) struct Unit {
    pub(crate) cfg: Arc<ServiceConfig>,
    pub(crate) svc: Service,
    steps: Arc<Steps>,
    jobs: mpsc::UnboundedSender<Job>,
    /// State, can host and fail count, as last advertised.
    advertised: Option<(State, bool, u32)>,
}

pub(crate) struct Daemon {
    pub(crate) me: String,
    pub(crate) units: BTreeMap<String, Unit>,
    hamond: mpsc::UnboundedSender<ToHamond>,
    /// The task writing to hamond, awaited at exit so the last releases
    /// reach it.
    writer: tokio::task::JoinHandle<()>,
    pub(crate) owners: BTreeMap<String, Option<String>>,
    up: BTreeSet<String>,
    /// What the other nodes advertised: (node, service) -> (state, can
    /// host, fail count).
    pub(crate) peer_services: BTreeMap<(String, String), (String, bool, u32)>,
    /// The lock requests outstanding, sent again after a reconnect.
    pub(crate) requests: BTreeMap<String, u8>,
    origin: Instant,
    agents: Agents,
    leaving: bool,
    /// Why each service last had to move (a peer lost, a command, a
    /// failure), since when, and what the wait from then to the grant is
    /// called when this node waits through it (fencing): the cause of a
    /// take-over here.
    why: BTreeMap<String, (Instant, String, Option<&'static str>)>,
    /// Starts under way here after a grant, since when: a take-over when
    /// a reason to move is known by the time the application runs.
    takeovers: BTreeMap<String, Instant>,
    /// Why this node is in standby, while it is, and where that is kept.
    standby: Option<String>,
    /// What a reload of the service files needs ([`reload`]).
    reload: reload::Reloader,
    standby_file: PathBuf,
    /// The fail counts as persisted.
    failures: crate::failures::Saved,
    /// The operator's per-service choices as persisted.
    operator: crate::operator::Saved,
    /// What the group rules hold back ([`crate::group`]).
    pub(crate) group: crate::group::Held,
}

/// Runs until SIGTERM or SIGINT, then stops every service here.
pub async fn run(setup: Setup) -> Result<(), String> {
    let (line_tx, mut lines) = mpsc::unbounded_channel();
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let (event_tx, mut step_events) = mpsc::unbounded_channel();
    let (calls_tx, mut calls) = mpsc::channel(16);
    let (relink_tx, mut relinks) = mpsc::unbounded_channel::<(Link, Welcome)>();
    let fip = Arc::new(
        Fip::new(FipConfig {
            probe: ProbeConfig::failover(),
            ..FipConfig::default()
        })
        .map_err(|e| format!("cannot start the floating-IP driver: {e}"))?,
    );
    let mut configs = Vec::new();
    for cfg in setup.services {
        if cfg.nodes().contains(&setup.me.as_str()) {
            configs.push(Arc::new(cfg));
        } else {
            tracing::info!(
                "service {} does not run on {} (its nodes: {}): not managed here",
                cfg.name,
                setup.me,
                cfg.nodes().join(", ")
            );
        }
    }
    let names: Vec<String> = configs.iter().map(|c| c.name.clone()).collect();
    let (link, welcome) = link::connect(&setup.link, &names, line_tx.clone()).await?;
    restart_if_config_changed(&setup.cluster);
    if welcome.node != setup.me {
        return Err(format!(
            "hamond runs as node {} but hasvrd was started as {}; give both the same --node",
            welcome.node, setup.me
        ));
    }
    let agents = Agents::start(
        &setup.agent_socket,
        setup.gid,
        Watch::of_services(configs.iter().map(|c| c.as_ref())),
    )
    .map_err(|e| format!("cannot serve the agent socket: {e}"))?;
    let listener = ctl_server::bind(&setup.socket, setup.gid).map_err(|e| {
        format!(
            "cannot create the control socket {}: {e}",
            setup.socket.display()
        )
    })?;
    tokio::spawn(ctl_server::serve(
        listener,
        setup.gid,
        calls_tx,
        setup.audit.clone(),
    ));
    // Early enough for the persisted failures still counted.
    let origin = crate::failures::origin(&configs);
    let (failures, read) = crate::failures::Saved::load(setup.failures_file, origin.elapsed());
    if let Err(e) = read {
        tracing::error!(
            severity = "crit",
            "{e}; the fail counts here start from zero"
        );
    }
    let standby = crate::standby::load(&setup.standby_file).unwrap_or_else(|e| {
        tracing::error!(
            severity = "crit",
            "{e}; this node stays in standby (takes no service) until `hactl node standby off`"
        );
        Some("its standby file is unreadable".into())
    });
    if let Some(why) = &standby {
        tracing::warn!(
            "node standby ({why}), kept in {}: this node takes no service until `hactl node \
             standby off`",
            setup.standby_file.display()
        );
    }
    let (mut operator, read) = crate::operator::Saved::load(setup.operator_file);
    if let Err(e) = read {
        tracing::error!(
            severity = "crit",
            "{e}; no service's bring-out or stop is restored here: each follows its `onstart`; \
             check `hactl service status`, and bring out or stop again what must stay so"
        );
    }
    operator.retain(|s| configs.iter().any(|c| c.name == s));
    let held: BTreeSet<&str> = welcome.held.iter().map(String::as_str).collect();
    let mut units = BTreeMap::new();
    for cfg in configs {
        let steps = Arc::new(Steps::new(
            &setup.me,
            cfg.clone(),
            fip.clone(),
            event_tx.clone(),
            Some(setup.agent_socket.clone()),
        )?);
        // Whether this node's NICs can carry the service's IPs, told to its
        // machine from the start and whether or not it runs here.
        if let Err(e) = steps.watch_public_network().await {
            tracing::error!("{e}");
        }
        // Likewise whether it reaches the service's storage.
        steps.watch_storage();
        let owned = held.contains(cfg.name.as_str());
        let up = found_up(&cfg, &steps, owned).await;
        if up > 0 {
            tracing::info!(
                "service {}: found {} up here{}",
                cfg.name,
                Step::ORDER[..up]
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                if owned {
                    "; this node owns it: adopting it without a restart"
                } else {
                    "; this node does not own it: stopping it"
                }
            );
        }
        if owned {
            for &step in &Step::ORDER[..up] {
                // Watch again what runs: the IPs' carrier, the agent.
                if let Err(e) = steps.resume(step).await {
                    tracing::error!("service {}: cannot resume {step}: {e}", cfg.name);
                }
            }
        }
        let mut settings = Settings::from_config(&cfg, setup.fencing);
        let choice = operator.restored(&cfg.name);
        settings.onstart = crate::operator::Choice::onstart(choice, cfg.onstart);
        let mut svc = Service::restored(
            settings,
            &setup.me,
            origin.elapsed(),
            owned,
            up,
            standby.clone(),
        );
        crate::operator::restore(&mut svc, &cfg.name, choice, origin.elapsed());
        svc.restore_failures(origin.elapsed(), &failures.restored(&cfg.name));
        let jobs = worker::spawn(cfg.name.clone(), steps.clone(), done_tx.clone());
        units.insert(
            cfg.name.clone(),
            Unit {
                cfg,
                svc,
                steps,
                jobs,
                advertised: None,
            },
        );
    }
    let mut d = Daemon {
        me: setup.me,
        units,
        hamond: link.tx,
        writer: link.writer,
        owners: BTreeMap::new(),
        up: BTreeSet::new(),
        peer_services: BTreeMap::new(),
        requests: BTreeMap::new(),
        group: Default::default(),
        origin,
        agents,
        leaving: false,
        why: BTreeMap::new(),
        takeovers: BTreeMap::new(),
        standby,
        reload: reload::Reloader {
            dir: setup.services_dir,
            cluster: setup.cluster,
            fencing: setup.fencing,
            fip,
            events: event_tx,
            done: done_tx,
            agent_socket: setup.agent_socket.clone(),
            ping: Vec::new(),
            deferred: BTreeMap::new(),
        },
        standby_file: setup.standby_file,
        failures,
        operator,
    };
    tracing::info!(
        "hasvrd started on {} with {} service(s): {}",
        d.me,
        d.units.len(),
        names.join(", ")
    );
    for node in welcome.up {
        d.peer(node, true);
    }
    d.pump_all();
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut leave_by: Option<Instant> = None;
    loop {
        if d.leaving && d.units.values().all(|u| u.svc.settled()) {
            tracing::info!("every service is stopped and released here: hasvrd exits");
            break;
        }
        if leave_by.is_some_and(|t| Instant::now() >= t) {
            tracing::error!(
                "services still stopping when hasvrd's shutdown time ran out: exiting anyway; \
                 check them with `hactl service status` on the other nodes"
            );
            break;
        }
        let wake = d
            .next_deadline()
            .into_iter()
            .chain(leave_by)
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            () = tokio::time::sleep_until(wake) => d.feed_all(&|| Input::Timer),
            Some(line) = lines.recv() => match line {
                Some(msg) => d.on_hamond(msg),
                None => {
                    tracing::warn!("hamond went away; services keep running, reconnecting");
                    let (path, names, line_tx, relink_tx) =
                        (setup.link.clone(), d.units.keys().cloned().collect::<Vec<_>>(), line_tx.clone(), relink_tx.clone());
                    tokio::spawn(async move {
                        match link::connect(&path, &names, line_tx).await {
                            Ok(linked) => { let _ = relink_tx.send(linked); }
                            Err(e) => tracing::error!(severity = "crit", "{e}"),
                        }
                    });
                }
            },
            Some((link, welcome)) = relinks.recv() => d.relinked(link, welcome),
            Some(result) = done.recv() => d.on_done(result),
            Some(event) = step_events.recv() => d.on_step_event(event),
            Some(event) = d.agents.next_event() => d.on_agent(event),
            Some(call) = calls.recv() => {
                let response = d.answer(call.request, call.uid);
                let _ = call.reply.send(response);
            }
            _ = term.recv(), if !d.leaving => leave_by = Some(d.shut_down()),
            _ = int.recv(), if !d.leaving => leave_by = Some(d.shut_down()),
            _ = hup.recv() => d.reload("SIGHUP"),
        }
    }
    // Let the last releases and requests to take over reach hamond.
    let Daemon { hamond, writer, .. } = d;
    drop(hamond);
    if tokio::time::timeout(Duration::from_secs(2), writer)
        .await
        .is_err()
    {
        tracing::warn!("hamond did not take hasvrd's last messages within 2 s");
    }
    Ok(())
}

/// How many steps of a service are up here, in start order: all volumes
/// mounted, then all floating IPs held, then the application running. For a
/// node that does not own it, anything up counts as all (so all is stopped;
/// stops are idempotent).
async fn found_up(cfg: &ServiceConfig, steps: &Steps, owned: bool) -> usize {
    let held = steps.held_here().await;
    let running = steps.probe().await != Status::NotRunning;
    if !owned {
        return if held.is_empty() && !running {
            0
        } else {
            Step::ORDER.len()
        };
    }
    let volumes = cfg
        .volumes
        .iter()
        .all(|v| held.volumes.contains(&v.mount_point));
    let ips = cfg
        .ips
        .iter()
        .all(|ip| held.ips.iter().any(|(a, _)| *a == ip.addr));
    match (volumes, ips, running && held.unknown.is_empty()) {
        (false, _, _) => 0,
        (true, false, _) => 1,
        (true, true, false) => 2,
        (true, true, true) => 3,
    }
}

impl Daemon {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.units
            .values()
            .filter_map(|u| u.svc.next_deadline())
            .min()
            .map(|t| self.origin + t)
    }

    /// Feeds `input` to one service and carries out what follows.
    pub(crate) fn feed(&mut self, service: &str, input: Input) {
        let owner = self.owners.get(service).cloned().flatten();
        if let Some((reason, wait)) = reason(&input, owner.as_deref()) {
            // A fence ends the wait that began with the loss.
            let since = match self.why.get(service) {
                Some((since, _, Some(FENCING))) if wait == Some(FENCING) => *since,
                _ => Instant::now(),
            };
            self.why.insert(service.to_owned(), (since, reason, wait));
        }
        let now = self.now();
        let Some(unit) = self.units.get_mut(service) else {
            tracing::warn!("no service {service} on this node: ignored");
            return;
        };
        unit.svc.handle(now, input);
        self.pump(service);
    }

    fn feed_all(&mut self, input: &dyn Fn() -> Input) {
        let names: Vec<String> = self.units.keys().cloned().collect();
        for name in names {
            self.feed(&name, input());
        }
    }

    fn pump_all(&mut self) {
        let names: Vec<String> = self.units.keys().cloned().collect();
        for name in names {
            self.pump(&name);
        }
    }

    /// Carries out one service's outputs, then advertises its state.
    fn pump(&mut self, service: &str) {
        loop {
            let Some(unit) = self.units.get_mut(service) else {
                return;
            };
            let Some(output) = unit.svc.poll() else {
                break;
            };
            match output {
                Output::Start(step) => {
                    let _ = unit.jobs.send(Job::Start(step));
                }
                Output::Stop(step) => {
                    if !self.group_holds_stop(service, step) {
                        self.stop_job(service, step);
                    }
                }
                Output::Probe => {
                    let _ = unit.jobs.send(Job::Probe);
                }
                Output::RequestOwnership { priority } => {
                    let priority = u8::try_from(priority).unwrap_or(u8::MAX);
                    if self.group_holds_request(service, priority) {
                        continue;
                    }
                    self.requests.insert(service.to_owned(), priority);
                    self.send(ToHamond::Request {
                        service: service.to_owned(),
                        priority,
                    });
                }
                Output::ReleaseOwnership => {
                    self.group_released(service);
                    self.requests.remove(service);
                    self.send(ToHamond::Release {
                        service: service.to_owned(),
                    });
                }
                Output::AskPeerToTakeOver { node: Some(node) } => {
                    tracing::info!("service {service}: asking {node} to take it over");
                    let why = self.why.get(service).map(|(_, why, _)| format!(": {why}"));
                    self.send(ToHamond::Forward {
                        node,
                        service: service.to_owned(),
                        op: ServiceOp::TakeOver,
                        by: format!("hasvrd on {}{}", self.me, why.unwrap_or_default()),
                    });
                    self.group_member_left(service);
                }
                Output::AskPeerToFence { node } => {
                    let reason = unit.svc.fault().map_or_else(
                        || "a stop failed".to_owned(),
                        |f| format!("the stop of {} failed ({})", f.step, f.reason),
                    );
                    self.send(ToHamond::FenceMe {
                        service: service.to_owned(),
                        peer: node,
                        reason,
                    });
                }
                Output::AskPeerToTakeOver { node: None } => {
                    tracing::warn!(
                        "service {service}: released, and no other node is up and able to take it over"
                    );
                }
                Output::Alert { level, text } => match level {
                    Level::Info => tracing::info!("{text}"),
                    Level::Warning => tracing::warn!("{text}"),
                    Level::Error => tracing::error!("{text}"),
                    Level::Emergency => tracing::error!(severity = "emerg", "{text}"),
                },
                Output::StopPettingWatchdog => {
                    tracing::error!(
                        severity = "emerg",
                        "service {service}: a stop failed with force_reboot: hamond stops \
                         petting the watchdog, which resets this node"
                    );
                    self.send(ToHamond::SelfFence {
                        service: service.to_owned(),
                        reason: "a stop failed and the service has force_reboot".into(),
                    });
                }
                Output::StateChanged { from, to, cause } => {
                    tracing::info!("service {service}: {from} -> {to} ({cause})");
                    self.state_changed(service, from, to, cause);
                }
            }
        }
        if let Some(unit) = self.units.get(service) {
            let now = self.origin.elapsed();
            self.failures.note(service, unit.svc.failure_times(), now);
            let choice = crate::operator::Choice::of(unit.svc.managed(), unit.svc.stopped());
            self.operator.note(service, choice.kept(unit.cfg.onstart));
        }
        self.regroup();
        self.advertise(service);
        self.apply_deferred(service);
    }

    /// Stops `step` of `service` (its agent disarmed first).
    pub(crate) fn stop_job(&mut self, service: &str, step: Step) {
        if step == Step::Application {
            self.agents.disarm(service);
        }
        if let Some(unit) = self.units.get(service) {
            let _ = unit.jobs.send(Job::Stop(step));
        }
    }

    /// Sends a state change to hamond; a grant after a move starts a
    /// take-over's record.
    fn state_changed(&mut self, service: &str, from: State, to: State, cause: String) {
        let (kind, severity, what) = match to {
            State::Stalled => (
                EventKind::Stall,
                Severity::Emergency,
                format!(
                    "{from} -> {to}: it cannot run until its holder is fenced or confirmed off"
                ),
            ),
            State::ErrorAct | State::ErrorStb => (
                EventKind::Service,
                Severity::Emergency,
                format!("{from} -> {to}: fix it, then run `hactl service cleanup {service}`"),
            ),
            _ => (
                EventKind::Service,
                Severity::Info,
                format!("{from} -> {to}"),
            ),
        };
        let event = Event::now(&self.me, kind, severity, what).about(service);
        self.send(ToHamond::Event(event.because(cause)));
        let active = [State::Active, State::ActiveAct, State::ActiveStb];
        if active.contains(&from) && to == State::Standby {
            // Moved away from here: its reason is spent.
            self.why.remove(service);
        }
        if matches!(from, State::Standby | State::Stalled) && active.contains(&to) {
            self.takeovers.insert(service.to_owned(), Instant::now());
        }
    }

    /// The application of `service` runs after a grant: with a reason to
    /// move (which may arrive just after the grant, with the peer's
    /// request), that was a take-over, sent with how long it took.
    fn took_over(&mut self, service: &str, granted: Instant) {
        let Some((since, why, wait)) = self.why.remove(service) else {
            return;
        };
        let what = format!("took over {service}");
        let mut event = Event::now(&self.me, EventKind::Failover, Severity::Warning, what)
            .about(service)
            .because(why);
        if let Some(wait) = wait
            && since < granted
        {
            event = event.phase(wait, granted - since);
        }
        self.send(ToHamond::Event(event.phase("start", granted.elapsed())));
    }

    /// Tells the other nodes this node's state of `service`, when it
    /// changed.
    fn advertise(&mut self, service: &str) {
        let leaving = self.leaving;
        let Some(unit) = self.units.get_mut(service) else {
            return;
        };
        let can_host = !leaving && unit.svc.can_host();
        let now = (unit.svc.state(), can_host, unit.svc.fail_count());
        if unit.advertised != Some(now) {
            unit.advertised = Some(now);
            self.send(ToHamond::Advertise {
                service: service.to_owned(),
                state: now.0.to_string(),
                can_host,
                failures: now.2,
            });
        }
    }

    pub(crate) fn send(&mut self, msg: ToHamond) {
        if self.hamond.send(msg).is_err() {
            tracing::debug!("hamond is away: message dropped (sent again after the reconnect)");
        }
    }

    fn relinked(&mut self, link: Link, welcome: Welcome) {
        tracing::info!("reconnected to hamond");
        restart_if_config_changed(&self.reload.cluster);
        self.hamond = link.tx;
        self.writer = link.writer;
        let held: BTreeSet<String> = welcome.held.into_iter().collect();
        let names: Vec<String> = self.units.keys().cloned().collect();
        for name in &names {
            let owned = self.units[name].svc.owned();
            match (owned, held.contains(name)) {
                (true, false) => self.feed(name, Input::OwnershipLost),
                (false, true) => self.feed(name, Input::OwnershipGranted),
                _ => {}
            }
        }
        let requests: Vec<(String, u8)> =
            self.requests.iter().map(|(s, p)| (s.clone(), *p)).collect();
        for (service, priority) in requests {
            self.send(ToHamond::Request { service, priority });
        }
        for unit in self.units.values_mut() {
            unit.advertised = None;
        }
        let up: BTreeSet<String> = welcome.up.into_iter().collect();
        let was: Vec<String> = self.up.iter().cloned().collect();
        for node in was.into_iter().filter(|n| !up.contains(n)) {
            self.peer(node, false);
        }
        for node in up {
            self.peer(node, true);
        }
        self.pump_all();
    }

    /// A node joined or left; tells every service it belongs to.
    fn peer(&mut self, node: String, up: bool) {
        if up {
            self.up.insert(node.clone());
        } else {
            self.up.remove(&node);
            self.peer_services.retain(|(n, _), _| *n != node);
        }
        let names: Vec<String> = self.units.keys().cloned().collect();
        for name in names {
            self.peer_state(&node, &name);
        }
        if up {
            self.reannounce();
        }
    }

    /// Feeds a service what is known of `node`.
    fn peer_state(&mut self, node: &str, service: &str) {
        let Some(unit) = self.units.get(service) else {
            return;
        };
        if node == self.me || !unit.cfg.nodes().contains(&node) {
            return;
        }
        let up = self.up.contains(node);
        let can_host = up
            && self
                .peer_services
                .get(&(node.to_owned(), service.to_owned()))
                .is_some_and(|(_, c, _)| *c);
        self.feed(
            service,
            Input::PeerState {
                node: node.to_owned(),
                up,
                can_host,
            },
        );
    }

    /// A node came back: announce the floating IPs held here again, so
    /// that neighbours which followed another claimant come back.
    fn reannounce(&self) {
        for unit in self.units.values() {
            if unit.svc.owned() && unit.svc.steps_up().contains(&Step::Ips) {
                let steps = unit.steps.clone();
                tokio::spawn(async move { steps.reannounce().await });
            }
        }
    }

    fn on_hamond(&mut self, msg: ToHasvrd) {
        match msg {
            ToHasvrd::Granted { service } => self.feed(&service, Input::OwnershipGranted),
            ToHasvrd::Lost { service } => self.feed(&service, Input::OwnershipLost),
            ToHasvrd::Owner { service, holder } => {
                self.owners.insert(service.clone(), holder.clone());
                self.feed(&service, Input::OwnerIs(holder));
            }
            ToHasvrd::OwnerLost { service, node } => {
                self.feed(&service, Input::OwnerLostUncleanly(node))
            }
            ToHasvrd::Peer { node, up } => self.peer(node, up),
            ToHasvrd::PeerService {
                node,
                service,
                state,
                can_host,
                failures,
            } => {
                self.peer_services
                    .insert((node.clone(), service.clone()), (state, can_host, failures));
                self.peer_state(&node, &service);
            }
            ToHasvrd::Fenced { node } => self.feed_all(&|| Input::Fenced(node.clone())),
            ToHasvrd::FenceConfirmed { node } => {
                self.feed_all(&|| Input::FenceConfirmed(node.clone()))
            }
            ToHasvrd::Command { service, op, by } => self.feed(&service, Input::Command { op, by }),
            ToHasvrd::ServicesChanged => self.reload("hamond: the service files changed"),
            ToHasvrd::ClusterChanged => restart_for_new_config("the cluster config changed"),
            ToHasvrd::PingAddresses { addresses } => {
                self.reload.ping = addresses.clone();
                for unit in self.units.values() {
                    unit.steps.set_ping(addresses.clone());
                }
            }
            ToHasvrd::Isolation { isolated, reason } => {
                let why = isolated.then_some(reason);
                self.feed_all(&|| Input::Isolation(why.clone()))
            }
            // Answered by this loop, so a hung loop stops the watchdog's pets.
            ToHasvrd::Ping { seq } => self.send(ToHamond::Pong { seq }),
            ToHasvrd::Welcome { .. } | ToHasvrd::Refused { .. } => {
                tracing::warn!("hamond sent a second welcome: ignored")
            }
        }
    }

    fn on_done(&mut self, done: Done) {
        if let Outcome::Started(step, result) = &done.result
            && let Some(granted) = self.takeovers.remove(&done.service)
        {
            match result {
                Ok(()) if *step == Step::Application => self.took_over(&done.service, granted),
                Ok(()) => {
                    self.takeovers.insert(done.service.clone(), granted);
                }
                // The failed start is its own state change.
                Err(_) => {}
            }
        }
        let input = match done.result {
            Outcome::Started(step, Ok(())) => Input::Started(step),
            Outcome::Started(step, Err(e)) => Input::StartFailed(step, e),
            Outcome::Stopped(step, Ok(())) => Input::Stopped(step),
            Outcome::Stopped(step, Err(e)) => Input::StopFailed(step, e),
            Outcome::Probed(status) => Input::StatusProbe(status),
        };
        self.feed(&done.service, input);
    }

    fn on_step_event(&mut self, event: StepEvent) {
        match event {
            StepEvent::AgentExited { service, how } => {
                tracing::warn!("service {service}: its agent exited ({how})");
                self.agents.agent_exited(&service, how);
            }
            StepEvent::PublicNetworkLost { service, reason } => {
                self.feed(&service, Input::AgentFailed(Cause::PublicNetwork(reason)))
            }
            StepEvent::PublicNetworkBack { service } => {
                self.feed(&service, Input::PublicNetworkBack)
            }
            StepEvent::StorageLost { service, reason } => {
                self.feed(&service, Input::AgentFailed(Cause::Storage(reason)))
            }
            StepEvent::StorageBack { service } => self.feed(&service, Input::StorageBack),
            StepEvent::IpMoved {
                service,
                addr,
                from_nic,
                to_nic,
            } => tracing::warn!(
                "service {service}: floating IP {addr} moved from {} to {to_nic}",
                from_nic.as_deref().unwrap_or("no NIC")
            ),
        }
    }

    fn on_agent(&mut self, event: AgentEvent) {
        match event {
            AgentEvent::AgentFailed { service, cause } => self.feed(
                &service,
                Input::AgentFailed(Cause::Application(cause.to_string())),
            ),
            AgentEvent::Command {
                verb,
                service,
                requested_by,
            } => {
                let op = match verb {
                    haschema::agent::Verb::BringIn => ServiceOp::BringIn,
                    haschema::agent::Verb::BringOut => ServiceOp::BringOut,
                    haschema::agent::Verb::Failover => ServiceOp::FailOver,
                };
                let by = format!("apicmd (uid {requested_by})");
                if let Err(e) = self.command(op, &service, &by) {
                    tracing::warn!("{by}: {e}");
                }
            }
            AgentEvent::AgentOpened { service, uid, pid } => {
                tracing::info!("service {service}: agent opened (uid {uid}, pid {pid:?})")
            }
            AgentEvent::AgentClosed { service, uid, pid } => {
                tracing::info!("service {service}: agent closed (uid {uid}, pid {pid:?})")
            }
            AgentEvent::CheckLate { service, late } => tracing::warn!(
                "service {service}: the agent check ran {late:?} late (hasvrd was not scheduled); \
                 its window starts over"
            ),
        }
    }

    fn answer(&mut self, request: Request, uid: Option<u32>) -> Response {
        match request {
            Request::Services => Response::Services {
                services: crate::status::services(self),
            },
            Request::Service { op, service, node } => {
                let by = self.by(uid);
                let result = match node {
                    Some(node) => self.command_on(op, &service, &node, &by),
                    None => self.command(op, &service, &by),
                };
                match result {
                    Ok(message) => Response::Done { message },
                    Err(message) => Response::Error { message },
                }
            }
            Request::NodeStandby { on } => {
                let by = self.by(uid);
                match self.node_standby(on, &by) {
                    Ok(message) => Response::Done { message },
                    Err(message) => Response::Error { message },
                }
            }
            Request::Status
            | Request::FenceConfirm { .. }
            | Request::History { .. }
            | Request::AlertTest
            | Request::FenceTest { .. }
            | Request::ConfigList
            | Request::ConfigGet { .. }
            | Request::ConfigPut { .. }
            | Request::Nics { .. } => Response::Error {
                message:
                    "hasvrd runs the services; ask hamond for this (hactl status, fence, history, alert)"
                        .into(),
            },
        }
    }

    /// Who asked on the control socket, for the logs and the history.
    fn by(&self, uid: Option<u32>) -> String {
        match uid {
            Some(uid) => format!("hactl (uid {uid}) on {}", self.me),
            None => format!("hactl on {}", self.me),
        }
    }

    /// `hactl node standby on|off` by `by`: persisted first (nothing
    /// changes if it cannot be), then told to every service's machine.
    fn node_standby(&mut self, on: bool, by: &str) -> Result<String, String> {
        let me = self.me.clone();
        if self.leaving {
            return Err(format!("hasvrd is shutting down on {me}"));
        }
        if on == self.standby.is_some() {
            let is = if on { "already" } else { "not" };
            return Ok(format!("{me} is {is} in standby"));
        }
        let why = on.then(|| by.to_owned());
        crate::standby::store(&self.standby_file, why.as_deref())?;
        let (what, message) = if on {
            (
                "node standby on",
                format!("{me} is in standby: its services move to able peers, and it takes none"),
            )
        } else {
            (
                "node standby off",
                format!(
                    "{me} left standby: it can host again (switchback decides whether services \
                     come back)"
                ),
            )
        };
        tracing::info!("{what} by {by}: {message}");
        let event = Event::now(&me, EventKind::Operator, Severity::Info, what.to_owned());
        self.send(ToHamond::Event(event.because(by)));
        self.standby = why.clone();
        self.feed_all(&|| Input::Standby(why.clone()));
        Ok(message)
    }

    /// An operator's command on one service (its group's rules are
    /// applied before, [`Daemon::command`]), sent where it acts: TakeOver
    /// here; FailOver to the holder; the others here and to every other
    /// node of the service.
    pub(crate) fn command_one(
        &mut self,
        op: ServiceOp,
        service: &str,
        by: &str,
    ) -> Result<String, String> {
        if self.leaving {
            return Err("hasvrd is shutting down on this node".into());
        }
        let Some(unit) = self.units.get(service) else {
            return Err(format!(
                "no service {service} on {}; `hactl service status` lists them",
                self.me
            ));
        };
        if let Some(why) = unit.svc.refusal(op) {
            // Only where the command acts here (a FailOver acts on the
            // holder, which may be another node).
            let here = match op {
                ServiceOp::FailOver => {
                    self.owners.get(service).cloned().flatten() == Some(self.me.clone())
                }
                _ => true,
            };
            if here {
                tracing::warn!("service {service}: {} by {by} refused: {why}", op.as_str());
                return Err(format!(
                    "{} of {service} refused on {}: {why}",
                    op.as_str(),
                    self.me
                ));
            }
        }
        if op == ServiceOp::Stop
            && let Some(why) = self.stop_refusal(service)
        {
            tracing::warn!("service {service}: stop by {by} refused: {why}");
            return Err(format!("stop of {service} refused on {}: {why}", self.me));
        }
        tracing::info!("service {service}: {} by {by}", op.as_str());
        let others: Vec<String> = unit
            .cfg
            .nodes()
            .into_iter()
            .filter(|n| *n != self.me && self.up.contains(*n))
            .map(str::to_owned)
            .collect();
        let what = format!("{} {service}", op.as_str());
        let event = Event::now(&self.me, EventKind::Operator, Severity::Info, what);
        self.send(ToHamond::Event(event.about(service).because(by)));
        let owner = self.owners.get(service).cloned().flatten();
        let forward = |d: &mut Daemon, node: String, op: ServiceOp| {
            d.send(ToHamond::Forward {
                node,
                service: service.to_owned(),
                op,
                by: by.to_owned(),
            })
        };
        match op {
            ServiceOp::TakeOver => {
                self.feed(service, Input::Command { op, by: by.into() });
                if let Some(holder) = owner.filter(|h| *h != self.me) {
                    forward(self, holder.clone(), ServiceOp::FailOver);
                    return Ok(format!(
                        "{} requested the service; {holder} was asked to hand it over",
                        self.me
                    ));
                }
                Ok(format!("{} requested the service", self.me))
            }
            ServiceOp::FailOver => match owner {
                Some(holder) if holder == self.me => {
                    self.feed(service, Input::Command { op, by: by.into() });
                    Ok(format!("{} stops it for the best able peer", self.me))
                }
                Some(holder) if self.up.contains(&holder) => {
                    forward(self, holder.clone(), op);
                    Ok(format!("{holder} was asked to move it away"))
                }
                Some(holder) => Err(format!(
                    "{holder} holds {service} and is not up: nothing to fail over from here"
                )),
                None => Err(format!("nobody holds {service}: nothing to fail over")),
            },
            _ => {
                self.feed(service, Input::Command { op, by: by.into() });
                for node in &others {
                    forward(self, node.clone(), op);
                }
                Ok(format!(
                    "{} on {}{}",
                    op.as_str(),
                    self.me,
                    if others.is_empty() {
                        String::new()
                    } else {
                        format!(" and {}", others.join(", "))
                    }
                ))
            }
        }
    }

    /// Why a Stop of `service` would not act where it must, as far as this
    /// node knows (its own machine's refusal aside): the holder is another
    /// node that is not up, or another node advertised the service in
    /// error (its machine refuses a Stop until Cleanup).
    fn stop_refusal(&self, service: &str) -> Option<String> {
        if let Some(Some(holder)) = self.owners.get(service)
            && *holder != self.me
            && !self.up.contains(holder)
        {
            return Some(format!(
                "{holder} holds it and is not up, so the stop cannot reach it; stop it again \
                 once {holder} is fenced (or `hactl fence confirm {holder}`)"
            ));
        }
        self.peer_services
            .iter()
            .find(|((node, s), (state, ..))| {
                s == service && self.up.contains(node) && state.starts_with("ERROR")
            })
            .map(|((node, _), (state, ..))| {
                format!("it is {state} on {node}; fix the cause and Cleanup first")
            })
    }

    /// `hactl service cleanup SERVICE NODE`: the cleanup on `node` alone,
    /// here or forwarded to it; any other command refuses a node.
    fn command_on(
        &mut self,
        op: ServiceOp,
        service: &str,
        node: &str,
        by: &str,
    ) -> Result<String, String> {
        if op != ServiceOp::Cleanup {
            return Err(format!(
                "{} takes no NODE (only cleanup does); leave it out",
                op.as_str()
            ));
        }
        let Some(unit) = self.units.get(service) else {
            return Err(format!(
                "no service {service} on {}; `hactl service status` lists them",
                self.me
            ));
        };
        let target = crate::failures::cleanup_target(
            service,
            &unit.cfg.nodes(),
            &self.me,
            |n| self.up.contains(n),
            node,
        )?;
        tracing::info!("service {service}: {} on {node} by {by}", op.as_str());
        let what = format!("{} {service} on {node}", op.as_str());
        let event = Event::now(&self.me, EventKind::Operator, Severity::Info, what);
        self.send(ToHamond::Event(event.about(service).because(by)));
        match target {
            crate::failures::Target::Here => {
                self.feed(service, Input::Command { op, by: by.into() })
            }
            crate::failures::Target::Peer(node) => self.send(ToHamond::Forward {
                node,
                service: service.to_owned(),
                op,
                by: by.to_owned(),
            }),
        }
        Ok(format!("{} on {node}", op.as_str()))
    }

    /// Stops every service here (proven) and releases it; returns when
    /// hasvrd must exit even if some stop still hangs.
    fn shut_down(&mut self) -> Instant {
        tracing::info!("shutting down: stopping every service here and releasing it");
        self.leaving = true;
        let longest = self
            .units
            .values()
            .map(|u| {
                let s = u.svc.settings();
                s.stop_timeout + s.resource_release_timeout * 2 + s.check_interval
            })
            .max()
            .unwrap_or_default();
        self.feed_all(&|| Input::Shutdown);
        Instant::now() + longest + Duration::from_secs(30)
    }
}

/// The phase of a take-over spent waiting for the lost holder's fence.
const FENCING: &str = "fencing";

/// Why an input may move a service (the cause of a take-over that
/// follows), and the phase its wait for the grant is, if this node waits
/// through it; `owner` is the service's holder as the lock table said.
fn reason(input: &Input, owner: Option<&str>) -> Option<(String, Option<&'static str>)> {
    Some(match input {
        Input::Command { op, by } => (format!("{} by {by}", op.as_str()), None),
        Input::AgentFailed(Cause::Application(why)) => {
            (format!("the application failed: {why}"), None)
        }
        Input::AgentFailed(Cause::PublicNetwork(why)) => {
            (format!("public network lost: {why}"), None)
        }
        Input::AgentFailed(Cause::Storage(why)) => (format!("storage path lost: {why}"), None),
        Input::OwnerLostUncleanly(node) => (format!("{node} was lost holding it"), Some(FENCING)),
        Input::Fenced(node) if owner == Some(node) => {
            (format!("{node} was lost and fenced"), Some(FENCING))
        }
        Input::FenceConfirmed(node) if owner == Some(node) => (
            format!("{node} was lost and confirmed off by the operator"),
            Some(FENCING),
        ),
        _ => return None,
    })
}

/// Restarts hasvrd in place (`why`) to load the cluster config file anew.
/// Like a restart after a crash: the services keep running and the new
/// hasvrd adopts them (same pid, so hamond keeps watching it). Returns only
/// if the restart failed (logged).
fn restart_for_new_config(why: &str) {
    tracing::warn!("{why}: restarting hasvrd in place to load it");
    let e = haschema::process::reexec();
    tracing::error!(
        severity = "crit",
        "cannot restart hasvrd in place to load the new cluster config: {e}; it runs on with \
         the old one: restart it (`kill -9` its pid: hamond starts it again and it adopts the \
         services)"
    );
}

/// On each (re)connection to hamond: a cluster config file that changed
/// since hasvrd loaded it (hamond restarted on it while hasvrd was starting
/// or away, so hasvrd was never told) is loaded by a restart in place. A
/// file that does not load is left to hamond's and the operator's care.
fn restart_if_config_changed(cluster: &haschema::config::ClusterConfig) {
    if let Ok(now) = haschema::config::ClusterConfig::load(&cluster.file)
        && now.hash != cluster.hash
    {
        restart_for_new_config(&format!(
            "{} changed since hasvrd loaded it (config {:08x}, now {:08x})",
            cluster.file.display(),
            cluster.hash,
            now.hash
        ));
    }
}
