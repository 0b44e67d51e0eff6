//! Fencing (STONITH): powering a lost node off before anyone takes over
//! what it held (safety rule 1).
//!
//! * [`FenceDevice`]: the plugin interface: run an [`Action`] on a node,
//!   ask its power [`status`](FenceDevice::status), [`monitor`](FenceDevice::monitor)
//!   the device itself.
//! * [`agent::ExternalAgent`]: a device that runs an external program in the
//!   fence-agents convention (`key=value` lines on stdin, exit code), as
//!   configured by a `[[fence]]` table of the cluster config.
//! * [`fencer::Fencer`]: picks the devices of a node, tries them in config
//!   order, proves an `off` with a following `status`, and keeps a history.
//!
//! A node with no device can never be fenced: [`fencer::Fencer::fence`]
//! says [`FenceError::NoDevice`], and its services stay STALLED until the
//! operator's `hactl fence confirm NODE`.

pub mod agent;
pub mod fencer;

pub use agent::ExternalAgent;
pub use fencer::{Check, Fencer, HistoryEntry};

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// What a fence agent is asked to do (its `action=` line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Power the node off (and keep it off).
    Off,
    /// Power the node off, then on again.
    Reboot,
    /// Power the node on.
    On,
    /// Report the node's power state.
    Status,
    /// Check that the device itself answers (no node involved).
    Monitor,
}

impl Action {
    /// The name in the fence-agents convention (`off`, `reboot`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Off => "off",
            Action::Reboot => "reboot",
            Action::On => "on",
            Action::Status => "status",
            Action::Monitor => "monitor",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A node's power state as a device reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PowerState {
    On,
    Off,
}

/// What a device reported for an action that did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FenceOutcome {
    /// `off`, `reboot`, `on` or `monitor` succeeded.
    Done,
    /// The answer to `status`.
    Power(PowerState),
}

/// Why an action did not succeed. Texts never hold a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FenceError {
    /// No configured device can fence this node (rule 1: its services stay
    /// STALLED until `hactl fence confirm NODE`).
    NoDevice { node: String },
    /// The device cannot fence this node (not in its `nodes`).
    NotMine { device: String, node: String },
    /// The agent could not be started, fed or read (program missing, password
    /// file unreadable, ...).
    Setup(String),
    /// The agent ran past its timeout and was killed with its process group.
    TimedOut(Duration),
    /// The agent reported failure: its exit code (None: killed by a signal)
    /// and the last line it printed.
    Failed { code: Option<i32>, detail: String },
    /// The device said the action succeeded, but the proof that follows did
    /// not hold (for `off`: the next `status` did not say off).
    NotProven(String),
    /// The action is not one this call takes (e.g. `on` to [`Fencer::fence`]).
    Unsupported(Action),
}

impl fmt::Display for FenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FenceError::NoDevice { node } => write!(
                f,
                "no fencing device can fence {node}; its services stay STALLED until `hactl fence confirm {node}`"
            ),
            FenceError::NotMine { device, node } => {
                write!(f, "fencing device {device} does not fence {node}")
            }
            FenceError::Setup(why) => f.write_str(why),
            FenceError::TimedOut(after) => {
                write!(
                    f,
                    "the agent did not finish within {after:?} and was killed"
                )
            }
            FenceError::Failed { code, detail } => {
                match code {
                    Some(code) => write!(f, "the agent failed (exit {code})")?,
                    None => f.write_str("the agent was killed by a signal")?,
                }
                if !detail.is_empty() {
                    write!(f, ": {detail}")?;
                }
                Ok(())
            }
            FenceError::NotProven(why) => write!(f, "not proven: {why}"),
            FenceError::Unsupported(action) => write!(f, "action {action} is not allowed here"),
        }
    }
}

impl std::error::Error for FenceError {}

/// A boxed future, so that devices of different kinds fit in one list.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A fencing device plugin.
pub trait FenceDevice: Send + Sync {
    /// The device's name (its `[[fence]]` `name`).
    fn name(&self) -> &str;

    /// Whether this device can fence `node`.
    fn fences(&self, node: &str) -> bool;

    /// Runs `action` on `node`. `Ok` only when the device reports success:
    /// [`FenceOutcome::Done`], or for [`Action::Status`] the power state.
    fn fence<'a>(
        &'a self,
        node: &'a str,
        action: Action,
    ) -> BoxFuture<'a, Result<FenceOutcome, FenceError>>;

    /// Checks that the device answers ([`Action::Monitor`]).
    fn monitor(&self) -> BoxFuture<'_, Result<(), FenceError>>;

    /// `node`'s power state ([`Action::Status`]).
    fn status<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<PowerState, FenceError>> {
        Box::pin(async move {
            match self.fence(node, Action::Status).await? {
                FenceOutcome::Power(state) => Ok(state),
                FenceOutcome::Done => Err(FenceError::Failed {
                    code: None,
                    detail: "status gave no power state".into(),
                }),
            }
        })
    }
}
