//! Carries out one service's steps on this node: what the state machine
//! ([`crate::service`]) asks for with [`Output::Start`](crate::service::Output::Start),
//! [`Output::Stop`](crate::service::Output::Stop) and
//! [`Output::Probe`](crate::service::Output::Probe), done with the libraries
//! that touch the node ([`crate::volume`], [`crate::fip`], [`crate::script`],
//! [`crate::track`]).
//!
//! One [`Steps`] per service on this node; its methods take `&self`, so the
//! daemon shares it in an `Arc` with the tasks that run the steps. Each
//! error is a sentence for the operator that says what to do.
//!
//! * **Volumes** (`steps/volumes.rs`): start mounts them in order with this node's
//!   device (file system check first when the volume asks for one); stop
//!   unmounts them in reverse order, ending the processes that use them.
//! * **Floating IPs** (`steps/ips.rs`): start puts each on the first NIC listed for
//!   this node that has carrier, after an ARP probe (safety rule 8: another
//!   host answering refuses the address, the error names its MAC), and
//!   announces it; a background task then keeps them: it announces once
//!   more, and moves an IP to the next NIC with carrier when its NIC loses
//!   carrier ([`StepEvent::IpMoved`], or [`StepEvent::PublicNetworkLost`]
//!   when no NIC is left). Stop ends that task, then removes each IP from
//!   whichever NIC holds it.
//! * **Public network watch** (`steps/ips.rs`, [`Steps::watch_public_network`]):
//!   for as long as the [`Steps`] live, whether the IPs are up here or not,
//!   a task follows the carrier of the NICs listed for this node and tells
//!   whether every floating IP has one with carrier: its state when it
//!   starts, then each change ([`StepEvent::PublicNetworkLost`],
//!   [`StepEvent::PublicNetworkBack`]), so a node whose cable is out says
//!   it cannot host the service, and says so no longer once it is back. A
//!   loss reported by the keeper makes it read and report the state again,
//!   so such a loss is always followed by the true state.
//! * **Ping watch** (`steps/reach.rs`, [`Steps::set_ping`]): with the
//!   cluster's ping addresses, every `check_interval`, each NIC listed for
//!   the IPs asks them through itself; one through which none answers
//!   `check_tko` times in a row counts as failed, as a NIC without
//!   carrier (the keeper moves its IPs, the public network watch reports
//!   the loss), until a check through it passes again.
//! * **Storage path watch** (`steps/storage.rs`, [`Steps::watch_storage`]):
//!   for as long as the [`Steps`] live, every `check_interval`, I/O on
//!   each volume (write, fsync and read back a check file in
//!   [`CHECK_DIR`] while it is mounted here, else an uncached read of the
//!   device) and a ping of the storage address, each bounded by a timeout
//!   on a blocking thread, so an I/O that hangs is "no answer" and never
//!   blocks hasvrd: [`StepEvent::StorageLost`] after `check_tko` failed
//!   checks in a row, [`StepEvent::StorageBack`] when one passes.
//! * **Application** (`steps/app.rs`): start runs the `start` script in the
//!   service's [`Tracker`], then starts the agent, whose exit is reported
//!   ([`StepEvent::AgentExited`]). Stop kills the agent (not reported), runs
//!   the `stop` script, then kills whatever is left in the tracker (safety
//!   rule 7). [`Steps::probe`] runs the `status` script.
//!
//! # Timeouts
//!
//! Each step runs under [`Settings::step_timeout`]: its scripts, file
//! system checks, unmounts and kills get what is left of it. A script that
//! reaches it is ended (SIGTERM, then SIGKILL after [`TERM_GRACE`]), and
//! what is left of the application is killed for up to [`KILL_WAIT`], so a
//! step ends at most [`OVERRUN`] after its timeout; past that it is
//! abandoned and reported failed. An unmount that hangs in the kernel (its
//! storage path hangs) is such a case: its blocking thread stays blocked,
//! the step is reported failed (the service's stop is not proven) and
//! hasvrd goes on.
//!
//! # Idempotence
//!
//! Stopping what is not up succeeds (no volume mounted, no IP held, no
//! process left). Starting what is up already keeps it: a mounted volume
//! stays, an IP on a listed NIC with carrier stays there (and is announced
//! again), a running agent is kept; the `start` script, though, runs each
//! time (it must accept an application that runs already, as LSB init
//! scripts do). A restarted hasvrd that found steps up
//! ([`Steps::held_here`]) takes them over with [`Steps::resume`], which
//! starts the background tasks (IP keeper, agent) without the `start`
//! script.

