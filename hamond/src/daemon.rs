//! The daemon loop: owns the litecloud engine, feeds it what the path
//! drivers receive and its timers, hands its frames to the drivers, logs its
//! events with their causes, runs the view agreement and the services' lock
//! table on top of it, talks to hasvrd over the link, fences lost peers,
//! pets the watchdog while its gate allows (pinging hasvrd for its health),
//! answers the control socket and leaves the cluster cleanly on
//! SIGTERM/SIGINT (then disarms the watchdog). What happens (nodes, fences,
//! hasvrd's service events) is recorded in the event history, shared with
//! the peers and alerted ([`Daemon::record`]). The configuration replica
//! ([`crate::configdb`]) rides on the same channel and views; a new
//! cluster config makes hamond restart itself to load it.

use crate::configdb::{self, ConfigDb};
use crate::fencing::{FenceMsg, Fencing};
use crate::link::LinkEvent;
use crate::nics;
use crate::services::{Out, Services};
use crate::supervise::{HasvrdCommand, Supervisor};
use crate::transport::Inbound;
use crate::{clock, serial, udp};
use hamond::alert::Alerts;
use hamond::history::{self, History};
use hamond::watchdog::{Keeper, Lease, Standing, advert, lease::LEASE_FILE};
use haschema::config::{ClusterConfig, IsolationAction, NetworkKind};
use haschema::ctl::{
    LinkStatus, PathStatus, PeerStatus, PeerWatchdog, Request, Response, State, StatusReport,
    ViewStatus,
};
use haschema::ctl_server::CtlCall;
use haschema::event::{self as ev, EventKind, Severity};
use haschema::svclink::{ToHamond, ToHasvrd};
use litecloud::Time;
use litecloud::link::LinkCause;
use litecloud::lock::{self, LockTable};
use litecloud::node::{Event, Node, NodeCause, Output, Params, PathParams, Transmit};
use litecloud::view::{self, Agreement, NodeSet, View};
use litecloud::wire::{ClusterKey, NodeId};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};

/// How this node runs: its config, identity and key.
pub struct Setup {
    pub config: ClusterConfig,
    /// Where the incarnation is persisted.
    pub state_dir: std::path::PathBuf,
    pub me: NodeId,
    pub boot: u32,
    pub incarnation: u32,
    pub key: ClusterKey,
    /// hasvrd's service directory (replicated with the cluster config).
    pub services_dir: std::path::PathBuf,
}

/// This node's end of one network, as the drivers report it.
struct Port {
    /// Driver channel; None if this node is not on the network.
    tx: Option<mpsc::Sender<Transmit>>,
    error: Option<String>,
    open: bool,
}

struct Daemon {
    setup: Setup,
    node: Node,
    /// Agreement on one membership view with the peers.
    agreement: Agreement,
    /// The services' locks and the link to hasvrd.
    services: Services,
    /// The current hasvrd connection.
    hasvrd: Option<u64>,
    /// The way to it, once its hello was answered (pings go out only
    /// after the welcome).
    hasvrd_tx: Option<mpsc::UnboundedSender<ToHasvrd>>,
    /// The current connection's way, until its hello.
    hasvrd_unwelcomed: Option<mpsc::UnboundedSender<ToHasvrd>>,
    /// The watchdog, when `[watchdog] enabled = true`.
    watchdog: Option<Keeper>,
    /// When the watchdog's next tick is due.
    watchdog_due: tokio::time::Instant,
    fencing: Fencing,
    /// The hasvrd hamond started, if it starts one.
    supervisor: Option<Supervisor>,
    ports: Vec<Port>,
    started: Time,
    /// The event history; None if it could not be opened (logged).
    history: Option<History>,
    alerts: Alerts,
    /// The replicated configuration documents.
    configdb: ConfigDb,
    /// A new cluster config was written: restart to load it.
    restart: bool,
    /// Service files changed while hasvrd could not be told: it is told
    /// once welcomed.
    services_changed: bool,
    /// Operators' AutoGet asks waiting for a peer's answer.
    autoget: nics::Pending,
    /// This node was in a view with quorum since it started (or holds a
    /// service, so it had one before a restart): losing quorum now stops
    /// its services. Only with three or more nodes.
    had_quorum: bool,
    /// Why this node lost quorum (three or more nodes), while it has not
    /// got it back: hasvrd stops and releases every service here.
    no_quorum: Option<String>,
    /// Nodes lost uncleanly and not fenced yet (three or more nodes), with
    /// why they were lost: fenced by [`Daemon::fence_settled`].
    unfenced: BTreeMap<NodeId, String>,
    /// When the view with quorum that leaves some of them out has held long
    /// enough to fence them.
    fence_after: Option<Time>,
    /// The watchdogs the peers advertised.
    peer_watchdogs: BTreeMap<NodeId, PeerWatchdog>,
}

/// Longest run of the `[cluster] isolation` command.
const ISOLATION_TIMEOUT: Duration = Duration::from_secs(60);

/// How long hamond waits at shutdown for its peers to acknowledge its last
/// messages before it leaves.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// The file in the state directory that keeps this node's lock replica.
const LOCKS_FILE: &str = "locks";

/// How long hamond lets its tasks send their answers (the operator's, of
/// the change that made it restart) before it restarts for a new config.
const RESTART_PAUSE: Duration = Duration::from_millis(100);

/// This node's newest events sent again to a peer that comes up, so that a
/// node that was away (or restarted) learns what happened meanwhile.
const RESYNC_EVENTS: usize = 64;

/// Engine parameters for this node from the cluster config.
pub fn params(setup: &Setup) -> Params {
    let cfg = &setup.config;
    let me = cfg
        .node_by_domain(setup.me)
        .map(|n| n.name.clone())
        .unwrap_or_default();
    let paths = cfg
        .networks
        .iter()
        .map(|net| {
            let members: Vec<&String> = match &net.kind {
                NetworkKind::Serial { devices, .. } => devices.keys().collect(),
                NetworkKind::Udp { addresses } => addresses.keys().collect(),
            };
            let peers = if members.contains(&&me) {
                members
                    .iter()
                    .filter(|n| **n != &me)
                    .filter_map(|n| cfg.node(n).map(|n| n.domain))
                    .collect()
            } else {
                Vec::new()
            };
            PathParams {
                interval: net.interval,
                maxmiss: net.maxmiss,
                peers,
                budget: match net.kind {
                    // A quarter of a 9600-baud second: messages never hold
                    // a serial line for long.
                    NetworkKind::Serial { .. } => 240,
                    NetworkKind::Udp { .. } => litecloud::channel::MAX_MESSAGE,
                },
            }
        })
        .collect();
    Params {
        netid: cfg.netid,
        me: setup.me,
        boot: setup.boot,
        incarnation: setup.incarnation,
        config_hash: cfg.hash,
        paths,
    }
}

