//! [`Fencer`]: fences a node with the devices that can, in config order,
//! and keeps the history of every attempt; checks the devices themselves
//! (`monitor`) and keeps each one's last [`Check`].
//!
//! A fence succeeds only when a device reports success for `off` or
//! `reboot`, and, for `off`, a following `status` on the same device says
//! off (the proof, as safety rule 7 asks of a stop). Every device call made
//! for a fence is one [`HistoryEntry`], successful or not. Fences run one
//! at a time; checks run beside them (a slow check never holds up a fence),
//! every device at once.

use super::{Action, ExternalAgent, FenceDevice, FenceError, FenceOutcome, PowerState};
use haschema::config::ClusterConfig;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
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

/// One `monitor` check of a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub device: String,
    /// Ok when the device answered.
    pub result: Result<(), FenceError>,
    pub duration: Duration,
    /// When the check started (wall clock, for the operator).
    pub time: SystemTime,
}

/// The fencing devices of the cluster and the history of their use.
pub struct Fencer {
    devices: Vec<Arc<dyn FenceDevice>>,
    /// Held by the fence under way: one at a time.
    one_fence: tokio::sync::Mutex<()>,
    history: Mutex<Vec<HistoryEntry>>,
    /// The last check of each device, by name.
    checks: Mutex<BTreeMap<String, Check>>,
}

impl Fencer {
    /// A fencer over `devices`, tried in this order.
    pub fn new(devices: Vec<Box<dyn FenceDevice>>) -> Fencer {
        Fencer {
            devices: devices.into_iter().map(Arc::from).collect(),
            one_fence: tokio::sync::Mutex::new(()),
            history: Mutex::default(),
            checks: Mutex::default(),
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

    /// Whether any device is configured.
    pub fn has_devices(&self) -> bool {
        !self.devices.is_empty()
    }

    /// Whether any device can fence `node` (without one, rule 1 leaves its
    /// services STALLED until `hactl fence confirm`).
    pub fn can_fence(&self, node: &str) -> bool {
        self.devices_for(node).next().is_some()
    }

    /// Every attempt so far (the last [`HISTORY_LEN`]), oldest first.
    pub fn history(&self) -> Vec<HistoryEntry> {
        locked(&self.history).clone()
    }

    /// The last check of each device checked so far, in config order.
    pub fn checks(&self) -> Vec<Check> {
        let checks = locked(&self.checks);
        self.devices
            .iter()
            .filter_map(|d| checks.get(d.name()).cloned())
            .collect()
    }

    /// Runs the `monitor` action of the device named `device`, or of every
    /// device, all at once; records and returns each check in config order.
    /// A failure is logged at error level with what to check. Err when no
    /// device has that name (or none is configured).
    pub async fn monitor(&self, device: Option<&str>) -> Result<Vec<Check>, String> {
        let chosen: Vec<Arc<dyn FenceDevice>> = self
            .devices
            .iter()
            .filter(|d| device.is_none_or(|name| d.name() == name))
            .cloned()
            .collect();
        if chosen.is_empty() {
            let names: Vec<&str> = self.devices.iter().map(|d| d.name()).collect();
            return Err(match device {
                None => "no [[fence]] device is configured in the cluster config".to_owned(),
                Some(name) => format!(
                    "no fencing device {name} in the cluster config (its devices: {})",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                ),
            });
        }
        let mut running = tokio::task::JoinSet::new();
        for (i, d) in chosen.into_iter().enumerate() {
            running.spawn(async move { (i, check(d.as_ref()).await) });
        }
        let mut done = Vec::new();
        while let Some(joined) = running.join_next().await {
            match joined {
                Ok(check) => done.push(check),
                Err(e) => return Err(format!("a device check did not finish: {e}")),
            }
        }
        done.sort_by_key(|(i, _)| *i);
        let done: Vec<Check> = done.into_iter().map(|(_, c)| c).collect();
        let mut checks = locked(&self.checks);
        for c in &done {
            checks.insert(c.device.clone(), c.clone());
        }
        Ok(done)
    }

    /// Powers `node` off (`Action::Off`) or resets it (`Action::Reboot`):
    /// tries each of its devices in order until one succeeds. Returns the
    /// name of the device that did; otherwise the last device's error
    /// ([`FenceError::NoDevice`] when there is none).
    pub async fn fence(&self, node: &str, action: Action) -> Result<String, FenceError> {
        if !matches!(action, Action::Off | Action::Reboot) {
            return Err(FenceError::Unsupported(action));
        }
        let _one = self.one_fence.lock().await;
        let mut last = FenceError::NoDevice {
            node: node.to_owned(),
        };
        for device in self.devices.iter().map(AsRef::as_ref) {
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

    fn record(&self, entry: HistoryEntry) {
        let mut history = locked(&self.history);
        if history.len() == HISTORY_LEN {
            history.remove(0);
        }
        history.push(entry);
    }
}

/// The data behind `m`, even if a panicking holder poisoned it.
fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One device's `monitor`, timed and logged.
async fn check(device: &dyn FenceDevice) -> Check {
    let time = SystemTime::now();
    let started = Instant::now();
    let result = device.monitor().await;
    let duration = started.elapsed();
    let name = device.name();
    match &result {
        Ok(()) => tracing::debug!(device = %name, "fencing device {name} answers ({duration:?})"),
        Err(e) => tracing::error!(
            device = %name,
            "fencing device {name} fails its monitor check: {e}; check the device's power, \
             network and address, its credentials (password_file) and the agent in its \
             [[fence]] table, then run `hactl fence test {name}`; until it passes, a lost node \
             it covers may not be fenced and its services stay STALLED"
        ),
    }
    Check {
        device: name.to_owned(),
        result,
        duration,
        time,
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
