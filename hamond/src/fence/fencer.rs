//! [`Fencer`]: fences a node with the devices that can, in config order,
//! and keeps the history of every attempt.
//!
//! A fence succeeds only when a device reports success for `off` or
//! `reboot`, and, for `off`, a following `status` on the same device says
//! off (the proof, as safety rule 7 asks of a stop). Every device call made
//! for a fence is one [`HistoryEntry`], successful or not.

use super::{Action, ExternalAgent, FenceDevice, FenceError, FenceOutcome, PowerState};
use haschema::config::ClusterConfig;
use std::time::{Duration, Instant, SystemTime};

/// Most history entries kept (the oldest go first).
pub const HISTORY_LEN: usize = 256;

/// One fence attempt with one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    pub node: String,
    pub action: Action,
    pub device: String,
    /// Ok when the device succeeded (and, for `off`, the proof held).
    pub result: Result<(), FenceError>,
    /// From the start of the call to the end of its proof.
    pub duration: Duration,
    /// When the attempt started (wall clock, for the operator).
    pub time: SystemTime,
}

/// The fencing devices of the cluster and the history of their use.
pub struct Fencer {
    devices: Vec<Box<dyn FenceDevice>>,
    history: Vec<HistoryEntry>,
}

impl Fencer {
    /// A fencer over `devices`, tried in this order.
    pub fn new(devices: Vec<Box<dyn FenceDevice>>) -> Fencer {
        Fencer {
            devices,
            history: Vec::new(),
        }
    }

    /// One [`ExternalAgent`] per `[[fence]]` table, in file order.
    pub fn from_config(config: &ClusterConfig) -> Fencer {
        Fencer::new(
            config
                .fences
                .iter()
                .map(|f| Box::new(ExternalAgent::new(f)) as Box<dyn FenceDevice>)
                .collect(),
        )
    }

    /// The devices that can fence `node`, in order.
    pub fn devices_for<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a dyn FenceDevice> {
        self.devices
            .iter()
            .map(AsRef::as_ref)
            .filter(move |d| d.fences(node))
    }

    /// Whether any device can fence `node` (without one, rule 1 leaves its
    /// services STALLED until `hactl fence confirm`).
    pub fn can_fence(&self, node: &str) -> bool {
        self.devices_for(node).next().is_some()
    }

    /// Every attempt so far, oldest first.
    pub fn history(&self) -> &[HistoryEntry] {
        &self.history
    }

    /// Powers `node` off (`Action::Off`) or resets it (`Action::Reboot`):
    /// tries each of its devices in order until one succeeds. Returns the
    /// name of the device that did; otherwise the last device's error
    /// ([`FenceError::NoDevice`] when there is none).
    pub async fn fence(&mut self, node: &str, action: Action) -> Result<String, FenceError> {
        if !matches!(action, Action::Off | Action::Reboot) {
            return Err(FenceError::Unsupported(action));
        }
        let mut last = FenceError::NoDevice {
            node: node.to_owned(),
        };
        for i in 0..self.devices.len() {
            let device = self.devices[i].as_ref();
            if !device.fences(node) {
                continue;
            }
            let time = SystemTime::now();
            let started = Instant::now();
            let result = attempt(device, node, action).await;
            let entry = HistoryEntry {
                node: node.to_owned(),
                action,
                device: device.name().to_owned(),
                result: result.clone(),
                duration: started.elapsed(),
                time,
            };
            match &result {
                Ok(()) => tracing::warn!(
                    severity = "notice",
                    device = %entry.device,
                    "fenced {node} ({action}) in {:?}",
                    entry.duration
                ),
                Err(e) => tracing::error!(
                    severity = "crit",
                    device = %entry.device,
                    "fencing {node} ({action}) failed after {:?}: {e}",
                    entry.duration
                ),
            }
            let name = entry.device.clone();
            self.record(entry);
            match result {
                Ok(()) => return Ok(name),
                Err(e) => last = e,
            }
        }
        if matches!(last, FenceError::NoDevice { .. }) {
            tracing::error!(severity = "emerg", "{last}");
        }
        Err(last)
    }

    fn record(&mut self, entry: HistoryEntry) {
        if self.history.len() == HISTORY_LEN {
            self.history.remove(0);
        }
        self.history.push(entry);
    }
}

/// One device's `off` (proven by `status`) or `reboot`.
async fn attempt(device: &dyn FenceDevice, node: &str, action: Action) -> Result<(), FenceError> {
    match device.fence(node, action).await? {
        FenceOutcome::Done => {}
        FenceOutcome::Power(_) => {
            return Err(FenceError::NotProven(format!(
                "{action} answered with a power state"
            )));
        }
    }
    if action == Action::Off {
        match device.status(node).await {
            Ok(PowerState::Off) => {}
            Ok(PowerState::On) => {
                return Err(FenceError::NotProven(format!(
                    "off succeeded but status says {node} is on"
                )));
            }
            Err(e) => {
                return Err(FenceError::NotProven(format!(
                    "off succeeded but status failed: {e}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
