//! The storage path watch ([`super::Steps::watch_storage`]): every
//! `check_interval`, for as long as the service's steps exist, whether the
//! service runs here or not, it checks that this node reaches the
//! service's storage:
//!
//! * each volume: mounted here from this node's device (and not mounted
//!   read-only by its options), a small file in its hidden directory
//!   ([`CHECK_DIR`]) is written, fsynced and read back; otherwise the
//!   first block of the device is read past the page cache (read only:
//!   the volume may be mounted on another node);
//! * the storage address (`storage_ping`, the manual's store IP), when
//!   given: one `ping` (argument vector, in this node's network
//!   namespace).
//!
//! Each I/O runs on a blocking thread and counts as failed when it does
//! not answer within the `check_interval` (at least
//! [`CHECK_TIMEOUT_MIN`]): a hung path is detected as "no
//! answer", and never blocks hasvrd. Such an I/O is not started again
//! while the last one has not returned (one blocked thread per volume at
//! most); each check meanwhile fails. After `check_tko` failed checks in a
//! row it reports [`StepEvent::StorageLost`]; when a check passes, it
//! reports [`StepEvent::StorageBack`] (at its first pass, and after a
//! loss). A check made while the volumes step runs (mount or unmount) has
//! no verdict on the volumes.

mod probe;

pub use probe::CHECK_DIR;

use super::{Ctx, StepEvent, joined};
use crate::volume;
use futures_util::future::join_all;
use haschema::service::Volume;
use std::net::IpAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// Least time one check waits for an I/O, or for the storage address to
/// answer: an fsync on a busy disk may take a few seconds, and a slow disk
/// must not move services.
pub const CHECK_TIMEOUT_MIN: Duration = Duration::from_secs(5);

/// The program that asks the storage address (Debian's iputils-ping).
const PING: &str = "ping";

/// How long one check waits for an answer: the `check_interval`, at least
/// [`CHECK_TIMEOUT_MIN`].
fn check_timeout(check_interval: Duration) -> Duration {
    check_interval.max(CHECK_TIMEOUT_MIN)
}

/// A volume's I/O that did not answer in time, still running.
struct Pending {
    since: Instant,
    task: JoinHandle<Result<(), String>>,
}

/// What the watch tells after a check ([`Tally::record`]).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Tell {
    /// Nothing new.
    Nothing,
    /// A pass: the first one, or the first after a loss (`after_loss`).
    Back { after_loss: bool },
    /// A failure, not yet `check_tko` in a row: the `count`th.
    Failed { count: u32, errors: String },
    /// The `check_tko`th failure in a row: the path is lost.
    Lost { errors: String },
    /// One more failure after the loss was told.
    StillLost { errors: String },
}

/// Counts failed checks in a row and tells each change once.
pub(super) struct Tally {
    pub(super) tko: u32,
    failed: u32,
    /// What was told last: `Some(true)` back, `Some(false)` lost.
    told_ok: Option<bool>,
}

impl Tally {
    pub(super) fn new(tko: u32) -> Tally {
        Tally {
            tko: tko.max(1),
            failed: 0,
            told_ok: None,
        }
    }

    pub(super) fn record(&mut self, result: Result<(), String>) -> Tell {
        match result {
            Ok(()) => {
                self.failed = 0;
                let before = self.told_ok.replace(true);
                match before {
                    Some(true) => Tell::Nothing,
                    _ => Tell::Back {
                        after_loss: before == Some(false),
                    },
                }
            }
            Err(errors) if self.told_ok == Some(false) => Tell::StillLost { errors },
            Err(errors) => {
                self.failed += 1;
                if self.failed < self.tko {
                    Tell::Failed {
                        count: self.failed,
                        errors,
                    }
                } else {
                    self.told_ok = Some(false);
                    Tell::Lost { errors }
                }
            }
        }
    }
}