/// The lock replica persisted in `state_dir`, or a fresh table.
fn lock_table(setup: &Setup) -> std::io::Result<LockTable> {
    let nodes = NodeSet::of(setup.config.nodes.iter().map(|n| n.domain));
    let path = setup.state_dir.join(LOCKS_FILE);
    let saved =
        haschema::private_file::read(&path, "the lock replica").map_err(std::io::Error::other)?;
    Ok(match saved {
        None => LockTable::new(setup.me, nodes, setup.boot),
        Some(bytes) => LockTable::restore(setup.me, nodes, &bytes, setup.boot).map_err(|_| {
            std::io::Error::other(format!(
                "{}: the lock replica is damaged; stop the services of this node by hand, \
                 remove the file and restart hamond",
                path.display()
            ))
        })?,
    })
}

/// Runs until SIGTERM or SIGINT.
pub async fn run(
    setup: Setup,
    ctl: mpsc::Receiver<CtlCall>,
    link: mpsc::Receiver<LinkEvent>,
    hasvrd: Option<HasvrdCommand>,
) -> std::io::Result<()> {
    // First: a watchdog that cannot be armed stops the start here.
    let watchdog = open_watchdog(&setup, hasvrd.is_some())?;
    let (inbound_tx, inbound) = mpsc::channel(1024);
    let now = clock::now();
    let seed = getrandom::u64().map_err(|e| std::io::Error::other(e.to_string()))?;
    let node = Node::new(params(&setup), setup.key.clone(), seed, now);
    let ports = start_drivers(&setup, &inbound_tx);
    drop(inbound_tx);
    let promised = crate::identity::promised_epoch(&setup.state_dir)?;
    let agreement = Agreement::new(setup.me, promised);
    let names = setup
        .config
        .nodes
        .iter()
        .map(|n| (n.domain, n.name.clone()))
        .collect();
    let services = Services::new(setup.me, names, lock_table(&setup)?);
    let me = setup
        .config
        .node_by_domain(setup.me)
        .map(|n| n.name.clone())
        .unwrap_or_default();
    let (fencing, fence_rx) = Fencing::new(&setup.config, &me);
    let history = History::open(&setup.state_dir, history::Limits::default())
        .inspect_err(|e| {
            tracing::error!(
                "cannot open the event history in {}: {e}; events are not kept (hactl history \
                 answers an error): fix the state directory, then restart hamond",
                setup.state_dir.display()
            )
        })
        .ok();
    let alerts = Alerts::from_config(setup.config.alerts.as_ref());
    let files = configdb::files::Files::new(
        setup.config.file.clone(),
        setup.services_dir.clone(),
        setup.config.admin.as_ref().map(|a| a.password_file.clone()),
    );
    let configdb = ConfigDb::open(&setup.config, setup.me, files, &setup.state_dir)
        .map_err(std::io::Error::other)?;
    let mut daemon = Daemon {
        setup,
        node,
        agreement,
        services,
        hasvrd: None,
        hasvrd_tx: None,
        hasvrd_unwelcomed: None,
        watchdog,
        watchdog_due: tokio::time::Instant::now(),
        fencing,
        supervisor: hasvrd.map(Supervisor::start),
        ports,
        started: now,
        history,
        alerts,
        configdb,
        restart: false,
        services_changed: false,
        autoget: nics::Pending::default(),
        had_quorum: false,
        no_quorum: None,
        unfenced: BTreeMap::new(),
        fence_after: None,
        peer_watchdogs: BTreeMap::new(),
    };
    daemon.had_quorum = daemon.services.holds_any();
    daemon.run(inbound, ctl, link, fence_rx).await
}

/// Who sent a control request: the local user, or the admin endpoint.
fn asker(uid: Option<u32>) -> String {
    uid.map_or_else(|| "the admin endpoint".to_owned(), |u| format!("uid {u}"))
}

/// The watchdog of `[watchdog]`, opened and armed; None when disabled.
fn open_watchdog(setup: &Setup, hasvrd_supervised: bool) -> std::io::Result<Option<Keeper>> {
    let cfg = &setup.config.watchdog;
    if !cfg.enabled {
        return Ok(None);
    }
    let name = setup
        .config
        .node_by_domain(setup.me)
        .map(|n| n.name.as_str())
        .unwrap_or_default();
    let device = cfg.device_of(name);
    let lease = Lease::restore(setup.state_dir.join(LEASE_FILE), setup.boot, cfg.lease);
    let keeper = Keeper::open(device, cfg.timeout, hasvrd_supervised, lease).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "{e}; [watchdog] enabled = true in {}: check that the device exists (load the \
                 driver for this machine's watchdog, e.g. iTCO_wdt, or softdog) and that no \
                 other program holds it (a watchdog daemon, systemd's RuntimeWatchdogSec), or \
                 set enabled = false and rely on fencing",
                setup.config.file.display()
            ),
        )
    })?;
    keeper.log_opened();
    Ok(Some(keeper))
}

fn start_drivers(setup: &Setup, inbound: &mpsc::Sender<Inbound>) -> Vec<Port> {
    let cfg = &setup.config;
    let me = cfg
        .node_by_domain(setup.me)
        .map(|n| n.name.clone())
        .unwrap_or_default();
    let domain = |name: &String| cfg.node(name).map(|n| n.domain);
    cfg.networks
        .iter()
        .enumerate()
        .map(|(i, net)| {
            let path = i as u8;
            let (tx, rx) = mpsc::channel(64);
            let inbound = inbound.clone();
            let started = match &net.kind {
                NetworkKind::Serial { baud, devices } => devices.get(&me).map(|device| {
                    tokio::spawn(serial::run(path, device.clone(), *baud, rx, inbound));
                }),
                NetworkKind::Udp { addresses } => addresses.get(&me).map(|&local| {
                    let peers = addresses
                        .iter()
                        .filter(|(name, _)| **name != me)
                        .filter_map(|(name, addr)| Some((domain(name)?, *addr)))
                        .collect();
                    tokio::spawn(udp::run(path, local, peers, rx, inbound));
                }),
            };
            Port {
                tx: started.map(|()| tx),
                error: None,
                open: false,
            }
        })
        .collect()
}

