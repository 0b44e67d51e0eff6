//! What several of hasvrd's integration tests share.

use hasvrd::track::Tracker;
use std::time::Duration;

/// Kills what is left in a tracker and removes its cgroup when a test
/// ends, even by panic.
pub struct Cleanup(pub Tracker);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(dir) = self.0.cgroup_dir() {
            for _ in 0..200 {
                if self.0.is_empty().unwrap_or(true) {
                    break;
                }
                let _ = std::fs::write(dir.join("cgroup.kill"), "1");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.0.remove();
    }
}