mod app;
mod ips;
mod reach;
mod storage;
mod volumes;

pub use app::{AGENT_SOCKET_ENV, PROBE_MIN};
pub use ips::ANNOUNCE_COUNT;
pub use storage::{CHECK_DIR, CHECK_TIMEOUT_MIN};

use crate::fip::Fip;
use crate::script::DEFAULT_TERM_GRACE;
use crate::service::{Settings, Status, Step};
use crate::track::Tracker;
use haschema::service::ServiceConfig;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// From a script's SIGTERM (at its timeout) to SIGKILL of its process
/// group.
pub const TERM_GRACE: Duration = DEFAULT_TERM_GRACE;

/// How long a stop keeps killing the application's processes after its
/// `stop` script, at least (more if the stop timeout leaves more).
pub const KILL_WAIT: Duration = Duration::from_secs(5);

/// How far past its timeout a step may run while its scripts are ended
/// and killed (SIGTERM, SIGKILL, both waited for, then the tracker's
/// kill); then it is abandoned and reported failed.
pub const OVERRUN: Duration = TERM_GRACE
    .saturating_mul(2)
    .saturating_add(KILL_WAIT)
    .saturating_add(Duration::from_secs(1));

/// What happens to a service in the background, for the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepEvent {
    /// The agent hasvrd started for the service exited by itself (`how`:
    /// its exit status, or why it could not be started). Hand it to
    /// [`crate::agent::Agents::agent_exited`]: a failure if the agent had
    /// opened its watch. An agent killed by a stop is not reported.
    AgentExited { service: String, how: String },
    /// A floating IP has no NIC with carrier left on this node (or could
    /// not be claimed on any that has): the service's public network is
    /// lost here, [`crate::service::Cause::PublicNetwork`]. Reported once
    /// until the IP is on a NIC with carrier again. Also sent by the public
    /// network watch ([`Steps::watch_public_network`]) when some IP has no
    /// listed NIC with carrier, whether the IPs are up here or not (and
    /// again at its start, or when the keeper reported a loss).
    PublicNetworkLost { service: String, reason: String },
    /// The public network watch ([`Steps::watch_public_network`]): every
    /// floating IP of the service has a NIC listed for this node with
    /// carrier (at its start, after a [`StepEvent::PublicNetworkLost`], or
    /// when the keeper reported a loss):
    /// [`crate::service::Input::PublicNetworkBack`].
    PublicNetworkBack { service: String },
    /// A floating IP moved to another NIC of this node because its NIC
    /// lost carrier; `from_nic` is `None` when it was on no NIC (a move
    /// that failed half-way, reported as [`StepEvent::PublicNetworkLost`]).
    IpMoved {
        service: String,
        addr: IpAddr,
        from_nic: Option<String>,
        to_nic: String,
    },
    /// The storage path watch ([`Steps::watch_storage`]): `check_tko`
    /// checks in a row failed (an I/O error, an I/O that did not answer in
    /// time, the storage address silent), whether the service runs here or
    /// not: [`crate::service::Cause::Storage`]. Reported once until a check
    /// passes.
    StorageLost { service: String, reason: String },
    /// The storage path watch: a check passed (the first one, or the first
    /// after a [`StepEvent::StorageLost`]):
    /// [`crate::service::Input::StorageBack`].
    StorageBack { service: String },
}

/// What of a service is up on this node, for reconciling after a hasvrd
/// restart ([`Steps::held_here`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// Floating IPs on a NIC of this node, with that NIC.
    pub ips: Vec<(IpAddr, String)>,
    /// Mount points of the volumes mounted from this node's device.
    pub volumes: Vec<PathBuf>,
    /// Live processes of the service's tracker.
    pub pids: Vec<i32>,
    /// What could not be checked, each a sentence: count it as possibly up.
    pub unknown: Vec<String>,
}

impl Held {
    /// Nothing is up, and everything could be checked.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty()
            && self.volumes.is_empty()
            && self.pids.is_empty()
            && self.unknown.is_empty()
    }
}

