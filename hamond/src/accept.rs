//! Accepting TCP clients for hamond's network endpoints (admin, metrics):
//! at most a fixed number at a time, each served in its own task; a failed
//! accept is logged and retried, never the end of the endpoint.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Serves clients of `listener` with `handle`, `max` at a time; `what`
/// names the endpoint in logs.
pub async fn serve<H, F>(listener: TcpListener, max: usize, what: &'static str, handle: H)
where
    H: Fn(TcpStream, SocketAddr) -> F,
    F: Future<Output = std::io::Result<()>> + Send + 'static,
{
    let clients = Arc::new(Semaphore::new(max));
    loop {
        let Ok(permit) = Arc::clone(&clients).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("{what}: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let client = handle(stream, peer);
        tokio::spawn(async move {
            if let Err(e) = client.await {
                tracing::debug!("{what} client {peer}: {e}");
            }
            drop(permit);
        });
    }
}