/// The watch: checks every `check_interval`, reports the verdicts.
pub(super) async fn watch(ctx: Arc<Ctx>) {
    let service = ctx.name().to_owned();
    let node = &ctx.node;
    let mut tally = Tally::new(ctx.settings.check_tko);
    let tko = tally.tko;
    let timeout = check_timeout(ctx.settings.check_interval);
    let mut pending: Vec<Option<Pending>> = ctx.cfg.volumes.iter().map(|_| None).collect();
    let mut ticks = tokio::time::interval(ctx.settings.check_interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for round in 0u64.. {
        ticks.tick().await;
        let Some(result) = check(&ctx, &mut pending, timeout, round).await else {
            continue;
        };
        match tally.record(result) {
            Tell::Nothing => {}
            Tell::Back { after_loss } => {
                if after_loss {
                    tracing::info!("service {service}: the storage path works again on {node}");
                }
                ctx.send(StepEvent::StorageBack {
                    service: service.clone(),
                });
            }
            Tell::Failed { count, errors } => tracing::warn!(
                "service {service}: storage check failed on {node} ({count} of {tko} in a row \
                 before the path counts as lost): {errors}"
            ),
            Tell::Lost { errors } => {
                tracing::error!(
                    "service {service}: storage path lost on {node} ({tko} failed check(s) in a \
                     row): {errors}. Check this node's cabling and paths to the storage \
                     (`dmesg`, `multipath -ll`, the disk array); the service moves to a node \
                     that can reach it, and this node can host it again once a check passes"
                );
                ctx.send(StepEvent::StorageLost {
                    service: service.clone(),
                    reason: format!("storage path lost on {node}: {errors}"),
                });
            }
            Tell::StillLost { errors } => {
                tracing::debug!("service {service}: storage path still lost: {errors}");
            }
        }
    }
}

/// One check: every volume and the storage address. `None` when it has no
/// verdict (the volumes step runs and the address answered or is not
/// given).
async fn check(
    ctx: &Ctx,
    pending: &mut [Option<Pending>],
    timeout: Duration,
    round: u64,
) -> Option<Result<(), String>> {
    let ping = async {
        match ctx.cfg.storage_ping {
            Some(addr) => ping(addr, None, timeout, "the storage address").await,
            None => Ok(()),
        }
    };
    let volumes = async {
        // Not while volumes are mounted or unmounted: no verdict then.
        let _busy = ctx.volume_lock.try_lock().ok()?;
        let checks = ctx
            .cfg
            .volumes
            .iter()
            .zip(pending.iter_mut())
            .map(|(vol, slot)| check_volume(ctx, vol, slot, timeout, round));
        Some(join_all(checks).await)
    };
    let (ping, volumes) = tokio::join!(ping, volumes);
    let Some(volumes) = volumes else {
        return ping.is_err().then_some(ping);
    };
    let errors = volumes.into_iter().chain([ping]).filter_map(Result::err);
    Some(joined(errors.collect()))
}

/// Checks one volume's I/O; a still-pending earlier I/O fails it without
/// starting another.
async fn check_volume(
    ctx: &Ctx,
    vol: &Volume,
    slot: &mut Option<Pending>,
    timeout: Duration,
    round: u64,
) -> Result<(), String> {
    let mp = vol.mount_point.clone();
    let Some(device) = vol.devices.get(&ctx.node).cloned() else {
        return Ok(()); // Steps::new checked the node: every volume has one
    };
    if let Some(old) = slot.as_ref() {
        if !old.task.is_finished() {
            return Err(format!(
                "I/O on volume {} ({}) has not returned for {:.1?}: the path to the storage hangs",
                mp.display(),
                device.display(),
                old.since.elapsed()
            ));
        }
        *slot = None;
    }
    let read_only = volume::options::parse(&vol.options).is_ok_and(|o| o.read_only());
    let (node, stamp) = (ctx.node.clone(), format!("{} {round}\n", ctx.node));
    let (io_device, io_mp) = (device.clone(), mp.clone());
    let mut task =
        tokio::task::spawn_blocking(move || io_check(&io_device, &io_mp, &node, &stamp, read_only));
    let since = Instant::now();
    match tokio::time::timeout(timeout, &mut task).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(format!(
            "the I/O check of volume {} was lost: {e}",
            mp.display()
        )),
        Err(_) => {
            *slot = Some(Pending { since, task });
            Err(format!(
                "I/O on volume {} ({}) did not answer within {timeout:?}: the path to the \
                 storage hangs",
                mp.display(),
                device.display()
            ))
        }
    }
}