/// What the steps and their background tasks share.
struct Ctx {
    node: String,
    cfg: Arc<ServiceConfig>,
    settings: Settings,
    fip: Arc<Fip>,
    tracker: Tracker,
    events: UnboundedSender<StepEvent>,
    agent_socket: Option<PathBuf>,
    /// Held while floating IPs are added, moved, announced or removed.
    ip_lock: tokio::sync::Mutex<()>,
    /// Asks the public network watch to read and report the state again.
    recheck: tokio::sync::Notify,
    /// Asks the IP keeper to place the IPs again (a NIC failed the ping
    /// watch, or counts again).
    nics_changed: tokio::sync::Notify,
    /// The cluster's ping addresses ([`Steps::set_ping`]).
    ping: Mutex<Vec<IpAddr>>,
    /// NICs through which no ping address answers (the ping watch).
    unreachable: Mutex<BTreeSet<String>>,
    /// Held while volumes are mounted or unmounted; the storage path watch
    /// checks the volumes only when it is free.
    volume_lock: tokio::sync::Mutex<()>,
}

impl Ctx {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn send(&self, event: StepEvent) {
        // The daemon has gone away: nobody is left to tell.
        let _ = self.events.send(event);
    }

    fn ping_addresses(&self) -> Vec<IpAddr> {
        self.ping.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Marks `nic` failed by the ping watch (or not); whether that changed.
    fn set_unreachable(&self, nic: &str, failed: bool) -> bool {
        let mut set = self.unreachable.lock().unwrap_or_else(|p| p.into_inner());
        if failed {
            set.insert(nic.to_owned())
        } else {
            set.remove(nic)
        }
    }

    /// Whether the ping watch counts `nic` as failed.
    fn unreachable(&self, nic: &str) -> bool {
        self.unreachable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(nic)
    }
}

/// A background task that ends with its owner: aborted on drop, or
/// stopped (aborted and waited for) with [`Background::stop`].
struct Background(JoinHandle<()>);

impl Background {
    fn spawn(task: impl Future<Output = ()> + Send + 'static) -> Background {
        Background(tokio::spawn(task))
    }

    fn is_running(&self) -> bool {
        !self.0.is_finished()
    }

    /// Aborts the task and waits until it is dropped.
    async fn stop(mut self) {
        self.0.abort();
        let _ = (&mut self.0).await;
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The slot of an optional background task.
type Slot = Mutex<Option<Background>>;

fn lock(slot: &Slot) -> MutexGuard<'_, Option<Background>> {
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

/// Stops the task in `slot`, if any.
async fn stop_slot(slot: &Slot) {
    let task = lock(slot).take();
    if let Some(task) = task {
        task.stop().await;
    }
}

/// `Ok` when there is no error, else all of them in one.
fn joined(errors: Vec<String>) -> Result<(), String> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// The time left until `deadline`.
fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// What is done to a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Start,
    Stop,
    Resume,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Resume => "resume",
        }
    }
}

/// One service's steps on this node; see the module documentation.
/// Dropping it ends its background tasks: the IP keeper, the public network
/// watch, the storage path watch, and the agent (killed).
pub struct Steps {
    ctx: Arc<Ctx>,
    /// The task that keeps the floating IPs (announces, follows carrier).
    keeper: Slot,
    /// The agent's task.
    agent: Slot,
    /// The public network watch.
    network: Slot,
    /// The storage path watch.
    storage: Slot,
    /// The ping watch of the public network.
    reach: Slot,
}

impl Steps {
    /// The steps of service `cfg` on node `node`. `fip` is the daemon's
    /// floating-IP driver; `events` receives what happens in the background;
    /// `agent_socket`, when given, is passed to the service's scripts and
    /// agent as [`AGENT_SOCKET_ENV`] (else they use the API's default
    /// socket). Fails when `node` is not one of the service's nodes, or its
    /// processes cannot be tracked.
    pub fn new(
        node: &str,
        cfg: Arc<ServiceConfig>,
        fip: Arc<Fip>,
        events: UnboundedSender<StepEvent>,
        agent_socket: Option<PathBuf>,
    ) -> Result<Steps, String> {
        if !cfg.nodes().contains(&node) {
            return Err(format!(
                "service {}: node {node} is not one of its nodes ({}): fix `active` or \
                 `standby` in {}",
                cfg.name,
                cfg.nodes().join(", "),
                cfg.file.display()
            ));
        }
        let tracker = Tracker::for_service(node, &cfg.name)
            .map_err(|e| format!("service {}: {e}", cfg.name))?;
        // Only the step timeouts are read: fencing plays no part in them.
        let settings = Settings::from_config(&cfg, false);
        Ok(Steps {
            ctx: Arc::new(Ctx {
                node: node.to_owned(),
                cfg,
                settings,
                fip,
                tracker,
                events,
                agent_socket,
                ip_lock: tokio::sync::Mutex::new(()),
                recheck: tokio::sync::Notify::new(),
                nics_changed: tokio::sync::Notify::new(),
                ping: Mutex::new(Vec::new()),
                unreachable: Mutex::new(BTreeSet::new()),
                volume_lock: tokio::sync::Mutex::new(()),
            }),
            keeper: Slot::default(),
            agent: Slot::default(),
            network: Slot::default(),
            storage: Slot::default(),
            reach: Slot::default(),
        })
    }

