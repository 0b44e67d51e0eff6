//! The per-service, per-node state machine: the single gate every start of a
//! protected service goes through on this node.
//!
//! It is pure, like litecloud's engines: no I/O, no clocks. The driver
//! passes time in ([`Service::handle`] takes `now`), takes the resulting
//! [`Output`]s from [`Service::poll`], carries them out with the libraries
//! that touch the node (`crate::volume`, `crate::fip`, `crate::script`,
//! `crate::agent`, `crate::track`) and the ownership lock (litecloud's lock
//! table, through hamond), feeds the results back as [`Input`]s, and calls
//! `handle(now, Input::Timer)` at [`Service::next_deadline`].
//!
//! # Rules
//!
//! * **The gate.** Nothing starts unless ownership was granted
//!   ([`Input::OwnershipGranted`]) and not lost since. `onstart`, BringIn,
//!   TakeOver and FailOver only *request* ownership
//!   ([`Output::RequestOwnership`]); the lock table decides.
//! * **Order.** Start is volumes, then floating IPs, then the application
//!   ([`Step::ORDER`]), one step at a time; stop is the exact reverse. A
//!   failed start step stops what may be up, in reverse, *including the step
//!   that failed* (some of several volumes may be mounted, a start script
//!   killed on its timeout may have left the application running): stops
//!   are idempotent, a missed one is not.
//! * **Stopped means proven** (safety rule 7). A stop counts only when every
//!   step reported [`Input::Stopped`] *and* a status probe asked for after
//!   the last of them answered [`Status::NotRunning`]; only then is
//!   ownership released. A failed stop (or a probe that still finds the
//!   application) keeps the lock, so the service starts nowhere else, and
//!   puts the service in ERRORACT: with `force_reboot` the node stops petting
//!   the watchdog ([`Output::StopPettingWatchdog`], never a `reboot` that can
//!   hang); with a fencing device (and no `force_reboot`) an emergency
//!   alert and [`Output::AskPeerToFence`]: the most preferred able peer
//!   (asked once, as soon as there is one) powers this node off through its
//!   fencing device, then takes the lock over as from any fenced node (only
//!   that peer shoots, safety rule 4); otherwise an emergency alert, and
//!   the service stays in error until [`Op::Cleanup`].
//! * **Failures** (Skybility's white paper). An application failure (an
//!   agent report, or `check_tko` failed status probes in a row) restarts the
//!   application locally, up to `restart_times` times; after that the service
//!   fails over only if a peer is up and can host it; otherwise it keeps
//!   recovering locally and raises an emergency alert. A failed start counts as a failure
//!   too (retried after `check_interval`). Local attempts are counted from
//!   each grant of ownership and reset by Cleanup. The node the service
//!   failed over away from after its failures cannot host it until Cleanup
//!   ([`Service::failed_here`]; it queues only as a last resort and refuses
//!   an operator's TakeOver), or until every failure counted here expired
//!   (with `failure_timeout`).
//! * **Fail count** ([`Service::fail_count`], [`Service::failure_times`]).
//!   Every failure here is also kept with its time, across grants, until
//!   Cleanup or until it is older than `failure_timeout` (never without
//!   one). While it is at least `migration_threshold`, this node cannot
//!   host the service, as when its public network is lost: a holder here
//!   with an able peer fails over at once (or as soon as a peer becomes
//!   able), it queues only as a last resort, and TakeOver is refused. An
//!   expiry that ends it is logged, and the node can host again by itself.
//!   The driver persists the times, and a restarted hasvrd hands them back
//!   ([`Service::restore_failures`]).
//! * **Public network and storage path** ([`Loss`]). A lost public network
//!   ([`Cause::PublicNetwork`]: some floating IP has no NIC left on this
//!   node with carrier and, with ping addresses, through which one
//!   answers) or a lost storage path ([`Cause::Storage`]: the
//!   volumes' I/O fails or hangs, or the storage address does not answer,
//!   `check_tko` checks in a row) is a *fact* about this node, not a
//!   failure count: it holds until [`Input::PublicNetworkBack`] or
//!   [`Input::StorageBack`]. While either holds, this node
//!   cannot host the service ([`Service::can_host`] is false, so peers
//!   neither fail over nor switch back to it), it queues for the lock only
//!   as a last resort ([`PRIORITY_FAILED`]), an operator's TakeOver is
//!   refused, and a holder here with an able peer fails over at once, or as
//!   soon as a peer becomes able (no local restart: it would not help);
//!   with no able peer it stays and raises an emergency. A stop after a lost
//!   storage path may not be provable (I/O that hangs keeps the unmount
//!   from finishing): the step then fails on its timeout and the rules of a
//!   failed stop apply (ERRORACT, fencing or `force_reboot`). When the
//!   network or the path is back, the node can host again by itself (no
//!   Cleanup): with switchback on, a node it prefers gets the service back.
//! * **Node standby** ([`Input::Standby`], the operator's `hactl node
//!   standby on`). While it holds, this node cannot host the service, as
//!   when its public network is lost, but takes none at all: it never
//!   queues for the lock (not even as a last resort), never starts a step,
//!   and an operator's TakeOver is refused. A holder here moves to an able
//!   peer at once (or as soon as one is able); with none, what runs keeps
//!   running (a warning says so), and a granted lock with nothing up here
//!   is released at once. When it is over, the node wants the service
//!   again as after a start, and the switchback rules decide whether it
//!   comes back.
//! * **Switchback.** Off: a returning node never takes a service back by
//!   itself (it queues a request and waits). On: the holder stops (proven)
//!   and releases when a node it prefers (earlier in `active`, `standby`) has
//!   been up and able to host for `switchback_stable` without a break (a
//!   new failure there, a loss, or a leave starts the time again), so a
//!   flapping node does not drag the service back and forth; that node's
//!   queued request carries a higher priority.
//! * **Not ours, not running.** A status probe that finds the application
//!   running while this node does not own the service stops every step at
//!   once (application, IPs, volumes), then proves it. So does losing
//!   ownership while something is up here.
//! * **Stop** ([`Op::Stop`], Skyge's "stop service before remove
//!   service"). The operator's way to stop a service cluster-wide: every
//!   node brings it out (a queued request is withdrawn), and the holder
//!   (or a node with steps up) stops every step in reverse, proves it
//!   (rule 7 as any stop) and releases the lock without asking a peer to
//!   take over, so it runs nowhere and nobody asks for it until
//!   [`Op::BringIn`]. A step in progress finishes first. A failed or
//!   unproven stop is an error as any other (ERRORACT, the lock kept,
//!   fencing or `force_reboot`); Cleanup then stops, proves and releases
//!   again. A lock granted to a stopped node anyway (a request already on
//!   its way) is given back at once. It is refused in error (Cleanup
//!   first) and while shutting down. BringIn ends it (a stop still under
//!   way is cut short: the holder starts again what it stopped); a node
//!   that a preferred able node precedes in the service's nodes then waits
//!   [`Settings::boot_grace`] before it asks, as at boot, so that the
//!   service starts on its preferred able node.
//! * **Isolation** (the ping addresses and quorum decide only who
//!   releases). While hamond says this node may not hold services
//!   ([`Input::Isolation`]: it sees no other node on any heartbeat path and
//!   reaches none of the cluster's ping addresses, or with three or more
//!   nodes it lost quorum), a holder here stops (proven) and releases the
//!   service, and this node neither queues for it nor can host it; an
//!   emergency is raised. When it is over, the node wants the service
//!   again as after a start (it is granted only through the lock table).
//! * **STALLED** (safety rule 1). When the holder is lost uncleanly
//!   ([`Input::OwnerLostUncleanly`]) this node does not start the service,
//!   even if granted, until [`Input::Fenced`] or [`Input::FenceConfirmed`]
//!   names that holder (or it shows up again as holder); an emergency alert
//!   is raised.
//!
//! # States
//!
//! [`State`] is derived from the facts on every input, never stored, and
//! every change is reported as [`Output::StateChanged`]. The names are
//! SureHA's (manual, 3.3.2 "Service Status") plus STALLED:
//!
//! | state | manual's definition | here |
//! |---|---|---|
//! | ACTIVE | active here, standby on the peer | this node holds the lock or has steps up (starting, running, stopping) and an able peer exists, and it did not take the service over from another node |
//! | ACTIVEACT | active here, the peer has a fault | as ACTIVE, but no other node of the service is up and able to host it (unknown counts as unable) |
//! | ACTIVESTB | active now, standby before | as ACTIVE, but another node held the service between this node's previous grant and this one (a take-over or fail-over brought it here) |
//! | STANDBY | standby here, active on the peer | in the cluster, nothing up here, not held here; queued for the lock when eligible |
//! | OUTACT | brought out, was active here | brought out while holding it or with steps up: it keeps running, unwatched (or is being stopped, after Stop) |
//! | OUTSTB | brought out, was standby here | brought out (or stopped), nothing up here |
//! | ERRORACT | failed, was active here | a stop failed (or was not proven) while this node held the lock |
//! | ERRORSTB | failed, was standby here | a stop failed while this node did not hold the lock (a copy found running here) |
//! | STALLED | (not in the manual) | the holder was lost uncleanly and is not fenced; nothing is up here |
//!
//! Interpretations, where the manual is silent:
//!
//! * The manual's states are two-node words; with more nodes "the peer" is
//!   any other node of the service ([`Input::PeerState`] names it).
//! * When ACTIVEACT and ACTIVESTB both apply, ACTIVEACT wins: the missing
//!   protection is what the operator must see.
//! * STANDBY also covers "running nowhere yet, queued here".
//! * The manual's *BroughtOut* "takes the service out of the cluster without
//!   switching it": [`Op::BringOut`] stops watching and moving it, but stops
//!   nothing; the holder keeps the lock (so it cannot start twice), other
//!   nodes withdraw their queued requests. BringIn resumes (the holder probes
//!   at once). To stop it, [`Op::Stop`]: it ends brought out too, but
//!   stopped (proven) and released, OUTSTB on every node.
//! * `onstart` (Skyge) decides whether a node's machine starts brought in;
//!   with `onstart = false` it starts OUTSTB and waits for BringIn.
//! * ERROR is reserved for failed (or unproven) stops, the one failure that
//!   must block the service everywhere. Failed starts are failures counted
//!   against `restart_times`.
//!
//! # Driver contract
//!
//! * Each [`Output::Start`] / [`Output::Stop`] is answered by exactly one
//!   result for that step; only one step runs at a time. The step runs under
//!   the service's timeouts (`start_timeout`, `stop_timeout` for the
//!   application, `resource_release_timeout` for IPs and volumes, see
//!   [`Settings::step_timeout`]; `crate::script` enforces them), an expiry
//!   being reported as a failure. Results that do not match the outstanding
//!   step are ignored.
//! * Each [`Output::Probe`] is answered by one [`Input::StatusProbe`], in
//!   order. The machine probes once at creation (a copy found running
//!   without ownership is stopped) and every `check_interval` while running.
//!   The driver may also report unasked probe results while no probe is
//!   outstanding (a result that arrives while one is, answers it).
//! * [`Output::ReleaseOwnership`] gives up the lock, or withdraws a queued
//!   request when the lock was not granted yet.
//! * Operator commands go to the node they act on: TakeOver to the node that
//!   should take the service, FailOver to the holder; BringIn, BringOut,
//!   Stop, SwitchbackOn/Off and Cleanup to every node (a Stop issued
//!   anywhere thus reaches the holder). [`Output::AskPeerToTakeOver`]
//!   reaches the named node as a TakeOver; a TakeOver on one node reaches the
//!   holder as a FailOver.
//! * The driver advertises [`Service::can_host`] to the other nodes (their
//!   [`Input::PeerState`]). It is false after the service failed over away
//!   from this node because of its failures ([`Service::failed_here`], so a
//!   switchback does not bounce it back) until Cleanup or expiry; while its
//!   fail count is at `migration_threshold`; while the public
//!   network is lost here, until [`Input::PublicNetworkBack`]; while the
//!   storage path is lost here, until [`Input::StorageBack`]; in node
//!   standby; in error; and once shutting down.
//! * The driver watches the carrier of this node's NICs listed for the
//!   service's floating IPs for as long as it runs, whether or not the IPs
//!   are up here: [`Input::AgentFailed`] with [`Cause::PublicNetwork`] when
//!   some IP has no listed NIC with carrier left (the IP keeper also reports
//!   it while the IPs are up here), [`Input::PublicNetworkBack`] when every
//!   IP has one again. Likewise it checks the storage path every
//!   `check_interval` whether or not the service runs here (I/O on the
//!   mounted volumes, a read of their devices otherwise, the storage
//!   address): [`Input::AgentFailed`] with [`Cause::Storage`] after
//!   `check_tko` failed checks in a row, [`Input::StorageBack`] when a
//!   check passes again. Reports that repeat the known state are harmless.
//! * Operator commands the machine would refuse are told by
//!   [`Service::refusal`], so the driver can answer the operator (and
//!   forward nothing) instead of only logging the refusal.
//! * Ownership facts are fed before probe results at startup, so a restarted
//!   hasvrd that still holds the lock is not taken for a stray copy.