impl Daemon {
    async fn run(
        &mut self,
        mut inbound: mpsc::Receiver<Inbound>,
        mut ctl: mpsc::Receiver<CtlCall>,
        mut link: mpsc::Receiver<LinkEvent>,
        mut fences: mpsc::UnboundedReceiver<FenceMsg>,
    ) -> std::io::Result<()> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (stopped_tx, mut stopped) = mpsc::channel(1);
        let mut stopping = false;
        self.log_start();
        self.fencing.start_reach();
        self.fencing.start_checks();
        loop {
            let deadline = clock::instant_at(self.node.poll_timeout());
            let due = self.watchdog_due;
            let config_due = self.configdb.deadline();
            let config_at = clock::instant_at(config_due.unwrap_or_default());
            let signalled = tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    self.node.handle_timeout(clock::now());
                    false
                }
                () = tokio::time::sleep_until(config_at), if config_due.is_some() => {
                    self.configdb.tick(clock::now());
                    false
                }
                () = tokio::time::sleep_until(due), if self.watchdog.is_some() => {
                    self.watchdog_tick();
                    false
                }
                Some(report) = inbound.recv() => { self.on_inbound(report); false }
                Some(call) = ctl.recv() => { self.call(call); false }
                Some(event) = link.recv() => { self.on_link(event); false }
                Some(msg) = fences.recv() => { self.on_fence(msg); false }
                Some(()) = stopped.recv() => {
                    if let Some(k) = &mut self.watchdog {
                        k.hasvrd_stopped();
                    }
                    break;
                }
                _ = term.recv(), if !stopping => true,
                _ = int.recv(), if !stopping => true,
            };
            if signalled {
                stopping = true;
                // hasvrd first: it stops and releases every service while
                // this loop still carries the releases to the peers.
                match self.supervisor.take() {
                    Some(supervisor) => {
                        let done = stopped_tx.clone();
                        tokio::spawn(async move {
                            supervisor.stop().await;
                            let _ = done.send(()).await;
                        });
                    }
                    None => break,
                }
            }
            self.fence_settled();
            self.drain();
            if self.restart && !stopping {
                // Like a restart after a crash: no leave, hasvrd and the
                // services keep running. The peers get what was sent to
                // them, the operator the answer.
                self.flush_messages(&mut inbound).await;
                self.pause(RESTART_PAUSE).await;
                let e = haschema::process::reexec();
                tracing::error!(
                    severity = "crit",
                    "cannot restart hamond in place to load the new cluster config: {e}; \
                     exiting, so that hasvrd (or systemd) starts it again"
                );
                return Err(e);
            }
        }
        self.flush_messages(&mut inbound).await;
        tracing::info!("shutting down: telling peers this node leaves the cluster");
        self.node.leave(clock::now());
        self.drain();
        // Give the drivers time to put the leave frames on every line.
        let longest = self
            .setup
            .config
            .networks
            .iter()
            .map(|n| n.interval)
            .max()
            .unwrap_or_default();
        self.pause(longest.min(Duration::from_millis(300)) + Duration::from_millis(50))
            .await;
        if let Some(k) = self.watchdog.take() {
            k.close();
        }
        Ok(())
    }

    /// Waits `length`, petting the watchdog meanwhile.
    async fn pause(&mut self, length: Duration) {
        let until = tokio::time::Instant::now() + length;
        while tokio::time::Instant::now() < until {
            let due = self.watchdog_due;
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                () = tokio::time::sleep_until(due), if self.watchdog.is_some() => {
                    self.watchdog_tick();
                }
            }
        }
    }

    /// The watchdog's tick: asks its gate (and pets), then pings hasvrd.
    fn watchdog_tick(&mut self) {
        let standing = Standing {
            entitled: self.entitled(),
            holding: self.services.holds_any(),
        };
        let Some(k) = &mut self.watchdog else {
            return;
        };
        let at = tokio::time::Instant::now();
        let lateness = at.saturating_duration_since(self.watchdog_due);
        self.watchdog_due = at + k.interval();
        k.tick(clock::now(), lateness, standing);
        self.ping_hasvrd();
    }

    /// Whether this node has the right to hold services now (its lease is
    /// renewed): it is not isolated and, with three or more nodes, it is a
    /// member of an agreed view with quorum. The same conditions make
    /// hasvrd stop and release the services ([`Daemon::withdrawn`]), so a
    /// node is reset only when it could not stop them within the lease.
    /// A restarted hamond with three or more nodes keeps the deadline it
    /// left until it is in a view with quorum again; with two, it counts
    /// as not isolated until it finds it is.
    fn entitled(&self) -> bool {
        self.fencing.isolated().is_none()
            && (self.setup.config.nodes.len() < 3 || self.quorate_view().is_some())
    }

    /// The installed view, if it has quorum.
    fn quorate_view(&self) -> Option<View> {
        let configured = self.setup.config.nodes.len();
        self.agreement.view().filter(|v| v.has_quorum(configured))
    }

    /// Asks hasvrd whether it is healthy (when the watchdog wants to know
    /// and hasvrd was welcomed).
    fn ping_hasvrd(&mut self) {
        if let (Some(k), Some(tx)) = (&mut self.watchdog, &self.hasvrd_tx)
            && tx
                .send(ToHasvrd::Ping {
                    seq: k.ping(clock::now()),
                })
                .is_err()
        {
            self.hasvrd_tx = None;
        }
    }

    /// hasvrd asks to self-fence (a stop failed with `force_reboot`, safety
    /// rule 7): the watchdog is no longer petted; never a `reboot(2)`.
    fn self_fence(&mut self, service: &str, reason: &str) {
        let cause = format!("service {service}: {reason}");
        let what = if self.watchdog.is_some() {
            "self-fence: the watchdog is no longer petted and resets this node"
        } else {
            "self-fence asked, but there is no watchdog: reset this node by hand"
        };
        let event = self.event(EventKind::Node, Severity::Emergency, what.into());
        self.record(event.about(service).because(reason));
        match &mut self.watchdog {
            Some(k) => k.self_fence(&cause),
            None => tracing::error!(
                severity = "emerg",
                "SELF-FENCE asked: {cause}; this node has no watchdog ([watchdog] enabled = \
                 false): reset this node by hand now (hamond never calls reboot), or its peer \
                 fences it before taking the service over"
            ),
        }
    }

    /// Lets the peers acknowledge what was sent to them (the services'
    /// releases), for at most [`FLUSH_TIMEOUT`], before the leave.
    async fn flush_messages(&mut self, inbound: &mut mpsc::Receiver<Inbound>) {
        let until = tokio::time::Instant::now() + FLUSH_TIMEOUT;
        let pending = |d: &Daemon| {
            d.node
                .peers()
                .iter()
                .any(|p| p.up && d.node.unacked(p.id) > 0)
        };
        while pending(self) && tokio::time::Instant::now() < until {
            let deadline = clock::instant_at(self.node.poll_timeout()).min(until);
            let due = self.watchdog_due;
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => self.node.handle_timeout(clock::now()),
                () = tokio::time::sleep_until(due), if self.watchdog.is_some() => {
                    self.watchdog_tick();
                }
                Some(report) = inbound.recv() => self.on_inbound(report),
            }
            self.drain();
        }
    }

    fn log_start(&self) {
        let cfg = &self.setup.config;
        tracing::info!(
            "hamond started: cluster {} (netid {}), node {} (domain {}), incarnation {}, boot {:08x}, config {:08x}, {} networks",
            cfg.name,
            cfg.netid,
            self.name(self.setup.me),
            self.setup.me,
            self.setup.incarnation,
            self.setup.boot,
            cfg.hash,
            cfg.networks.len()
        );
    }

    fn on_inbound(&mut self, report: Inbound) {
        match report {
            Inbound::Frame { path, bytes } => self.node.handle_datagram(clock::now(), path, &bytes),
            Inbound::Dropped { path, reason } => self.node.count_reject(path, reason),
            Inbound::Port { path, error } => {
                let name = self.path_name(path);
                let Some(port) = self.ports.get_mut(usize::from(path)) else {
                    return;
                };
                match &error {
                    None => tracing::info!("path {name}: port open"),
                    Some(e) if port.error.as_ref() != Some(e) => {
                        tracing::error!("path {name}: {e}; retrying")
                    }
                    Some(_) => {}
                }
                port.open = error.is_none();
                port.error = error;
            }
        }
    }

    /// Hands the engine's frames to the drivers and its events to the log
    /// and the view agreement, whose messages go back through the engine,
    /// until both are quiet.
    fn drain(&mut self) {
        loop {
            let mut busy = false;
            while let Some(output) = self.node.poll() {
                busy = true;
                match output {
                    Output::Send(t) => {
                        if let Some(tx) = self
                            .ports
                            .get(usize::from(t.path))
                            .and_then(|p| p.tx.as_ref())
                        {
                            // A full queue means the port is closed or slow:
                            // dropping a frame there is what a lossy line does.
                            let _ = tx.try_send(t);
                        }
                    }
                    Output::Event(Event::RenewIncarnation) => self.renew_incarnation(),
                    Output::Event(event) => {
                        self.agree(&event);
                        self.on_event(&event);
                        self.log_event(event);
                    }
                }
            }
            while let Some(action) = self.agreement.poll() {
                busy = true;
                self.act(action);
            }
            while let Some(out) = self.services.poll() {
                busy = true;
                self.serve(out);
            }
            for event in self.fencing.take_events() {
                busy = true;
                self.record(event);
            }
            while let Some(out) = self.configdb.poll() {
                busy = true;
                self.configure(out);
            }
            if !busy {
                return;
            }
        }
    }

    /// Feeds the view agreement what the engine saw.
    fn agree(&mut self, event: &Event) {
        match event {
            Event::Membership { members, .. } => self
                .agreement
                .live_changed(NodeSet::of(members.iter().copied())),
            Event::IncarnationAccepted { peer, previous, .. } => {
                self.agreement.peer_reset(*peer);
                if previous.is_some() {
                    self.services.peer_restarted(*peer);
                }
            }
            Event::Message { from, data }
                if data.first() == Some(&view::PROTOCOL)
                    && self.agreement.handle_message(*from, data).is_err() =>
            {
                tracing::warn!("malformed view message from {}: ignored", self.name(*from));
            }
            _ => {}
        }
    }

    fn act(&mut self, action: view::Action) {
        match action {
            view::Action::Send { to, data } => {
                if let Err(e) = self.node.send_message(clock::now(), to, data) {
                    // It is proposed again once the peer is connected.
                    tracing::debug!("view message to {} not sent: {e}", self.name(to));
                }
            }
            view::Action::Persist { epoch } => {
                if let Err(e) = crate::identity::store_epoch(&self.setup.state_dir, epoch) {
                    tracing::error!(
                        severity = "crit",
                        "cannot persist membership epoch {epoch} in {}: {e}; fix the disk, then restart hamond",
                        self.setup.state_dir.display()
                    );
                }
            }
            view::Action::Installed(v) => {
                self.services.view_installed(v);
                self.configdb.view_installed(clock::now(), &v);
                self.quorum_changed(&v);
                let names: Vec<String> = v.members.iter().map(|m| self.name(m)).collect();
                let configured = self.setup.config.nodes.len();
                tracing::info!(
                    "view {}.{} agreed: {}{}",
                    v.id.epoch,
                    self.name(v.id.coordinator),
                    names.join(", "),
                    if v.has_quorum(configured) {
                        ""
                    } else {
                        " (no quorum)"
                    }
                );
            }
        }
    }

    /// Feeds the services what the engine saw: their messages, clean
    /// leaves, and losses that call for fencing.
    fn on_event(&mut self, event: &Event) {
        match event {
            Event::Message { from, data }
                if matches!(
                    data.first(),
                    Some(&lock::PROTOCOL | &crate::services::PROTOCOL)
                ) =>
            {
                if let Err(e) = self.services.message(*from, data) {
                    tracing::warn!("{e} from {}: ignored", self.name(*from));
                }
            }
            Event::Message { from, data } if data.first() == Some(&history::PROTOCOL) => {
                self.heard(*from, data)
            }
            Event::Message { from, data } if data.first() == Some(&nics::PROTOCOL) => {
                self.autoget_message(*from, data)
            }
            Event::Message { from, data } if data.first() == Some(&advert::PROTOCOL) => {
                match advert::decode(data) {
                    Ok(w) => {
                        self.peer_watchdogs.insert(*from, w);
                    }
                    Err(e) => tracing::warn!("{e} from {}: ignored", self.name(*from)),
                }
            }
            Event::Message { from, data } if data.first() == Some(&litecloud::config::PROTOCOL) => {
                let busy = self.service_busy();
                let cx = configdb::check::Context {
                    config: &self.setup.config,
                    busy: &busy,
                };
                if let Err(e) = self.configdb.message(clock::now(), *from, data, &cx) {
                    tracing::warn!(
                        "configuration message from {}: {e}; ignored",
                        self.name(*from)
                    );
                }
            }
            Event::NodeDown {
                peer,
                cause: NodeCause::Left,
            } => {
                self.services.node_left(*peer);
                let what = format!("{} left the cluster cleanly", self.name(*peer));
                self.record(self.event(EventKind::Node, Severity::Info, what));
            }
            Event::NodeDown { peer, cause } => {
                let detection = self.silence(*peer);
                let what = format!("{} lost", self.name(*peer));
                let lost = self.event(EventKind::Node, Severity::Warning, what);
                self.record(lost.because(cause.as_str()).phase("detection", detection));
                self.services.node_lost(*peer);
                self.fence_lost(*peer, cause.as_str().to_owned());
            }
            Event::NodeUp { peer, .. } => {
                self.unfenced.remove(peer);
                self.fencing.cancel(*peer);
                let what = format!("{} joined the cluster", self.name(*peer));
                self.record(self.event(EventKind::Node, Severity::Info, what));
                self.resync(*peer);
            }
            _ => {}
        }
        if matches!(event, Event::NodeDown { .. } | Event::NodeUp { .. }) {
            self.update_isolation();
        }
    }

    /// `peer` was lost uncleanly (`cause`). With two nodes it is fenced
    /// now. With three or more, quorum is counted on agreed views (rule
    /// 2): it is fenced only once this node has been in an agreed view with
    /// quorum without it for [`Daemon::settle`] ([`Daemon::fence_settled`]),
    /// so a node that is being cut off and still sees one peer for a moment
    /// never shoots the majority, and a minority never fences anyone.
    fn fence_lost(&mut self, peer: NodeId, cause: String) {
        if self.setup.config.nodes.len() >= 3 {
            tracing::warn!(
                "{} was lost ({cause}): fenced once a view with quorum without it has held \
                 for {:?} here (the side that keeps quorum fences)",
                self.name(peer),
                self.settle()
            );
            self.fencing.seen_lost(peer);
            self.unfenced.insert(peer, cause);
            return;
        }
        self.fence_now(peer, &cause);
    }

    /// How long a view with quorum must hold before its members fence the
    /// lost nodes it leaves out: the longest deadtime, within which every
    /// path of a cut is seen down.
    fn settle(&self) -> Duration {
        self.setup
            .config
            .networks
            .iter()
            .map(|n| n.deadtime())
            .max()
            .unwrap_or_default()
    }

    /// The lost nodes a view with quorum left out since it held for
    /// [`Daemon::settle`]: fenced now, if it still has quorum.
    fn fence_settled(&mut self) {
        if self.fence_after.is_none_or(|t| clock::now() < t) {
            return;
        }
        self.fence_after = None;
        let Some(v) = self.quorate_view() else {
            return;
        };
        let lost: Vec<(NodeId, String)> = self
            .unfenced
            .iter()
            .filter(|(p, _)| !v.members.contains(**p))
            .map(|(p, c)| (*p, c.clone()))
            .collect();
        for (peer, cause) in lost {
            self.unfenced.remove(&peer);
            self.fence_now(peer, &cause);
        }
    }

    /// Fences `peer`, lost uncleanly (`cause`), after the fence delay when
    /// it hosts more services than this node (rule 4).
    fn fence_now(&mut self, peer: NodeId, cause: &str) {
        let name = self.name(peer);
        let mine = self.services.held_by(self.setup.me);
        let theirs = self.services.held_by(peer);
        // Rule 4: the side that hosts more services shoots first; on a
        // tie, the lower domain id.
        let first = mine > theirs || (mine == theirs && self.setup.me < peer);
        if self.fencing.lost(peer, name, cause, !first) {
            self.services.node_fenced(peer, false);
        }
    }

    /// With three or more nodes, a view installed without quorum after
    /// this node had it: hasvrd stops and releases every service here
    /// (before the lease runs out, or the watchdog resets the node); a
    /// view with quorum again lets them run here again.
    fn quorum_changed(&mut self, v: &View) {
        let configured = self.setup.config.nodes.len();
        if configured < 3 {
            return;
        }
        if v.has_quorum(configured) {
            self.had_quorum = true;
            // A new view starts the settling again.
            self.fence_after = self
                .unfenced
                .keys()
                .any(|p| !v.members.contains(*p))
                .then(|| clock::now() + self.settle());
            if let Some(was) = self.no_quorum.take() {
                tracing::warn!(
                    severity = "notice",
                    "quorum regained (it was: {was}); services may run here again"
                );
                self.tell_withdrawal();
            }
            return;
        }
        self.fence_after = None;
        if !self.had_quorum || self.no_quorum.is_some() {
            return;
        }
        let names: Vec<String> = v.members.iter().map(|m| self.name(m)).collect();
        let why = format!(
            "this node lost quorum: its view {}.{} has {} of the {configured} nodes ({})",
            v.id.epoch,
            self.name(v.id.coordinator),
            names.len(),
            names.join(", ")
        );
        let lease = match &self.watchdog {
            Some(k) => format!(
                "within the lease ({:?}), or the watchdog resets this node",
                k.lease_length()
            ),
            None => "(no watchdog: nothing resets this node if a stop hangs)".to_owned(),
        };
        tracing::error!(
            severity = "emerg",
            "QUORUM LOST: {why}; stopping and releasing every service here {lease}; the \
             majority fences this node before taking them over; check this node's networks"
        );
        self.record(
            self.event(
                EventKind::Node,
                Severity::Emergency,
                "quorum lost".to_owned(),
            )
            .because(why.as_str()),
        );
        self.no_quorum = Some(why);
        self.tell_withdrawal();
    }

    /// Why this node may not hold services now (isolated, or it lost
    /// quorum), if it may not.
    fn withdrawn(&self) -> Option<String> {
        match self.fencing.isolated() {
            Some(why) => Some(format!("this node is isolated: {why}")),
            None => self.no_quorum.clone(),
        }
    }

    /// Tells the tie-breaker whether a peer is up; acts on a change.
    fn update_isolation(&mut self) {
        let any = self.node.peers().iter().any(|p| p.up);
        if let Some(change) = self.fencing.peers_up(any) {
            self.isolation_changed(change);
        }
    }

    /// This node became isolated (`Some(why)`: it sees no peer and reaches
    /// no ping address), or is no longer: hasvrd is told (it releases
    /// every service here, and takes none, while isolated), and on
    /// becoming isolated the `[cluster] isolation` action runs.
    fn isolation_changed(&mut self, why: Option<String>) {
        match &why {
            Some(why) => tracing::error!(
                severity = "emerg",
                "ISOLATED: {why}; releasing every service here (a peer that reaches the ping \
                 addresses fences this node and takes them over); check this node's networks"
            ),
            None => tracing::warn!(
                severity = "notice",
                "no longer isolated: a peer or a ping address answers again; services may run \
                 here again"
            ),
        }
        self.tell_withdrawal();
        let Some(why) = why else {
            return;
        };
        match self.setup.config.isolation.clone() {
            IsolationAction::Stop => {}
            IsolationAction::StopPetting => match &mut self.watchdog {
                Some(k) => k.self_fence(&format!("isolated: {why}")),
                None => tracing::error!(
                    severity = "emerg",
                    "isolation = \"stop-petting\" but this node has no watchdog: reset it by hand"
                ),
            },
            IsolationAction::Script(argv) => {
                tokio::spawn(async move {
                    let env = [("HA_ISOLATED_REASON".to_owned(), why)];
                    match hamond::helper::run(&argv, &env, b"", ISOLATION_TIMEOUT).await {
                        Ok(done) if done.code == Some(0) => {
                            tracing::info!("isolation command {} succeeded", argv[0])
                        }
                        Ok(done) => tracing::error!(
                            "isolation command {} failed ({:?}): {}; check it by hand",
                            argv[0],
                            done.code,
                            done.stderr.trim()
                        ),
                        Err(e) => tracing::error!(
                            "isolation command {} failed: {e}; check [cluster] isolation",
                            argv[0]
                        ),
                    }
                });
            }
        }
    }

    /// Tells hasvrd whether this node may hold services now
    /// ([`Daemon::withdrawn`]).
    fn tell_withdrawal(&mut self) {
        let why = self.withdrawn();
        let msg = ToHasvrd::Isolation {
            isolated: why.is_some(),
            reason: why.unwrap_or_default(),
        };
        if let Some(tx) = &self.hasvrd_tx
            && tx.send(msg).is_err()
        {
            self.hasvrd_tx = None;
        }
    }

    /// An event this node records now.
    fn event(&self, kind: EventKind, severity: Severity, what: String) -> ev::Event {
        ev::Event::now(&self.name(self.setup.me), kind, severity, what)
    }

    /// Records `event` in the history; one of this node's own that was not
    /// there yet is also shared with the peers that are up and alerted.
    fn record(&mut self, event: ev::Event) {
        let own = event.node == self.name(self.setup.me);
        tracing::debug!("event: {}", event.summary());
        let new = match &mut self.history {
            Some(h) => h.record(event.clone()).unwrap_or_else(|e| {
                tracing::error!(
                    "cannot write the event history in {}: {e}; the event \"{}\" is not kept \
                     here: fix the disk (check that it is not full or read-only)",
                    self.setup.state_dir.display(),
                    event.summary()
                );
                true
            }),
            None => true,
        };
        if !(new && own) {
            return;
        }
        self.alerts.fire(&event);
        let data = history::encode(&event);
        let up: Vec<NodeId> = self
            .node
            .peers()
            .iter()
            .filter(|p| p.up)
            .map(|p| p.id)
            .collect();
        for peer in up {
            self.share(peer, data.clone());
        }
    }

    /// Sends one shared event to `peer`.
    fn share(&mut self, peer: NodeId, data: Vec<u8>) {
        if let Err(e) = self.node.send_message(clock::now(), peer, data) {
            // A peer that comes back gets the newest events again (resync).
            tracing::debug!("event for {} not sent: {e}", self.name(peer));
        }
    }

    /// `peer` came up: it gets this node's newest events again (kept once
    /// there).
    fn resync(&mut self, peer: NodeId) {
        let watchdog = self
            .watchdog
            .as_ref()
            .map_or(PeerWatchdog::Disabled, Keeper::advert);
        if let Err(e) = self
            .node
            .send_message(clock::now(), peer, advert::encode(&watchdog))
        {
            tracing::debug!(
                "watchdog advertisement to {} not sent: {e}",
                self.name(peer)
            );
        }
        let mine = ev::Filter {
            node: Some(self.name(self.setup.me)),
            ..ev::Filter::default()
        };
        let events = self
            .history
            .as_ref()
            .map(|h| h.query(&mine, RESYNC_EVENTS))
            .unwrap_or_default();
        for event in &events {
            self.share(peer, history::encode(event));
        }
    }

    /// An event shared by `from`: recorded if it is that node's own.
    fn heard(&mut self, from: NodeId, data: &[u8]) {
        match history::decode(data) {
            Ok(event) if event.node == self.name(from) => self.record(event),
            Ok(event) => tracing::warn!(
                "{} shared an event recorded by {}: ignored",
                self.name(from),
                event.node
            ),
            Err(e) => tracing::warn!("{e} from {}: ignored", self.name(from)),
        }
    }

    /// How long `peer` had been silent on every path (the detection time of
    /// its loss).
    fn silence(&self, peer: NodeId) -> Duration {
        let now = clock::now();
        self.node
            .peer(peer)
            .and_then(|p| p.links.iter().flatten().filter_map(|l| l.last_heard).max())
            .map(|t| now.saturating_sub(t))
            .unwrap_or_default()
    }

    /// Why each service may not be changed or removed by replication now
    /// (see [`configdb::check::busy`]).
    fn service_busy(&self) -> impl Fn(&str, bool) -> Option<String> + use<> {
        let services = self.services.advertised();
        let mut up: Vec<String> = vec![self.name(self.setup.me)];
        up.extend(
            self.node
                .peers()
                .iter()
                .filter(|p| p.up)
                .map(|p| self.name(p.id)),
        );
        move |service, removal| {
            let status = services.iter().find(|s| s.name == service)?;
            configdb::check::busy(status, |node| up.iter().any(|u| u == node), removal)
        }
    }

    /// Carries out what the configuration replica asks.
    fn configure(&mut self, out: configdb::Out) {
        match out {
            configdb::Out::Send { to, data } => {
                if let Err(e) = self.node.send_message(clock::now(), to, data) {
                    // The replica catches up at the next view.
                    tracing::debug!("configuration message to {} not sent: {e}", self.name(to));
                }
            }
            configdb::Out::ServicesChanged => self.tell_services_changed(),
            configdb::Out::Restart { version, from } => {
                tracing::warn!(
                    "cluster config now version {version} (from {from}); restarting hamond to load it"
                );
                // hasvrd loads it too (a hasvrd not connected now finds
                // the file changed when it connects again).
                if let Some(tx) = &self.hasvrd_tx {
                    let _ = tx.send(ToHasvrd::ClusterChanged);
                }
                self.restart = true;
            }
            configdb::Out::Committed { what, by } => {
                let event = self.event(EventKind::Operator, Severity::Info, what);
                self.record(event.because(format!("asked by {by}")));
            }
            configdb::Out::Conflict { name, what } => {
                let event = self.event(EventKind::Operator, Severity::Emergency, what);
                self.record(event.because(format!("two versions of {name}")));
            }
        }
    }

    /// Tells hasvrd to reread its service files, or remembers to once it
    /// is welcomed.
    fn tell_services_changed(&mut self) {
        self.services_changed = match &self.hasvrd_tx {
            Some(tx) => tx.send(ToHasvrd::ServicesChanged).is_err(),
            None => true,
        };
    }

    /// Carries out what the services ask.
    fn serve(&mut self, out: Out) {
        match out {
            Out::Send { to, data } => {
                if let Err(e) = self.node.send_message(clock::now(), to, data) {
                    // Lock and service messages are redone at the next view.
                    tracing::debug!("service message to {} not sent: {e}", self.name(to));
                }
            }
            Out::Persist(data) => {
                let path = self.setup.state_dir.join(LOCKS_FILE);
                if let Err(e) = haschema::private_file::write(&path, &data) {
                    tracing::error!(
                        severity = "crit",
                        "cannot persist the lock replica in {}: {e}; fix the disk, then restart hamond",
                        path.display()
                    );
                }
            }
            Out::Fence { node, cause } => {
                let name = self.name(node);
                self.fencing.requested(node, name, &cause);
            }
        }
    }

    fn on_link(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::Connected { conn, tx } => {
                tracing::info!("hasvrd connected");
                self.hasvrd = Some(conn);
                self.hasvrd_tx = None;
                self.hasvrd_unwelcomed = Some(tx.clone());
                self.services.attach(tx);
            }
            LinkEvent::Line { conn, msg } if self.hasvrd == Some(conn) => match msg {
                ToHamond::Pong { seq } => {
                    if let Some(k) = &mut self.watchdog {
                        k.pong(seq);
                    }
                }
                ToHamond::SelfFence { service, reason } => self.self_fence(&service, &reason),
                ToHamond::Event(mut event) => {
                    // hasvrd speaks for this node only.
                    event.node = self.name(self.setup.me);
                    self.record(event);
                }
                msg => {
                    let hello = matches!(msg, ToHamond::Hello { .. });
                    self.services.on_hasvrd(msg);
                    if hello {
                        // Answered: pings may follow the welcome, the
                        // first at once.
                        self.hasvrd_tx = self.hasvrd_unwelcomed.take();
                        self.ping_hasvrd();
                        if let Some(tx) = &self.hasvrd_tx {
                            let addresses = self.setup.config.ping.clone();
                            let _ = tx.send(ToHasvrd::PingAddresses { addresses });
                        }
                        if self.services_changed {
                            self.tell_services_changed();
                        }
                        if self.withdrawn().is_some() {
                            self.tell_withdrawal();
                        }
                    }
                }
            },
            LinkEvent::Line { .. } => {}
            LinkEvent::Closed { conn } if self.hasvrd == Some(conn) => {
                tracing::warn!(
                    "hasvrd disconnected; its services keep their locks until it reconnects"
                );
                self.hasvrd = None;
                self.hasvrd_tx = None;
                self.hasvrd_unwelcomed = None;
                self.services.detach();
            }
            LinkEvent::Closed { .. } => {}
        }
    }

    fn on_fence(&mut self, msg: FenceMsg) {
        let live = |d: &Daemon, id| d.node.peer(id).is_some_and(|p| p.up);
        match msg {
            FenceMsg::Ready { node, round } | FenceMsg::Done { node, round, .. }
                if !self.fencing.current(node, round) => {}
            FenceMsg::Ready { node, .. } => {
                let up = live(self, node);
                self.fencing.ready(node, up);
            }
            FenceMsg::CheckReach => self.fencing.check_reach(),
            FenceMsg::Reached(result) => {
                if let Some(change) = self.fencing.reached(result) {
                    self.isolation_changed(change);
                }
            }
            FenceMsg::Done { node, result, .. } => {
                let off = self.fencing.done(node, result);
                if off && live(self, node) {
                    // It asked: its locks are freed once it is seen down.
                    self.fencing.off_while_up(node);
                } else if off {
                    self.services.node_fenced(node, false);
                    self.update_isolation();
                }
            }
        }
    }

    /// Sequence numbers are wearing out (after years): continue under a
    /// new persisted incarnation, as peers would see after a restart.
    fn renew_incarnation(&mut self) {
        match crate::identity::next_incarnation(&self.setup.state_dir) {
            Ok(incarnation) => {
                tracing::warn!(
                    "sequence numbers half used: continuing as incarnation {incarnation}; peers see a daemon restart"
                );
                self.setup.incarnation = incarnation;
                self.node.renew_incarnation(incarnation);
            }
            Err(e) => tracing::error!(
                "cannot persist a new incarnation in {}: {e}; restart hamond before its sequence numbers run out",
                self.setup.state_dir.display()
            ),
        }
    }

    fn name(&self, id: NodeId) -> String {
        self.setup
            .config
            .node_by_domain(id)
            .map_or_else(|| format!("domain {id}"), |n| n.name.clone())
    }

    fn path_name(&self, path: u8) -> String {
        self.setup
            .config
            .networks
            .get(usize::from(path))
            .map_or_else(|| format!("path {path}"), |n| n.name.clone())
    }

    fn log_event(&self, event: Event) {
        match event {
            Event::LinkUp { peer, path } => {
                tracing::info!(
                    "LinkUp: {} over {} is up (two-way)",
                    self.name(peer),
                    self.path_name(path)
                )
            }
            Event::LinkDown {
                peer,
                path,
                cause: LinkCause::PeerLeft,
            } => tracing::info!(
                "LinkDown: {} over {} is down (peer left)",
                self.name(peer),
                self.path_name(path)
            ),
            Event::LinkDown { peer, path, cause } => tracing::warn!(
                "LinkDown: {} over {} is down ({}); check that network or cable",
                self.name(peer),
                self.path_name(path),
                cause.as_str()
            ),
            Event::NodeUp { peer, incarnation } => {
                tracing::info!(
                    "NodeUp: {} is up (incarnation {incarnation})",
                    self.name(peer)
                )
            }
            Event::NodeDown {
                peer,
                cause: NodeCause::Left,
            } => tracing::info!("NodeDown: {} left the cluster cleanly", self.name(peer)),
            Event::NodeDown { peer, cause } => tracing::error!(
                "NodeDown: {} is down ({}); check that node and every private network to it",
                self.name(peer),
                cause.as_str()
            ),
            Event::IncarnationAccepted {
                peer,
                previous,
                incarnation,
                rebooted,
            } => match previous {
                None => tracing::info!("{} proved incarnation {incarnation}", self.name(peer)),
                Some(old) => tracing::warn!(
                    "{} restarted: incarnation {old} -> {incarnation}{}",
                    self.name(peer),
                    if rebooted {
                        " after an OS reboot"
                    } else {
                        " (daemon restart)"
                    }
                ),
            },
            Event::ConfigMismatch { peer, theirs } => tracing::error!(
                "{} runs config {theirs:08x}, this node {:08x}; it takes no service until they match \
                 (brief while a replicated cluster.toml restarts each hamond); otherwise compare \
                 `hactl config list` on both nodes and replicate one with `hactl config put cluster.toml FILE`",
                self.name(peer),
                self.setup.config.hash
            ),
            Event::Stall { late } => tracing::warn!(
                "stall: hamond was not scheduled for {} ms (VM pause, SIGSTOP or CPU starvation); \
                 silence during the stall is not held against peers, re-checking every link",
                late.as_millis()
            ),
            Event::RenewIncarnation => {}
            Event::Message { from, data } => {
                let known = [
                    view::PROTOCOL,
                    lock::PROTOCOL,
                    crate::services::PROTOCOL,
                    history::PROTOCOL,
                    litecloud::config::PROTOCOL,
                    nics::PROTOCOL,
                ];
                if !data.first().is_some_and(|p| known.contains(p)) {
                    tracing::debug!(
                        "message from {} of an unknown protocol ({} bytes): ignored",
                        self.name(from),
                        data.len()
                    )
                }
            }
            Event::OwnIdentity { path } => tracing::error!(
                severity = "crit",
                "frames signed with this node's own id ({}) arrive on {}: the line loops back to itself, or another \
                 node runs with the same --node name; fix it before any service runs here",
                self.name(self.setup.me),
                self.path_name(path)
            ),
            Event::Membership { epoch, members } => {
                let names: Vec<String> = members.iter().map(|&m| self.name(m)).collect();
                tracing::info!("membership epoch {epoch}: {}", names.join(", "))
            }
        }
    }

    /// A test event through every alert hook and mail, run (and answered)
    /// in the background, so slow hooks never hold up this loop.
    fn alert_test(&mut self, uid: Option<u32>, reply: oneshot::Sender<Response>) {
        let by = asker(uid);
        let what = "alert test (hactl alert test)".to_owned();
        let event = self
            .event(EventKind::Test, Severity::Info, what)
            .because(format!("asked by {by}"));
        self.record(event.clone());
        let alerts = self.alerts.clone();
        tokio::spawn(async move {
            let deliveries = alerts.test(&event).await;
            let deliveries = deliveries.into_iter().map(Into::into).collect();
            let _ = reply.send(Response::AlertTest { deliveries });
        });
    }

    /// Answers one control request.
    fn call(
        &mut self,
        CtlCall {
            request,
            uid,
            reply,
        }: CtlCall,
    ) {
        let response = match request {
            Request::AlertTest => return self.alert_test(uid, reply),
            Request::FenceTest { device } => return self.fencing.test(device, reply),
            Request::Nics { node } => return self.nics(node, reply),
            Request::Status => Response::Status(Box::new(self.status(clock::now()))),
            Request::FenceConfirm { node } => self.fence_confirm(&node),
            Request::History { filter, limit } => match &self.history {
                Some(h) => {
                    let mut events = h.query(&filter, limit.min(haschema::ctl::MAX_HISTORY));
                    // Peers' events arrive late after a resync: by time.
                    events.sort_by_key(|e| e.at_ms);
                    Response::History { events }
                }
                None => Response::Error {
                    message: format!(
                        "the event history in {} could not be opened; see hamond's log",
                        self.setup.state_dir.display()
                    ),
                },
            },
            // The nodes' advertised states, for the metrics.
            Request::Services => Response::Services {
                services: self.services.advertised(),
            },
            Request::ConfigList => self.configdb.list(),
            Request::ConfigGet { name } => self.configdb.get(&name),
            Request::ConfigPut {
                name,
                base,
                content,
                force_local,
            } => {
                let busy = self.service_busy();
                let cx = configdb::check::Context {
                    config: &self.setup.config,
                    busy: &busy,
                };
                let put = configdb::Put {
                    name,
                    base,
                    content,
                    force_local,
                    by: asker(uid),
                };
                self.configdb.put(clock::now(), put, &cx, reply);
                return self.drain();
            }
            Request::Service { .. } | Request::NodeStandby { .. } => Response::Error {
                message: "hamond does not run services: ask hasvrd (hactl service ...)".into(),
            },
        };
        let _ = reply.send(response);
    }

    /// AutoGet: `node`'s interfaces (None: this node's), read here or
    /// asked of that node's hamond; answered when its answer arrives.
    fn nics(&mut self, node: Option<String>, reply: oneshot::Sender<Response>) {
        let me = self.name(self.setup.me);
        let node = node.unwrap_or_else(|| me.clone());
        let error = |message: String| Response::Error { message };
        if node == me {
            let response = match nics::local() {
                Ok(nics) => Response::Nics {
                    node,
                    nics,
                    truncated: false,
                },
                Err(e) => error(e),
            };
            let _ = reply.send(response);
            return;
        }
        let Some(peer) = self.setup.config.node(&node).map(|n| n.domain) else {
            let message =
                format!("no node {node} in the cluster config; `hactl status` lists the nodes");
            let _ = reply.send(error(message));
            return;
        };
        if !self.node.peers().iter().any(|p| p.id == peer && p.up) {
            let message = format!(
                "{node} is down (not heard on any path): start its daemons, or run `hactl node nics` on it"
            );
            let _ = reply.send(error(message));
            return;
        }
        let Some(id) = self.autoget.wait(peer, &node, reply) else {
            return;
        };
        let ask = nics::encode(&nics::Message::Ask { id });
        if let Err(e) = self.node.send_message(clock::now(), peer, ask) {
            let message = format!("cannot ask {node}: {e}; is it up? (`hactl status`)");
            self.autoget.fail(id, message);
        }
        self.drain();
    }

    /// An AutoGet message from `from`: an ask is answered with this node's
    /// interfaces, an answer goes to the operator waiting for it.
    fn autoget_message(&mut self, from: NodeId, data: &[u8]) {
        match nics::decode(data) {
            Ok(nics::Message::Ask { id }) => {
                let (nics, truncated, error) = match nics::local() {
                    Ok(all) => {
                        let (nics, truncated) = nics::fit(all);
                        (nics, truncated, None)
                    }
                    Err(e) => (Vec::new(), false, Some(e)),
                };
                let answer = nics::encode(&nics::Message::Answer {
                    id,
                    nics,
                    truncated,
                    error,
                });
                if let Err(e) = self.node.send_message(clock::now(), from, answer) {
                    tracing::debug!("AutoGet answer to {} not sent: {e}", self.name(from));
                }
            }
            Ok(answer) => {
                if !self.autoget.answered(from, answer) {
                    tracing::debug!(
                        "AutoGet answer from {} nobody waits for: ignored",
                        self.name(from)
                    );
                }
            }
            Err(e) => tracing::warn!("{e} from {}: ignored", self.name(from)),
        }
    }

    /// The operator swears `node` is off (rule 1): refused for this node,
    /// an unknown node, or one the heartbeats still show up.
    fn fence_confirm(&mut self, node: &str) -> Response {
        let error = |message: String| Response::Error { message };
        let Some(id) = self.setup.config.node(node).map(|n| n.domain) else {
            return error(format!("no node {node} in the cluster config"));
        };
        if id == self.setup.me {
            return error(format!(
                "{node} is this node; confirm a node from one of the others"
            ));
        }
        if self.node.peer(id).is_some_and(|p| p.up) {
            return error(format!(
                "{node} is up on the heartbeat paths; confirm only a node you know is powered off"
            ));
        }
        tracing::warn!(
            severity = "alert",
            "the operator confirmed {node} is powered off: services it held may now be taken over"
        );
        self.fencing.cancel(id);
        self.services.node_fenced(id, true);
        let what = format!("{node} confirmed powered off by the operator");
        let event = self.event(EventKind::Operator, Severity::Warning, what);
        self.record(event.because("hactl fence confirm"));
        self.drain();
        Response::Done {
            message: format!("{node} confirmed off; its services may be taken over"),
        }
    }

    fn status(&self, now: Time) -> StatusReport {
        let cfg = &self.setup.config;
        let ms = |t: Time| now.saturating_sub(t).as_millis() as u64;
        let on_path: Vec<bool> = self.ports.iter().map(|p| p.tx.is_some()).collect();
        let peers = self
            .node
            .peers()
            .iter()
            .map(|peer| PeerStatus {
                name: self.name(peer.id),
                domain: peer.id,
                state: if peer.up { State::Up } else { State::Down },
                incarnation: peer.incarnation,
                config_matches: peer.config_hash.map(|h| h == cfg.hash),
                since_ms: ms(peer.since),
                cause: peer.cause.map(|c| c.as_str().to_string()),
                watchdog: self
                    .peer_watchdogs
                    .get(&peer.id)
                    .cloned()
                    .unwrap_or_default(),
                links: peer
                    .links
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| on_path[*i])
                    .filter_map(|(i, l)| Some((i, l.as_ref()?)))
                    .map(|(i, l)| LinkStatus {
                        path: self.path_name(i as u8),
                        state: if l.up { State::Up } else { State::Down },
                        last_heard_ms: l.last_heard.map(ms),
                        rtt_us: l.rtt.map(|r| r.as_micros() as u64),
                        cause: l.cause.map(|c| c.as_str().to_string()),
                    })
                    .collect(),
            })
            .collect();
        let paths = cfg
            .networks
            .iter()
            .enumerate()
            .filter(|(i, _)| on_path[*i])
            .map(|(i, net)| {
                let port = &self.ports[i];
                let counters = self.node.counters(i as u8).cloned().unwrap_or_default();
                PathStatus {
                    name: net.name.clone(),
                    kind: net.kind_name().to_string(),
                    open: port.open,
                    error: port.error.clone(),
                    frames_sent: counters.frames_sent,
                    frames_received: counters.frames_received,
                    bytes_sent: counters.bytes_sent,
                    bytes_received: counters.bytes_received,
                    rejected: counters
                        .rejected
                        .iter()
                        .map(|(r, n)| (r.as_str().to_string(), *n))
                        .collect::<BTreeMap<_, _>>(),
                }
            })
            .collect();
        let (stalls, last_stall) = self.node.stalls();
        StatusReport {
            cluster: cfg.name.clone(),
            netid: cfg.netid,
            node: self.name(self.setup.me),
            domain: self.setup.me,
            incarnation: self.setup.incarnation,
            boot: format!("{:08x}", self.setup.boot),
            config_hash: format!("{:08x}", cfg.hash),
            epoch: self.node.epoch(),
            view: self.agreement.view().map(|v| ViewStatus {
                epoch: v.id.epoch,
                coordinator: self.name(v.id.coordinator),
                members: v.members.iter().map(|m| self.name(m)).collect(),
                quorum: v.has_quorum(cfg.nodes.len()),
            }),
            withdrawn: self.withdrawn(),
            uptime_ms: ms(self.started),
            stalls,
            last_stall_ms: last_stall.map(|d| d.as_millis() as u64),
            peers,
            paths,
            watchdog: self.watchdog.as_ref().map(|k| k.status(clock::now())),
            fences: self.fencing.fences(),
            fence_devices: self.fencing.device_checks(),
        }
    }
}