    /// Starts the public network watch (see the module documentation),
    /// unless it runs or the service has no floating IP. Its first report
    /// (the state now) follows at once. Fails when the kernel's link
    /// notifications cannot be subscribed to.
    pub async fn watch_public_network(&self) -> Result<(), String> {
        if self.ctx.cfg.ips.is_empty()
            || lock(&self.network)
                .as_ref()
                .is_some_and(Background::is_running)
        {
            return Ok(());
        }
        let watch = self.ctx.fip.watch_carrier().await.map_err(|e| {
            format!(
                "service {}: cannot watch the carrier of its NICs ({e}): a lost public \
                 network will be noticed only while the service runs here",
                self.ctx.name()
            )
        })?;
        let task = ips::watch_network(self.ctx.clone(), watch);
        *lock(&self.network) = Some(Background::spawn(task));
        Ok(())
    }

    /// Starts the storage path watch (see the module documentation), unless
    /// it runs or the service has neither volumes nor a storage address. Its
    /// first report follows its first check, at once.
    pub fn watch_storage(&self) {
        let cfg = &self.ctx.cfg;
        let mut slot = lock(&self.storage);
        if (cfg.volumes.is_empty() && cfg.storage_ping.is_none())
            || slot.as_ref().is_some_and(Background::is_running)
        {
            return;
        }
        *slot = Some(Background::spawn(storage::watch(self.ctx.clone())));
    }

    /// Sets the cluster's ping addresses (`[cluster] ping`) and starts the
    /// ping watch (see the module documentation), unless it runs, the
    /// service has no floating IP or there is no address.
    pub fn set_ping(&self, addresses: Vec<IpAddr>) {
        let none = addresses.is_empty();
        *self.ctx.ping.lock().unwrap_or_else(|p| p.into_inner()) = addresses;
        let mut slot = lock(&self.reach);
        if self.ctx.cfg.ips.is_empty() || none || slot.as_ref().is_some_and(Background::is_running)
        {
            return;
        }
        *slot = Some(Background::spawn(reach::watch(self.ctx.clone())));
    }

    /// The service's process tracker (its scripts, agent and application).
    pub fn tracker(&self) -> &Tracker {
        &self.ctx.tracker
    }

    /// Starts `step` within `step_timeout(step, true)`.
    pub async fn start(&self, step: Step) -> Result<(), String> {
        self.bounded(step, Action::Start).await
    }

    /// Stops `step` within `step_timeout(step, false)`. Stopping what is
    /// not up succeeds.
    pub async fn stop(&self, step: Step) -> Result<(), String> {
        self.bounded(step, Action::Stop).await
    }

    /// Takes over `step`, found up by a restarted hasvrd
    /// ([`Steps::held_here`]), without starting it again, within
    /// `step_timeout(step, true)`: the floating IPs are kept where they are
    /// (moved only off a NIC without carrier), announced, and kept (as by
    /// [`Steps::start`]); the agent is started, the `start` script is not
    /// run; volumes need nothing. An agent the previous hasvrd started
    /// survived it only if that hasvrd was killed outright; it then runs
    /// beside the new one until the stop kills both.
    pub async fn resume(&self, step: Step) -> Result<(), String> {
        self.bounded(step, Action::Resume).await
    }