mod failcount;
mod standby;
#[cfg(test)]
mod tests;

use failcount::FailCount;

use haschema::service::ServiceConfig;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::Duration;

/// Monotonic time since an arbitrary origin (the driver's
/// `CLOCK_BOOTTIME`), as in litecloud.
pub type Time = Duration;

/// Priority of a request made by an operator's TakeOver: above every node's
/// own priority.
pub const PRIORITY_TAKEOVER: u32 = 1000;
/// Priority of the service's `active` node; the `n`th standby asks with
/// `PRIORITY_ACTIVE - 1 - n`.
pub const PRIORITY_ACTIVE: u32 = 100;
/// Priority of a node the service failed over away from (last resort).
pub const PRIORITY_FAILED: u32 = 1;
/// Least time a standby node waits at start before asking for a service
/// ([`Settings::boot_grace`]).
pub const BOOT_GRACE_MIN: Duration = Duration::from_secs(5);

/// One part of the service, in start order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// Mount the volumes.
    Volumes,
    /// Add the floating IPs.
    Ips,
    /// Run the start script (and start the agent).
    Application,
}

impl Step {
    /// Start order; stop order is the reverse.
    pub const ORDER: [Step; 3] = [Step::Volumes, Step::Ips, Step::Application];

    /// Position in [`Step::ORDER`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// `volumes`, `ips` or `application`.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Volumes => "volumes",
            Step::Ips => "ips",
            Step::Application => "application",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status probe's verdict (OCF/LSB status mapped by `crate::script`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The application runs.
    Running,
    /// It does not run (cleanly stopped).
    NotRunning,
    /// It is failed, or the probe itself failed: neither running well nor
    /// proven stopped.
    Failed,
}

/// What an agent (or the carrier watch) reported broken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The application itself: restarted locally first.
    Application(String),
    /// The public network the floating IPs live on (no NIC with carrier
    /// left): a restart does not help. It holds until
    /// [`Input::PublicNetworkBack`].
    PublicNetwork(String),
    /// The service's storage cannot be reached from this node (its I/O
    /// fails or hangs, or the storage address does not answer): a restart
    /// does not help. It holds until [`Input::StorageBack`].
    Storage(String),
}

