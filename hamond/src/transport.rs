//! What the path drivers ([`crate::udp`], [`crate::serial`]) report to the
//! daemon loop, and the backoff they share for reopening a port.

use litecloud::node::Transmit;
use litecloud::wire::Reject;
use std::time::Duration;
use tokio::sync::mpsc;

/// A driver's report to the daemon loop.
#[derive(Debug)]
pub enum Inbound {
    /// A whole wire frame received on `path`.
    Frame { path: u8, bytes: Vec<u8> },
    /// Bytes dropped before decoding (serial line noise).
    Dropped { path: u8, reason: Reject },
    /// The port or socket opened (`error` None) or failed and is being reopened.
    Port { path: u8, error: Option<String> },
}

/// Delays between attempts to reopen a failed port: 200 ms doubling to 5 s,
/// forever (a cable may be plugged back in at any time).
pub fn reopen_delays() -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder;
    const MAX: Duration = Duration::from_secs(5);
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(MAX)
        .with_jitter()
        .without_max_times()
        .build()
        // backon adds its jitter (up to +100 %) after the cap: cap again, or
        // a replugged cable could wait up to 10 s.
        .map(|d| d.min(MAX))
}

/// Reports that a port failed, then waits out the next reopen delay while
/// dropping the frames meant for it; false if the daemon is gone.
pub async fn report_and_back_off(
    path: u8,
    error: String,
    delays: &mut impl Iterator<Item = Duration>,
    inbound: &mpsc::Sender<Inbound>,
    outbound: &mut mpsc::Receiver<Transmit>,
) -> bool {
    let report = Inbound::Port {
        path,
        error: Some(error),
    };
    if inbound.send(report).await.is_err() {
        return false;
    }
    discard_for(outbound, delays.next().unwrap_or_default()).await
}

/// Drops frames for `delay` while a port is closed; false if the daemon is
/// gone.
async fn discard_for(outbound: &mut mpsc::Receiver<Transmit>, delay: Duration) -> bool {
    let until = tokio::time::sleep(delay);
    tokio::pin!(until);
    loop {
        tokio::select! {
            () = &mut until => return true,
            t = outbound.recv() => if t.is_none() { return false },
        }
    }
}