    /// Runs a step under its timeout, and logs how it went.
    async fn bounded(&self, step: Step, action: Action) -> Result<(), String> {
        let name = self.ctx.name();
        let starting = action != Action::Stop;
        let verb = action.verb();
        let limit = self.ctx.settings.step_timeout(step, starting);
        let begun = Instant::now();
        let deadline = begun + limit;
        tracing::info!("service {name}: {verb} of {step} begins (timeout {limit:?})");
        let run = async {
            match (action, step) {
                (Action::Start, Step::Volumes) => volumes::start(&self.ctx, deadline).await,
                (Action::Stop, Step::Volumes) => volumes::stop(&self.ctx, deadline).await,
                (Action::Resume, Step::Volumes) => Ok(()),
                (Action::Start | Action::Resume, Step::Ips) => self.start_ips().await,
                (Action::Stop, Step::Ips) => self.stop_ips().await,
                (Action::Start, Step::Application) => {
                    app::start(&self.ctx, deadline).await?;
                    self.start_agent();
                    Ok(())
                }
                (Action::Resume, Step::Application) => {
                    self.start_agent();
                    Ok(())
                }
                (Action::Stop, Step::Application) => {
                    // First, so that its death is not reported as a failure.
                    stop_slot(&self.agent).await;
                    app::stop(&self.ctx, deadline).await
                }
            }
        };
        let result = match tokio::time::timeout_at(deadline + OVERRUN, run).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "the {verb} of {step} did not finish within its timeout {limit:?} (plus \
                 {OVERRUN:?} to end its scripts) and was abandoned; what it was waiting for \
                 is in hasvrd's log above. Raise the service's {} if the node is just slow",
                match (starting, step) {
                    (true, _) => "start_timeout",
                    (false, Step::Application) => "stop_timeout",
                    (false, _) => "resource_release_timeout",
                }
            )),
        };
        match &result {
            Ok(()) => tracing::info!(
                "service {name}: {verb} of {step} done in {:.3?}",
                begun.elapsed()
            ),
            Err(e) => tracing::error!("service {name}: {verb} of {step} failed: {e}"),
        }
        result
    }

    /// The application's status from the `status` script, run with a
    /// timeout of the `check_interval` but at least [`PROBE_MIN`]. Its exit
    /// reads as LSB first (0 running; 1, 2, 3 not running), then as OCF for
    /// the codes LSB gives no meaning to (7 not running, 8 running as
    /// master); any other code, a timeout or a signal is
    /// [`Status::Failed`]. Without a `status` script: running while the
    /// service's tracker has a live process.
    pub async fn probe(&self) -> Status {
        app::probe(&self.ctx).await
    }

    /// Announces each floating IP held on this node again,
    /// [`ANNOUNCE_COUNT`] times (gratuitous ARP, unsolicited neighbour
    /// advertisements): after a partition heals, neighbours that followed
    /// another claimant come back. Failures are logged.
    pub async fn reannounce(&self) {
        for round in 0..ANNOUNCE_COUNT {
            if round > 0 {
                tokio::time::sleep(self.ctx.fip.config().announce_interval).await;
            }
            ips::announce_round(&self.ctx).await;
        }
    }

    /// What of the service is up on this node: floating IPs on a NIC,
    /// volumes mounted from this node's device, live tracked processes.
    pub async fn held_here(&self) -> Held {
        let mut held = Held::default();
        ips::held(&self.ctx, &mut held).await;
        volumes::held(&self.ctx, &mut held).await;
        match self.ctx.tracker.pids() {
            Ok(pids) => held.pids = pids,
            Err(e) => held.unknown.push(format!(
                "cannot list the processes of service {}: {e}",
                self.ctx.name()
            )),
        }
        held
    }

    async fn start_ips(&self) -> Result<(), String> {
        stop_slot(&self.keeper).await;
        if self.ctx.cfg.ips.is_empty() {
            return Ok(());
        }
        let keeper = ips::start(&self.ctx).await?;
        *lock(&self.keeper) = Some(Background::spawn(keeper));
        Ok(())
    }

    async fn stop_ips(&self) -> Result<(), String> {
        stop_slot(&self.keeper).await;
        ips::stop(&self.ctx).await
    }

    /// Starts the agent, if the service has one and it does not run.
    fn start_agent(&self) {
        let Some(agent) = app::agent(&self.ctx) else {
            return;
        };
        let mut slot = lock(&self.agent);
        if slot.as_ref().is_some_and(Background::is_running) {
            tracing::info!("service {}: its agent runs already", self.ctx.name());
        } else {
            *slot = Some(Background::spawn(agent));
        }
    }
}