/// A fact about this node that keeps it from hosting the service until it
/// is back; a local restart cannot help.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Loss {
    /// [`Cause::PublicNetwork`], until [`Input::PublicNetworkBack`].
    PublicNetwork,
    /// [`Cause::Storage`], until [`Input::StorageBack`].
    Storage,
}

impl Loss {
    /// What is lost, for the operator.
    fn what(self) -> &'static str {
        match self {
            Loss::PublicNetwork => "public network",
            Loss::Storage => "storage path",
        }
    }

    /// What the operator does about it.
    fn fix(self) -> &'static str {
        match self {
            Loss::PublicNetwork => "plug it back first",
            Loss::Storage => "repair the path to the storage first",
        }
    }
}

/// An operator's command (the manual's toolbar and Services menu).
pub use haschema::ctl::ServiceOp as Op;

/// Alert levels: SureHA's INFO, WARNING, ERROR, plus Skybility's emergency
/// (the `emerg` syslog level, wired to the user's alarm hook).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Info,
    Warning,
    Error,
    Emergency,
}

/// What the driver tells the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// The lock table granted this node the service.
    OwnershipGranted,
    /// This node no longer holds it (lease lost, evicted).
    OwnershipLost,
    /// Who holds it now, as the lock table says.
    OwnerIs(Option<String>),
    /// The holder left the membership without releasing it (crash,
    /// partition): its lock is orphaned until it is fenced.
    OwnerLostUncleanly(String),
    Started(Step),
    StartFailed(Step, String),
    Stopped(Step),
    StopFailed(Step, String),
    StatusProbe(Status),
    AgentFailed(Cause),
    /// Facts about another node of the service: `up` (member of the view),
    /// `can_host` (its HA runs, it is eligible and its NIC for the floating
    /// IPs has carrier).
    PeerState {
        node: String,
        up: bool,
        can_host: bool,
    },
    /// An operator's (or agent API's) command; `by` names who asked.
    Command {
        op: Op,
        by: String,
    },
    /// This node's NICs can carry every floating IP of the service again
    /// (each has a listed NIC with carrier): ends a
    /// [`Cause::PublicNetwork`] loss. Harmless when none was reported.
    PublicNetworkBack,
    /// The storage path works from this node again (a check passed): ends
    /// a [`Cause::Storage`] loss. Harmless when none was reported.
    StorageBack,
    /// This node may not hold services (why: it is isolated, or lost
    /// quorum), or may again (`None`).
    Isolation(Option<String>),
    /// This node is in standby (why: who put it there), or no longer is
    /// (`None`).
    Standby(Option<String>),
    /// The fence device confirmed that node powered off.
    Fenced(String),
    /// The operator swore that node is off (`hactl fence confirm`).
    FenceConfirmed(String),
    /// [`Service::next_deadline`] passed.
    Timer,
    /// hasvrd is stopping (node shutdown): stop everything here, prove it,
    /// release the lock (asking the best peer to take over) and never
    /// request it again; [`Service::settled`] says when it is done.
    Shutdown,
}

/// What the machine asks the driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Start(Step),
    Stop(Step),
    /// Run the status probe.
    Probe,
    /// Queue for the lock (or raise this node's queued priority).
    RequestOwnership {
        priority: u32,
    },
    /// Give up the lock, or withdraw the queued request.
    ReleaseOwnership,
    /// Ask that node (the most preferred able one, if known) to take the
    /// service over.
    AskPeerToTakeOver {
        node: Option<String>,
    },
    /// A stop failed here while this node holds the lock, a fencing device
    /// covers the nodes and the service has no `force_reboot` (safety rule
    /// 7): ask `node` (the most preferred able peer) to fence this node; it
    /// takes the service over once this node is off. Asked once per error.
    AskPeerToFence {
        node: String,
    },
    Alert {
        level: Level,
        text: String,
    },
    /// A stop failed with `force_reboot`: let the watchdog reset the node.
    StopPettingWatchdog,
    StateChanged {
        from: State,
        to: State,
        cause: String,
    },
}

/// The service's state on this node, as the SureHA manual names it (plus
/// STALLED); see the module doc for the mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Active,
    ActiveAct,
    ActiveStb,
    Standby,
    OutAct,
    OutStb,
    ErrorAct,
    ErrorStb,
    Stalled,
}

impl State {
    /// Every state.
    pub const ALL: [State; 9] = [
        State::Active,
        State::ActiveAct,
        State::ActiveStb,
        State::Standby,
        State::OutAct,
        State::OutStb,
        State::ErrorAct,
        State::ErrorStb,
        State::Stalled,
    ];

    /// The name as displayed: `ACTIVE`, `ACTIVEACT`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            State::Active => "ACTIVE",
            State::ActiveAct => "ACTIVEACT",
            State::ActiveStb => "ACTIVESTB",
            State::Standby => "STANDBY",
            State::OutAct => "OUTACT",
            State::OutStb => "OUTSTB",
            State::ErrorAct => "ERRORACT",
            State::ErrorStb => "ERRORSTB",
            State::Stalled => "STALLED",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the machine needs from the service config and the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub name: String,
    /// The active node, then the standbys, in order of preference.
    pub nodes: Vec<String>,
    pub check_interval: Duration,
    pub check_tko: u32,
    pub restart_times: u32,
    pub switchback: bool,
    pub onstart: bool,
    pub force_reboot: bool,
    pub start_timeout: Duration,
    pub stop_timeout: Duration,
    pub resource_release_timeout: Duration,
    /// Whether a fencing device covers the nodes (cluster config).
    pub fencing: bool,
    /// How long a node that is not the service's first waits at start
    /// before it asks for the service, so that nodes starting together put
    /// it on its active node: twice the check interval, at least
    /// [`BOOT_GRACE_MIN`].
    pub boot_grace: Duration,
    /// Failures counted here (since Cleanup, not expired) that make this
    /// node unable to host the service.
    pub migration_threshold: Option<u32>,
    /// How long a failure counts; None: until Cleanup.
    pub failure_timeout: Option<Duration>,
    /// With switchback, how long a preferred node must have been able to
    /// host before the service goes back to it.
    pub switchback_stable: Duration,
}

impl Settings {
    /// From a checked service file; `fencing` says whether the cluster has a
    /// fencing device for its nodes.
    pub fn from_config(cfg: &ServiceConfig, fencing: bool) -> Settings {
        Settings {
            name: cfg.name.clone(),
            nodes: cfg.nodes().into_iter().map(str::to_owned).collect(),
            check_interval: cfg.check_interval,
            check_tko: cfg.check_tko.max(1),
            restart_times: cfg.restart_times,
            switchback: cfg.switchback,
            onstart: cfg.onstart,
            force_reboot: cfg.force_reboot,
            start_timeout: cfg.start_timeout,
            stop_timeout: cfg.stop_timeout,
            resource_release_timeout: cfg.resource_release_timeout,
            fencing,
            boot_grace: (cfg.check_interval * 2).max(BOOT_GRACE_MIN),
            migration_threshold: cfg.migration_threshold,
            failure_timeout: cfg.failure_timeout,
            switchback_stable: cfg.switchback_stable,
        }
    }

    /// The timeout the driver runs a step under.
    pub fn step_timeout(&self, step: Step, starting: bool) -> Duration {
        match (starting, step) {
            (true, _) => self.start_timeout,
            (false, Step::Application) => self.stop_timeout,
            (false, _) => self.resource_release_timeout,
        }
    }
}

/// The operation the driver is carrying out for the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    None,
    Start(usize),
    Stop(usize),
    /// The status probe that proves a stop.
    Proof,
}

/// Why the service is in error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The lock was held here when it happened (ERRORACT, else ERRORSTB).
    pub was_active: bool,
    pub step: Step,
    pub reason: String,
}