/// The blocking part: a write check on the volume mounted here from
/// `device` (unless its options mount it read-only), else a read of the
/// device.
fn io_check(
    device: &std::path::Path,
    mount_point: &std::path::Path,
    node: &str,
    stamp: &str,
    read_only: bool,
) -> Result<(), String> {
    let mounted = volume::is_mounted_from(device, mount_point).map_err(|e| e.to_string())?;
    if mounted && !read_only {
        probe::write_check(mount_point, node, stamp).map_err(|e| {
            let hint = if e.raw_os_error() == Some(nix::libc::EROFS) {
                " (the kernel turned the file system read-only after an I/O error: `dmesg`)"
            } else {
                ""
            };
            format!(
                "volume {} ({}): writing its check file failed: {e}{hint}",
                mount_point.display(),
                device.display()
            )
        })
    } else {
        probe::read_check(device).map_err(|e| {
            format!(
                "volume {}: reading its device {} failed: {e}",
                mount_point.display(),
                device.display()
            )
        })
    }
}

/// One `ping` of `addr` (`what` names it for the operator), through the
/// NIC `via` when given (`-I`), waiting `timeout` for the answer.
pub(super) async fn ping(
    addr: IpAddr,
    via: Option<&str>,
    timeout: Duration,
    what: &str,
) -> Result<(), String> {
    let wait = timeout.as_secs().max(1);
    let mut cmd = tokio::process::Command::new(PING);
    cmd.args(["-n", "-q", "-c", "1", "-W"])
        .arg(wait.to_string());
    if let Some(nic) = via {
        cmd.args(["-I", nic]);
    }
    cmd.arg(addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let limit = Duration::from_secs(wait + 1);
    match tokio::time::timeout(limit, cmd.output()).await {
        Err(_) => Err(format!(
            "{what} {addr} did not answer ping within {limit:?}"
        )),
        Ok(Err(e)) => Err(format!(
            "cannot run `{PING}` to reach {what} {addr}: {e}; install Debian's iputils-ping"
        )),
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => Err(format!(
            "{what} {addr} does not answer ping from this node ({}{})",
            out.status,
            match String::from_utf8_lossy(&out.stderr).trim() {
                "" => String::new(),
                err => format!(": {err}"),
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::{Tally, Tell};

    fn failed(count: u32) -> Tell {
        Tell::Failed {
            count,
            errors: "e".into(),
        }
    }

    #[test]
    fn check_tko_failures_in_a_row_make_a_loss_told_once_and_a_pass_ends_it() {
        let mut t = Tally::new(2);
        let err = || Err("e".to_owned());
        assert_eq!(t.record(Ok(())), Tell::Back { after_loss: false });
        assert_eq!(t.record(Ok(())), Tell::Nothing);
        assert_eq!(t.record(err()), failed(1));
        // A pass in between starts the count over.
        assert_eq!(t.record(Ok(())), Tell::Nothing);
        assert_eq!(t.record(err()), failed(1));
        assert_eq!(t.record(err()), Tell::Lost { errors: "e".into() });
        assert_eq!(t.record(err()), Tell::StillLost { errors: "e".into() });
        assert_eq!(t.record(Ok(())), Tell::Back { after_loss: true });
        assert_eq!(t.record(err()), failed(1));
    }

    #[test]
    fn a_path_lost_from_the_start_is_told_lost_without_a_pass() {
        let mut t = Tally::new(0); // counts as 1
        assert_eq!(t.record(Err("e".into())), Tell::Lost { errors: "e".into() });
        assert_eq!(t.record(Ok(())), Tell::Back { after_loss: true });
    }
}
