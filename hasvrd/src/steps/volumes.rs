//! The volumes step: mount in order, unmount in reverse, with
//! [`crate::volume`] (which checks, proves, logs each mount, unmount and
//! process it ends, and explains its errors).

use super::{Ctx, Held, joined, left};
use crate::mountinfo;
use crate::volume;
use tokio::time::Instant;

/// Mounts each volume in order from this node's device; the file system
/// checks get what is left of the step. Stops at the first failure (the
/// machine then stops the step, unmounting what was mounted).
pub(super) async fn start(ctx: &Ctx, deadline: Instant) -> Result<(), String> {
    let _busy = ctx.volume_lock.lock().await;
    for vol in &ctx.cfg.volumes {
        volume::mount(vol, &ctx.node, &ctx.tracker, left(deadline))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Unmounts each volume in reverse order, ending the processes that use
/// it; one that is not mounted counts as stopped. Tries every volume even
/// after a failure (as much as possible is released), and fails with all
/// the errors.
pub(super) async fn stop(ctx: &Ctx, deadline: Instant) -> Result<(), String> {
    let _busy = ctx.volume_lock.lock().await;
    let mut errors = Vec::new();
    for vol in ctx.cfg.volumes.iter().rev() {
        if let Err(e) = volume::umount(vol, &ctx.node, left(deadline)).await {
            errors.push(e.to_string());
        }
    }
    joined(errors)
}

/// Adds the volumes mounted at their mount point from this node's device.
pub(super) async fn held(ctx: &Ctx, held: &mut Held) {
    for vol in &ctx.cfg.volumes {
        let mp = &vol.mount_point;
        let Some(device) = vol.devices.get(&ctx.node) else {
            continue; // Steps::new checked the node: every volume has one
        };
        match volume::is_mounted(mp).await {
            Ok(None) => {}
            Ok(Some(mounted)) => {
                let ours = mounted.source == *device
                    || mountinfo::block_dev(device)
                        .ok()
                        .flatten()
                        .is_some_and(|dev| dev == mounted.dev);
                if ours {
                    held.volumes.push(mp.clone());
                } else {
                    tracing::warn!(
                        "service {}: {mounted} is mounted at {}, not its device {}",
                        ctx.name(),
                        mp.display(),
                        device.display()
                    );
                }
            }
            Err(e) => held.unknown.push(e.to_string()),
        }
    }
}
