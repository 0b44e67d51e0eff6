//! Driver of one UDP private network: a socket bound to this node's own
//! address on that network, unicasting each frame to its destination's
//! address. A socket that cannot be bound (address not yet up) is retried
//! with backoff and reported.

use crate::transport::{Inbound, reopen_delays, report_and_back_off};
use litecloud::node::Transmit;
use litecloud::wire::{MAX_FRAME, NodeId};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Runs the path until the daemon drops `outbound`.
pub async fn run(
    path: u8,
    local: SocketAddr,
    peers: BTreeMap<NodeId, SocketAddr>,
    mut outbound: mpsc::Receiver<Transmit>,
    inbound: mpsc::Sender<Inbound>,
) {
    let mut delays = reopen_delays();
    let socket = loop {
        match UdpSocket::bind(local).await {
            Ok(socket) => break socket,
            Err(e) => {
                let error = format!(
                    "cannot bind {local}: {e}; check that this address is configured on a NIC"
                );
                if !report_and_back_off(path, error, &mut delays, &inbound, &mut outbound).await {
                    return;
                }
            }
        }
    };
    if inbound
        .send(Inbound::Port { path, error: None })
        .await
        .is_err()
    {
        return;
    }
    let mut buf = vec![0u8; MAX_FRAME + 1];
    let mut last_send_error = None;
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, _from)) => {
                    let bytes = buf[..n].to_vec();
                    if inbound.send(Inbound::Frame { path, bytes }).await.is_err() {
                        return;
                    }
                }
                Err(e) => tracing::debug!(path, "receive error on {local}: {e}"),
            },
            transmit = outbound.recv() => {
                let Some(t) = transmit else { return };
                let Some(to) = peers.get(&t.dest) else { continue };
                let result = socket.send_to(&t.bytes, to).await.err().map(|e| e.kind());
                if result != last_send_error {
                    match result {
                        Some(kind) => tracing::warn!(path, "cannot send from {local} to {to}: {kind}; check the NIC and route"),
                        None => tracing::info!(path, "sending from {local} to {to} works again"),
                    }
                    last_send_error = result;
                }
            }
        }
    }
}