/// What another node of the service last said about itself.
#[derive(Clone, Copy, Debug)]
struct Peer {
    up: bool,
    can_host: bool,
    /// Since when it has been up and able to host without a break.
    able_since: Option<Time>,
}

impl Peer {
    fn able(&self) -> bool {
        self.up && self.can_host
    }
}

/// One service's machine on one node.
#[derive(Debug)]
pub struct Service {
    s: Settings,
    me: String,
    my_index: Option<usize>,
    out: VecDeque<Output>,
    reported: State,

    // Ownership.
    owned: bool,
    requested: Option<u32>,
    other_held_since_grant: bool,
    took_over: bool,
    stalled: Option<String>,
    fenced: BTreeSet<String>,
    peers: BTreeMap<String, Peer>,

    // Resources on this node.
    /// Steps that may be up: `Step::ORDER[..up]` (a started or failed-to-
    /// start step counts until it reported stopped).
    up: usize,
    pending: Pending,
    /// Nothing was started since the last proof (or ever).
    proven: bool,
    /// Stop down to this many steps (0: all, then prove) before running
    /// again.
    cycle: Option<usize>,
    probes_in_flight: u32,
    next_probe: Option<Time>,
    tko: u32,

    // Policy.
    managed: bool,
    want_here: bool,
    hold_back_until: Option<Time>,
    /// The peer asked to take the service over at the last release.
    asked: Option<String>,
    retry_at: Option<Time>,
    switchback: bool,
    failures: u32,
    failed_here: bool,
    fail_count: FailCount,
    /// What is lost on this node (why), until it is back.
    lost: BTreeMap<Loss, String>,
    error: Option<Fault>,
    /// A peer was asked to fence this node for the current error.
    fence_asked: bool,
    /// Why this node may not hold services (isolated, or without quorum),
    /// while it may not.
    isolated: Option<String>,
    /// Why this node is in standby, while it is.
    standby: Option<String>,
    watchdog_stopped: bool,
    leaving: bool,
    /// An operator's Stop, until BringIn: everything here goes down
    /// (proven) and a lock held here is released, not asked for again.
    stopped: bool,
}

impl Service {
    /// The machine for `cfg` on node `me`, at time `now`.
    pub fn new(cfg: &ServiceConfig, me: &str, fencing: bool, now: Time) -> Service {
        Service::with_settings(Settings::from_config(cfg, fencing), me, now)
    }

    /// The machine of a restarted hasvrd, which found the first `up` steps
    /// of the service up on this node ([`Step::ORDER`]) and learned from
    /// the lock table whether this node `owned` it: an owner goes on from
    /// there without restarting what runs (starting the missing steps, then
    /// watching); a node that does not own it stops what it found. With
    /// `standby` (why, persisted by the driver) the node starts in node
    /// standby, so it never queues for the lock in between.
    pub fn restored(
        s: Settings,
        me: &str,
        now: Time,
        owned: bool,
        up: usize,
        standby: Option<String>,
    ) -> Service {
        let mut svc = Service::build(s, me);
        svc.standby = standby;
        svc.owned = owned;
        svc.up = up.min(Step::ORDER.len());
        svc.proven = svc.up == 0;
        if owned && svc.up == Step::ORDER.len() {
            // The first probe goes out at once; watching goes on from it.
            svc.next_probe = Some(now + svc.s.check_interval);
        }
        svc.begin(now);
        svc
    }

    /// The machine from explicit settings. It first probes (a copy running
    /// here without ownership is stopped), and with `onstart` requests
    /// ownership.
    pub fn with_settings(s: Settings, me: &str, now: Time) -> Service {
        let mut svc = Service::build(s, me);
        svc.begin(now);
        svc
    }

    fn build(s: Settings, me: &str) -> Service {
        let my_index = s.nodes.iter().position(|n| n == me);
        Service {
            me: me.to_owned(),
            my_index,
            out: VecDeque::new(),
            reported: State::OutStb,
            owned: false,
            requested: None,
            other_held_since_grant: false,
            took_over: false,
            stalled: None,
            fenced: BTreeSet::new(),
            peers: BTreeMap::new(),
            up: 0,
            pending: Pending::None,
            proven: true,
            cycle: None,
            probes_in_flight: 0,
            next_probe: None,
            tko: 0,
            managed: s.onstart,
            want_here: true,
            hold_back_until: None,
            asked: None,
            retry_at: None,
            switchback: s.switchback,
            failures: 0,
            failed_here: false,
            fail_count: FailCount::default(),
            lost: BTreeMap::new(),
            error: None,
            fence_asked: false,
            isolated: None,
            standby: None,
            watchdog_stopped: false,
            leaving: false,
            stopped: false,
            s,
        }
    }

    fn begin(&mut self, now: Time) {
        // Boot order: a node that is not the service's first lets the
        // nodes before it ask first, so that nodes starting together put
        // the service on its active node.
        if !self.owned && self.my_index.is_some_and(|i| i > 0) && !self.s.boot_grace.is_zero() {
            self.want_here = false;
            self.hold_back_until = Some(now + self.s.boot_grace);
        }
        self.reported = self.compute_state();
        self.probe();
        self.drive(now);
    }

    /// Feeds one input at time `now`.
    pub fn handle(&mut self, now: Time, input: Input) {
        let cause = describe(&input);
        self.expire(now);
        match input {
            Input::OwnershipGranted => self.on_granted(),
            Input::OwnershipLost => self.lose_ownership("the lock table took the lock back"),
            Input::OwnerIs(owner) => self.on_owner_is(owner),
            Input::OwnerLostUncleanly(node) => self.on_owner_lost(node),
            Input::Started(step) => {
                if self.pending == Pending::Start(step.index()) {
                    self.pending = Pending::None;
                    if step == Step::Application {
                        self.next_probe = Some(now + self.s.check_interval);
                        self.tko = 0;
                    }
                }
            }
            Input::StartFailed(step, reason) => {
                if self.pending == Pending::Start(step.index()) {
                    self.pending = Pending::None;
                    self.on_start_failed(now, step, &reason);
                }
            }
            Input::Stopped(step) => {
                if self.pending == Pending::Stop(step.index()) {
                    self.pending = Pending::None;
                    self.up = step.index();
                }
            }
            Input::StopFailed(step, reason) => {
                if self.pending == Pending::Stop(step.index()) {
                    self.pending = Pending::None;
                    self.stop_failed(step, &reason);
                }
            }
            Input::StatusProbe(status) => self.on_status(now, status),
            Input::AgentFailed(cause) => self.on_agent_failed(now, cause),
            Input::PublicNetworkBack => self.on_back(Loss::PublicNetwork),
            Input::StorageBack => self.on_back(Loss::Storage),
            Input::PeerState { node, up, can_host } => {
                if node != self.me && self.s.nodes.contains(&node) {
                    let able = up && can_host;
                    if !able
                        && !self.owned
                        && self.hold_back_until.is_some()
                        && self.asked.as_deref() == Some(node.as_str())
                    {
                        self.asked_peer_gone(now, &node, up);
                    }
                    let able_since = match self.peers.get(&node) {
                        Some(p) if p.able() && able => p.able_since,
                        _ => able.then_some(now),
                    };
                    self.peers.insert(
                        node,
                        Peer {
                            up,
                            can_host,
                            able_since,
                        },
                    );
                }
            }
            Input::Command { op, by } => self.on_command(now, op, &by),
            Input::Fenced(node) | Input::FenceConfirmed(node) => self.on_fenced(node),
            Input::Isolation(why) => self.on_isolation(why),
            Input::Standby(why) => self.on_standby(why),
            Input::Timer => {}
            Input::Shutdown => {
                self.leaving = true;
                self.want_here = false;
                self.cycle = None;
                self.retry_at = None;
            }
        }
        self.drive(now);
        // Probes go out after the input: a result in this input never
        // answers a probe asked for in the same call.
        self.schedule_probe(now);
        self.report(cause);
    }

