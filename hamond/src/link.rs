//! The socket hasvrd connects to (`haschema::svclink`): mode 0600 and
//! SO_PEERCRED uid 0 or hamond's own user (the non-root demo). One
//! connection is current: a new one (a restarted hasvrd) replaces the old,
//! whose lines are ignored from then on.

use haschema::svclink::{self, ToHamond, ToHasvrd};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

/// What the link tells the daemon loop; `conn` numbers connections.
pub enum LinkEvent {
    Connected {
        conn: u64,
        tx: mpsc::UnboundedSender<ToHasvrd>,
    },
    Line {
        conn: u64,
        msg: ToHamond,
    },
    Closed {
        conn: u64,
    },
}

/// Creates the socket (replacing a stale one), mode 0600.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    haschema::ctl_server::bind_socket(path, 0o600, None)
}

/// Accepts hasvrd's connections until the daemon goes away.
pub async fn serve(listener: UnixListener, events: mpsc::Sender<LinkEvent>) {
    let mut next = 0u64;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!("hasvrd link accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Root's hasvrd, or (hamond run by a user, as the demo does without
        // root) one of hamond's own user, who can do nothing that user
        // could not already.
        let own = nix::unistd::geteuid().as_raw();
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == 0 || cred.uid() == own => {}
            Ok(cred) => {
                tracing::warn!(
                    "hasvrd link: refused uid {} (pid {:?}); only a hasvrd run by root or by \
                     hamond's own user may connect",
                    cred.uid(),
                    cred.pid()
                );
                continue;
            }
            Err(e) => {
                tracing::warn!("hasvrd link: cannot read peer credentials: {e}");
                continue;
            }
        }
        next += 1;
        tokio::spawn(connection(next, stream, events.clone()));
    }
}

async fn connection(conn: u64, stream: UnixStream, events: mpsc::Sender<LinkEvent>) {
    let (read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<ToHasvrd>();
    if events
        .send(LinkEvent::Connected { conn, tx })
        .await
        .is_err()
    {
        return;
    }
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if write.write_all(&svclink::encode(&msg)).await.is_err() {
                break;
            }
        }
    });
    let mut reader = BufReader::new(read.take(u64::MAX));
    let mut line = String::new();
    loop {
        line.clear();
        reader.get_mut().set_limit(svclink::MAX_LINE as u64 + 1);
        match reader.read_line(&mut line).await {
            Ok(0) => break,
            Err(e) => {
                tracing::warn!("hasvrd link: {e}");
                break;
            }
            Ok(_) => {}
        }
        match svclink::decode::<ToHamond>(&line) {
            Ok(msg) => {
                if events.send(LinkEvent::Line { conn, msg }).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                tracing::error!("hasvrd link: {e}; closing the connection (hasvrd reconnects)");
                break;
            }
        }
    }
    writer.abort();
    let _ = events.send(LinkEvent::Closed { conn }).await;
}