    /// The next output, if any.
    pub fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When to feed [`Input::Timer`] next, if ever.
    pub fn next_deadline(&self) -> Option<Time> {
        let probe = self
            .next_probe
            .filter(|_| self.monitoring() && self.probes_in_flight == 0);
        let expiry = self.fail_count.next_expiry(self.s.failure_timeout);
        [
            probe,
            self.retry_at,
            self.hold_back_until,
            expiry,
            self.switchback_at(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The state as the manual names it.
    pub fn state(&self) -> State {
        self.reported
    }

    /// Whether this node holds the lock.
    pub fn owned(&self) -> bool {
        self.owned
    }

    /// The steps that may be up here, in start order.
    pub fn steps_up(&self) -> &'static [Step] {
        &Step::ORDER[..self.up]
    }

    /// Whether the service is brought in (watched and moved).
    pub fn managed(&self) -> bool {
        self.managed
    }

    /// Whether an operator's Stop holds, until BringIn.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Restores at `now` an operator's Stop that the driver persisted, on
    /// a machine built brought out (`onstart` false, so it never asked for
    /// the lock): it stays stopped until BringIn, and whatever of it is
    /// still up here is stopped (proven) and a lock held here released.
    pub fn restore_stopped(&mut self, now: Time) {
        self.managed = false;
        self.stopped = true;
        self.drive(now);
        self.report("stopped by the operator before hasvrd restarted".into());
    }

    /// Held, brought in, every step up and watched, nothing in progress.
    pub fn running_here(&self) -> bool {
        self.monitoring()
    }

    /// Whether the machine still wants the service on this node (false
    /// once it decided to move it away, to shut down, or was stopped).
    pub fn wants_here(&self) -> bool {
        self.want_here && !self.leaving && !self.stopped
    }

    /// Failures of the service on this node since Cleanup, expired ones
    /// left out (against `migration_threshold`).
    pub fn fail_count(&self) -> u32 {
        self.fail_count.count()
    }

    /// When each failure of [`Service::fail_count`] happened, oldest first.
    pub fn failure_times(&self) -> impl Iterator<Item = Time> + '_ {
        self.fail_count.times()
    }

    /// The service failed over away from here because of its failures; the
    /// driver advertises this node as unable to host it until Cleanup.
    pub fn failed_here(&self) -> bool {
        self.failed_here
    }

    /// Why this node's public network is lost, while it is
    /// ([`Cause::PublicNetwork`] until [`Input::PublicNetworkBack`]).
    pub fn public_network_down(&self) -> Option<&str> {
        self.lost.get(&Loss::PublicNetwork).map(String::as_str)
    }

    /// Why this node's storage path is lost, while it is
    /// ([`Cause::Storage`] until [`Input::StorageBack`]).
    pub fn storage_down(&self) -> Option<&str> {
        self.lost.get(&Loss::Storage).map(String::as_str)
    }

    /// Why this node is in node standby, while it is ([`Input::Standby`]).
    pub fn standby(&self) -> Option<&str> {
        self.standby.as_deref()
    }

    /// Whether this node can host the service, as the driver advertises it
    /// to the other nodes: not in error, not failed away from here (until
    /// Cleanup or expiry), its fail count below `migration_threshold`, its
    /// public network and storage path not lost, not in node standby, not
    /// shutting down.
    pub fn can_host(&self) -> bool {
        self.standby.is_none()
            && self.error.is_none()
            && !self.failed_here
            && self.over_threshold().is_none()
            && self.lost.is_empty()
            && !self.leaving
            && self.isolated.is_none()
    }

    /// Why this machine would refuse the operator's `op` now, if it would:
    /// the driver answers the operator with it instead of carrying `op`
    /// out (a TakeOver here is then not forwarded to the holder).
    pub fn refusal(&self, op: Op) -> Option<String> {
        let why = match op {
            Op::TakeOver => {
                if self.error.is_some() {
                    "the service is in error; Cleanup first".to_owned()
                } else if !self.managed {
                    "the service is brought out; BringIn first".to_owned()
                } else if self.my_index.is_none() {
                    "this node is not one of the service's nodes".to_owned()
                } else if self.leaving {
                    "hasvrd is shutting down on this node".to_owned()
                } else if let Some(why) = &self.isolated {
                    format!("this node may not hold services now ({why})")
                } else if let Some(why) = &self.standby {
                    format!("this node is in standby ({why}); `hactl node standby off` first")
                } else if self.failed_here {
                    "the service failed over away from this node after its failures; Cleanup \
                     first"
                        .to_owned()
                } else if let Some(why) = self.over_threshold() {
                    format!("{why}; Cleanup first, or wait until failures expire")
                } else if let Some((loss, reason)) = self.lost.iter().next() {
                    format!(
                        "this node's {} is lost ({reason}); {}",
                        loss.what(),
                        loss.fix()
                    )
                } else {
                    return None;
                }
            }
            Op::FailOver => {
                if self.error.is_some() {
                    "the service is in error; Cleanup first".to_owned()
                } else if !self.owned {
                    "the service is not held here".to_owned()
                } else if !self.managed {
                    "the service is brought out; BringIn first".to_owned()
                } else if self.best_peer().is_none() {
                    "no peer is up and able to host it".to_owned()
                } else {
                    return None;
                }
            }
            Op::Stop => {
                if let Some(f) = &self.error {
                    format!(
                        "the service is in error here (stop of {} failed: {}); fix the cause \
                         and Cleanup first (it stops and proves it again)",
                        f.step, f.reason
                    )
                } else if self.leaving {
                    "hasvrd is shutting down on this node (it stops the service anyway)".to_owned()
                } else {
                    return None;
                }
            }
            _ => return None,
        };
        Some(why)
    }

    /// Why the service is in error, if it is.
    pub fn fault(&self) -> Option<&Fault> {
        self.error.as_ref()
    }

    /// The holder lost uncleanly and not fenced yet, if any.
    pub fn stalled_on(&self) -> Option<&str> {
        self.stalled.as_deref()
    }

    /// After [`Input::Shutdown`]: nothing is up or in progress here and the
    /// lock is not held (or a failed stop keeps it: the service is in
    /// error, and waiting longer does not help).
    pub fn settled(&self) -> bool {
        self.pending == Pending::None
            && ((self.up == 0 && self.proven && !self.owned) || self.error.is_some())
    }

    /// Whether switchback is on (config, then SwitchbackOn/Off).
    pub fn switchback(&self) -> bool {
        self.switchback
    }

    /// The settings the machine runs with.
    pub fn settings(&self) -> &Settings {
        &self.s
    }

    /// Replaces the settings (the service file changed and was reloaded;
    /// the driver does it only while the service is neither held nor up
    /// here). What happened here is kept: the fail count, brought in or
    /// out, node standby, the peers' states; switchback takes the file's
    /// new value only if the file changed it.
    pub fn replace_settings(&mut self, s: Settings) {
        if s.switchback != self.s.switchback {
            self.switchback = s.switchback;
        }
        self.my_index = s.nodes.iter().position(|n| *n == self.me);
        self.peers.retain(|node, _| s.nodes.contains(node));
        self.s = s;
    }

    // ---- facts -----------------------------------------------------------

    fn compute_state(&self) -> State {
        if let Some(f) = &self.error {
            return if f.was_active {
                State::ErrorAct
            } else {
                State::ErrorStb
            };
        }
        // Something here may run until a probe proved otherwise.
        let up_here = self.up > 0 || !self.proven;
        if self.stalled.is_some() && !up_here {
            return State::Stalled;
        }
        let here = self.owned || up_here;
        if !self.managed {
            return if here { State::OutAct } else { State::OutStb };
        }
        if !here {
            State::Standby
        } else if self.best_peer().is_none() {
            State::ActiveAct
        } else if self.took_over {
            State::ActiveStb
        } else {
            State::Active
        }
    }

    /// The most preferred other node that is up and can host.
    /// `node`, asked to take the service over after this node released it,
    /// can no longer host it before it took it: the next able peer is
    /// asked, or this node queues again at once (never lost).
    fn asked_peer_gone(&mut self, now: Time, node: &str, up: bool) {
        let why = if up {
            "can no longer host it"
        } else {
            "is down"
        };
        self.peers.remove(node);
        let next = self.best_peer().map(str::to_owned);
        let doing = match &next {
            Some(next) => format!("asking {next}"),
            None => "taking it back here if this node may".to_owned(),
        };
        self.alert(
            Level::Warning,
            format!("{node}, asked to take the service over, {why}: {doing}"),
        );
        if next.is_some() {
            self.ask_best_peer(now);
        } else {
            self.asked = None;
            self.end_hold_back();
        }
    }

    fn best_peer(&self) -> Option<&str> {
        self.s
            .nodes
            .iter()
            .find(|n| **n != self.me && self.peers.get(*n).is_some_and(Peer::able))
            .map(String::as_str)
    }

    /// When a switchback is due, if one will be: the earliest time a node
    /// preferred to this one has been able to host for `switchback_stable`,
    /// while switchback is on and the service is watched here.
    fn switchback_at(&self) -> Option<Time> {
        let mine = self.my_index?;
        if !self.switchback || !self.monitoring() {
            return None;
        }
        self.s.nodes[..mine]
            .iter()
            .filter_map(|n| self.peers.get(n)?.able_since)
            .map(|t| t + self.s.switchback_stable)
            .min()
    }

    /// Why the fail count keeps this node from hosting, if it does.
    fn over_threshold(&self) -> Option<String> {
        let max = self.s.migration_threshold?;
        let n = self.fail_count.count();
        (n >= max).then(|| format!("{n} failure(s) here reached migration_threshold {max}"))
    }

    /// Why this node cannot host the service, among the facts that move a
    /// holder with an able peer at once: a loss, or the fail count.
    fn unable_here(&self) -> Option<String> {
        self.lost
            .values()
            .next()
            .cloned()
            .or_else(|| self.over_threshold())
    }

    fn priority(&self) -> u32 {
        match self.my_index {
            _ if self.failed_here || self.unable_here().is_some() => PRIORITY_FAILED,
            Some(i) => PRIORITY_ACTIVE
                .saturating_sub(i as u32)
                .max(PRIORITY_FAILED + 1),
            None => PRIORITY_FAILED,
        }
    }

    /// Running, held, brought in, nothing in progress: watched by probes.
    fn monitoring(&self) -> bool {
        self.owned
            && self.managed
            && self.want_here
            && self.up == Step::ORDER.len()
            && self.pending == Pending::None
            && self.cycle.is_none()
            && self.error.is_none()
    }

    // ---- outputs ---------------------------------------------------------

    fn emit(&mut self, o: Output) {
        self.out.push_back(o);
    }

    fn alert(&mut self, level: Level, text: String) {
        let text = format!("service {}: {text}", self.s.name);
        self.emit(Output::Alert { level, text });
    }

    fn probe(&mut self) {
        self.probes_in_flight += 1;
        self.emit(Output::Probe);
    }

    fn report(&mut self, cause: String) {
        let now = self.compute_state();
        if now != self.reported {
            let from = self.reported;
            self.reported = now;
            self.emit(Output::StateChanged {
                from,
                to: now,
                cause,
            });
        }
    }

    // ---- the one place that acts -------------------------------------------

    /// Takes the next step towards what the facts call for, when nothing is
    /// in progress.
    fn drive(&mut self, now: Time) {
        if self.pending == Pending::None && self.error.is_none() {
            self.drive_steps(now);
        }
        self.drive_requests();
        self.drive_fence();
    }

    /// A failed stop that keeps the lock here, with a fencing device and
    /// no `force_reboot`: the most preferred able peer is asked to fence
    /// this node, once (as soon as there is one).
    fn drive_fence(&mut self) {
        let fence_me = self.owned
            && self.s.fencing
            && !self.s.force_reboot
            && self.error.as_ref().is_some_and(|f| f.was_active);
        if !fence_me || self.fence_asked {
            return;
        }
        if let Some(peer) = self.best_peer().map(str::to_owned) {
            self.fence_asked = true;
            self.alert(
                Level::Emergency,
                format!("asking {peer} to fence this node and take the service over"),
            );
            self.emit(Output::AskPeerToFence { node: peer });
        }
    }

    fn drive_steps(&mut self, now: Time) {
        if self.stopped {
            return self.drive_stop();
        }
        // Isolated: release whatever runs here, whether or not a peer is
        // seen (none is).
        if self.owned && self.want_here && self.isolated.is_some() {
            self.move_away();
        }
        // No public network or storage path here and an able peer: move,
        // whatever this node was doing with the service (a restart here
        // would not help).
        if self.owned
            && self.want_here
            && self.managed
            && let Some(reason) = self.unable_here()
            && let Some(peer) = self.best_peer().map(str::to_owned)
        {
            self.alert(Level::Error, format!("{reason}: failing over to {peer}"));
            self.move_away();
        }
        self.leave_for_standby();
        if let Some(floor) = self.cycle {
            if self.up > floor {
                return self.issue_stop();
            }
            if floor == 0 && !self.proven {
                return self.issue_proof();
            }
            self.cycle = None;
        }
        if !self.owned || !self.want_here {
            // Not ours (or leaving): everything down, proven; then release.
            if self.up > 0 {
                return self.issue_stop();
            }
            if !self.proven {
                return self.issue_proof();
            }
            if self.owned {
                self.release(now);
            }
            return;
        }
        if self.stalled.is_some() || !self.managed {
            return;
        }
        if self.retry_at.is_some_and(|t| now < t) {
            return;
        }
        self.retry_at = None;
        if self.up < Step::ORDER.len() && self.standby.is_none() {
            return self.issue_start();
        }
        if self.switchback_at().is_some_and(|t| t <= now) {
            self.alert(
                Level::Info,
                format!(
                    "switchback: a preferred node has been up and able for {}s; stopping here \
                     to hand it over",
                    self.s.switchback_stable.as_secs_f64()
                ),
            );
            self.want_here = false;
            self.issue_stop();
        }
    }

    /// After an operator's Stop: every step down in reverse, proven, then
    /// a lock held here released without asking a peer to take over.
    fn drive_stop(&mut self) {
        if self.up > 0 {
            return self.issue_stop();
        }
        if !self.proven {
            return self.issue_proof();
        }
        self.cycle = None;
        if self.owned {
            self.owned = false;
            self.requested = None;
            self.emit(Output::ReleaseOwnership);
            self.alert(
                Level::Info,
                "stopped (proven) and released: it runs nowhere until BringIn".into(),
            );
        }
    }

    fn drive_requests(&mut self) {
        if self.owned {
            return;
        }
        let want = self.managed
            && self.want_here
            && self.my_index.is_some()
            && self.error.is_none()
            && self.isolated.is_none()
            && self.standby.is_none();
        // A queued request follows this node's priority (it drops while the
        // node cannot host, and comes back); an operator's TakeOver keeps
        // its own, unless this node can no longer host.
        let priority = self.priority();
        let stale = self.requested.is_some_and(|p| {
            p != priority && (p != PRIORITY_TAKEOVER || priority == PRIORITY_FAILED)
        });
        if want && (self.requested.is_none() || stale) {
            self.requested = Some(priority);
            self.emit(Output::RequestOwnership { priority });
        } else if !want
            && self.requested.is_some()
            && self.up == 0
            && self.proven
            && self.pending == Pending::None
        {
            self.requested = None;
            self.emit(Output::ReleaseOwnership);
        }
    }

    fn issue_start(&mut self) {
        if !self.owned || self.stalled.is_some() {
            return; // the gate, checked again where the start is issued
        }
        let k = self.up;
        self.up += 1;
        self.proven = false;
        self.pending = Pending::Start(k);
        self.emit(Output::Start(Step::ORDER[k]));
    }

    fn issue_stop(&mut self) {
        let k = self.up - 1;
        self.pending = Pending::Stop(k);
        self.emit(Output::Stop(Step::ORDER[k]));
    }

    fn issue_proof(&mut self) {
        self.pending = Pending::Proof;
        self.probe();
    }

    fn release(&mut self, now: Time) {
        self.owned = false;
        self.requested = None;
        self.emit(Output::ReleaseOwnership);
        self.ask_best_peer(now);
    }

    /// Asks the best able peer to take the service over and holds back
    /// (no request) until another node holds it, or it stayed free for a
    /// start timeout (the peer never came). With no able peer there is
    /// nothing to wait for: this node may queue again at once (its gates,
    /// isolation, standby, errors, still apply).
    fn ask_best_peer(&mut self, now: Time) {
        let node = self.best_peer().map(str::to_owned);
        self.emit(Output::AskPeerToTakeOver { node: node.clone() });
        match node {
            Some(_) => self.hold_back_until = Some(now + self.s.start_timeout),
            None => self.end_hold_back(),
        }
        self.asked = node;
    }

    /// The hold-back after a release is over: this node wants the service
    /// again (unless it is shutting down).
    fn end_hold_back(&mut self) {
        self.hold_back_until = None;
        if !self.owned && !self.leaving {
            self.want_here = true;
        }
    }

    fn expire(&mut self, now: Time) {
        if self.retry_at.is_some_and(|t| now >= t) {
            self.retry_at = None;
        }
        let over = self.over_threshold();
        let expired = self.fail_count.expire(now, self.s.failure_timeout);
        if expired > 0 {
            let left = self.fail_count.count();
            let mut text = format!("{expired} failure(s) expired (failure_timeout); {left} left");
            if let Some(was) = over.filter(|_| self.over_threshold().is_none()) {
                text.push_str(&format!("; no longer barred here (it was: {was})"));
            }
            if left == 0 && std::mem::take(&mut self.failed_here) {
                text.push_str("; the ban after its failures is over here");
            }
            self.alert(Level::Info, text);
        }
        if self.hold_back_until.is_some_and(|t| now >= t) {
            self.end_hold_back();
        }
    }

    fn schedule_probe(&mut self, now: Time) {
        if self.monitoring() && self.probes_in_flight == 0 {
            match self.next_probe {
                Some(t) if now >= t => {
                    self.next_probe = Some(now + self.s.check_interval);
                    self.probe();
                }
                Some(_) => {}
                None => self.next_probe = Some(now + self.s.check_interval),
            }
        }
    }

    // ---- ownership -------------------------------------------------------

    fn on_granted(&mut self) {
        if self.owned {
            return;
        }
        self.owned = true;
        self.requested = None;
        self.failures = 0;
        self.took_over = self.other_held_since_grant;
        self.other_held_since_grant = false;
        self.hold_back_until = None;
    }

    fn lose_ownership(&mut self, why: &str) {
        if !self.owned {
            return;
        }
        self.owned = false;
        self.requested = None;
        if self.up > 0 || !self.proven {
            self.cycle = Some(0);
            self.alert(
                Level::Emergency,
                format!("{why} while the service is up here: stopping it at once"),
            );
        }
    }

    fn on_owner_is(&mut self, owner: Option<String>) {
        match owner {
            Some(node) if node == self.me => {}
            Some(node) => {
                self.lose_ownership(&format!("the lock table says {node} holds it"));
                self.other_held_since_grant = true;
                if self.stalled.as_deref() == Some(node.as_str()) {
                    self.stalled = None;
                }
                self.fenced.remove(&node);
                if !self.want_here && !self.leaving {
                    self.want_here = true;
                    self.hold_back_until = None;
                }
            }
            None => self.lose_ownership("the lock table says nobody holds it"),
        }
    }

    fn on_owner_lost(&mut self, node: String) {
        if node == self.me || self.owned {
            return;
        }
        self.other_held_since_grant = true;
        if self.fenced.remove(&node) {
            return;
        }
        if self.stalled.as_deref() != Some(node.as_str()) {
            self.alert(
                Level::Emergency,
                format!(
                    "STALLED: holder {node} was lost uncleanly and is not fenced; not taken over \
                     until it is fenced or `hactl fence confirm {node}`"
                ),
            );
            self.stalled = Some(node);
        }
    }

    fn on_fenced(&mut self, node: String) {
        if self.stalled.as_deref() == Some(node.as_str()) {
            self.stalled = None;
            self.alert(
                Level::Info,
                format!("{node} is fenced: the takeover is unlocked"),
            );
        } else if node != self.me {
            self.fenced.insert(node);
        }
    }

    // ---- results and failures ------------------------------------------------

    fn on_status(&mut self, now: Time, status: Status) {
        let answered = self.probes_in_flight > 0;
        self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
        if self.pending == Pending::Proof {
            if answered && self.probes_in_flight == 0 {
                self.pending = Pending::None;
                if status == Status::NotRunning {
                    self.proven = true;
                } else {
                    let what = if status == Status::Running {
                        "still running"
                    } else {
                        "failed"
                    };
                    self.stop_failed(
                        Step::Application,
                        &format!("the status probe after the stop says {what}"),
                    );
                }
            }
            return;
        }
        if status == Status::Running
            && !self.owned
            && self.up == 0
            && self.pending == Pending::None
            && self.error.is_none()
        {
            self.alert(
                Level::Emergency,
                "found running on a node that does not own it: stopping it at once".into(),
            );
            self.up = Step::ORDER.len();
            self.proven = false;
            self.cycle = Some(0);
            return;
        }
        if !self.monitoring() {
            return;
        }
        if status == Status::Running {
            self.tko = 0;
            return;
        }
        self.tko += 1;
        if self.tko >= self.s.check_tko {
            self.tko = 0;
            let reason = format!(
                "{} status probe(s) in a row said {}",
                self.s.check_tko,
                if status == Status::Failed {
                    "failed"
                } else {
                    "not running"
                }
            );
            self.app_failed(now, &reason);
        }
    }

    fn on_agent_failed(&mut self, now: Time, cause: Cause) {
        match cause {
            Cause::Application(reason) => {
                if self.monitoring() {
                    self.app_failed(now, &format!("agent: {reason}"));
                }
            }
            Cause::PublicNetwork(reason) => self.on_lost(Loss::PublicNetwork, reason),
            Cause::Storage(reason) => self.on_lost(Loss::Storage, reason),
        }
    }

    /// `loss` holds here: remembered until it is back. A holder with an
    /// able peer fails over in [`Service::drive_steps`]; without one it
    /// stays, with an emergency (once per loss).
    fn on_lost(&mut self, loss: Loss, reason: String) {
        if self.lost.insert(loss, reason.clone()).is_some() {
            return;
        }
        let running_here =
            self.owned && self.want_here && self.managed && self.up > 0 && self.error.is_none();
        if running_here {
            if self.best_peer().is_none() {
                self.alert(
                    Level::Emergency,
                    format!("{reason}, and no peer is up and able to host: staying here"),
                );
            }
        } else {
            self.alert(
                Level::Warning,
                format!("{reason}: this node cannot host the service until it is back"),
            );
        }
    }

    /// hamond says this node is isolated (`Some(why)`), or no longer is.
    fn on_isolation(&mut self, why: Option<String>) {
        match why {
            Some(why) if self.isolated.is_none() => {
                let doing = if self.owned || self.up > 0 {
                    "stopping the service here and releasing it"
                } else {
                    "this node takes nothing over"
                };
                self.alert(
                    Level::Emergency,
                    format!(
                        "{why}: {doing} until it may hold services again; check its network \
                         cables and switches"
                    ),
                );
                self.isolated = Some(why);
            }
            Some(_) => {}
            None => {
                if let Some(was) = self.isolated.take() {
                    self.alert(
                        Level::Info,
                        format!("this node may hold services again (it was: {was})"),
                    );
                    if !self.leaving {
                        self.want_here = true;
                        self.hold_back_until = None;
                    }
                }
            }
        }
    }

    /// `loss` is over here.
    fn on_back(&mut self, loss: Loss) {
        if let Some(reason) = self.lost.remove(&loss) {
            let now = if self.lost.is_empty() {
                "this node can host again"
            } else {
                "this node still cannot host"
            };
            self.alert(
                Level::Info,
                format!("{} back here (it was: {reason}): {now}", loss.what()),
            );
        }
    }

    /// The application failed while running here.
    fn app_failed(&mut self, now: Time, reason: &str) {
        if self.escalate(now, &format!("application failed ({reason})")) {
            self.cycle = Some(Step::ORDER.len() - 1);
        }
    }

    fn on_start_failed(&mut self, now: Time, step: Step, reason: &str) {
        // Whatever happens next, what may be up goes down first (proven).
        self.cycle = Some(0);
        if !(self.owned && self.want_here && self.managed) {
            return;
        }
        if self.escalate(now, &format!("start of {step} failed ({reason})")) {
            self.retry_at = Some(now + self.s.check_interval);
        }
    }

    /// After a failure here (`what`, counted at `now`): recover here while
    /// restart_times allows and the fail count is below
    /// migration_threshold; then fail over to an able peer; with none,
    /// recover here and raise an emergency. Returns whether to recover here.
    fn escalate(&mut self, now: Time, what: &str) -> bool {
        self.failures += 1;
        self.fail_count.record(now);
        let (n, max) = (self.failures, self.s.restart_times);
        let over = self.over_threshold();
        let used_up = n > max;
        if !used_up && over.is_none() {
            let count = self.fail_count.count();
            self.alert(
                Level::Warning,
                format!("{what}; recovering here ({n} of {max}); {count} failure(s) counted here"),
            );
            return true;
        }
        let why = over.unwrap_or_else(|| "local attempts used up".to_owned());
        if let Some(peer) = self.best_peer().map(str::to_owned) {
            self.alert(
                Level::Error,
                format!("{what}, {why}: failing over to {peer}"),
            );
            self.failed_here |= used_up;
            self.move_away();
            false
        } else {
            self.alert(
                Level::Emergency,
                format!("{what}, {why} and no peer is up and able to host: recovering here"),
            );
            true
        }
    }

    fn move_away(&mut self) {
        self.want_here = false;
        self.cycle = None;
        self.retry_at = None;
    }

    fn stop_failed(&mut self, step: Step, reason: &str) {
        let was_active = self.owned;
        self.cycle = None;
        self.retry_at = None;
        self.error = Some(Fault {
            was_active,
            step,
            reason: reason.to_owned(),
        });
        let mut text = format!("stop of {step} failed ({reason}): the service is in error");
        if was_active {
            text.push_str("; this node keeps the lock, so it starts nowhere else");
        } else {
            text.push_str("; it may run here without the lock");
        }
        if self.s.force_reboot {
            text.push_str("; force_reboot: the watchdog will reset this node");
        } else if was_active && self.s.fencing {
            text.push_str(
                "; a peer must fence this node before it starts the service (the first able \
                 peer is asked to)",
            );
        } else {
            text.push_str("; it stays so until Cleanup");
        }
        self.alert(Level::Emergency, text);
        if self.s.force_reboot && !self.watchdog_stopped {
            self.watchdog_stopped = true;
            self.emit(Output::StopPettingWatchdog);
        }
    }

    // ---- commands --------------------------------------------------------

    fn on_command(&mut self, now: Time, op: Op, by: &str) {
        if let Some(why) = self.refusal(op) {
            self.alert(Level::Warning, format!("{op:?} by {by} refused: {why}"));
            return;
        }
        match op {
            Op::BringIn => {
                if !self.managed {
                    self.managed = true;
                    self.tko = 0;
                    self.next_probe = Some(now);
                    self.alert(Level::Info, format!("brought in by {by}"));
                }
                if std::mem::take(&mut self.stopped) {
                    self.after_stop(now);
                }
            }
            Op::Stop => {
                self.managed = false;
                if !self.stopped {
                    self.stopped = true;
                    self.cycle = None;
                    self.retry_at = None;
                    let what = if self.owned || self.up > 0 || !self.proven {
                        "stopping it here (proven), then releasing it"
                    } else {
                        "nothing runs here, and this node no longer asks for it"
                    };
                    self.alert(
                        Level::Info,
                        format!("stopped by {by}: {what}; it stays stopped until BringIn"),
                    );
                }
            }
            Op::BringOut => {
                if self.managed {
                    self.managed = false;
                    self.alert(
                        Level::Info,
                        format!("brought out by {by}: no longer watched or moved"),
                    );
                }
            }
            Op::TakeOver => {
                if self.owned {
                    self.want_here = true;
                    self.alert(Level::Info, format!("TakeOver by {by}: already held here"));
                } else {
                    self.want_here = true;
                    self.hold_back_until = None;
                    if self.requested != Some(PRIORITY_TAKEOVER) {
                        self.requested = Some(PRIORITY_TAKEOVER);
                        self.emit(Output::RequestOwnership {
                            priority: PRIORITY_TAKEOVER,
                        });
                    }
                    self.alert(Level::Info, format!("TakeOver by {by}: requested the lock"));
                }
            }
            Op::FailOver => {
                // refusal() made sure there is one.
                if let Some(peer) = self.best_peer().map(str::to_owned) {
                    self.alert(
                        Level::Info,
                        format!("FailOver by {by}: stopping here for {peer}"),
                    );
                    self.move_away();
                }
            }
            Op::SwitchbackOn => self.switchback = true,
            Op::SwitchbackOff => self.switchback = false,
            Op::Cleanup => {
                self.failures = 0;
                self.failed_here = false;
                self.retry_at = None;
                // The driver logs the command; the fail count goes with it.
                self.fail_count.clear();
                if self.error.take().is_some() {
                    self.fence_asked = false;
                    if self.up > 0 || !self.proven {
                        self.cycle = Some(0);
                    }
                    self.alert(
                        Level::Info,
                        format!("Cleanup by {by}: error cleared, stopping and proving again"),
                    );
                }
            }
        }
    }

    /// BringIn after a Stop: a node that a preferred able node precedes
    /// lets it ask first, as at boot, so that the service starts on its
    /// preferred able node.
    fn after_stop(&mut self, now: Time) {
        let Some(mine) = self.my_index else {
            return;
        };
        let preferred_able = self.s.nodes[..mine]
            .iter()
            .any(|n| self.peers.get(n).is_some_and(Peer::able));
        if !self.owned && preferred_able && !self.s.boot_grace.is_zero() {
            self.want_here = false;
            self.hold_back_until = Some(now + self.s.boot_grace);
        }
    }
}

/// A short description of an input, for [`Output::StateChanged`].
fn describe(input: &Input) -> String {
    match input {
        Input::Command { op, by } => format!("{op:?} by {by}"),
        Input::StartFailed(step, r) => format!("start of {step} failed: {r}"),
        Input::StopFailed(step, r) => format!("stop of {step} failed: {r}"),
        Input::AgentFailed(c) => format!("agent: {c:?}"),
        other => format!("{other:?}"),
    }
}
