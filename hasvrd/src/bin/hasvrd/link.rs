//! hasvrd's end of the link to hamond (`haschema::svclink`): connects
//! (retrying until hamond listens), says hello, waits for the welcome, then
//! passes hamond's lines to the daemon loop and the loop's lines to hamond.

use haschema::svclink::{self, ToHamond, ToHasvrd};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedReadHalf;
use tokio::sync::mpsc;

/// Pause between two connection attempts.
const RETRY: Duration = Duration::from_millis(100);
/// How long hamond has to answer the hello.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);

/// What the welcome said.
pub struct Welcome {
    pub node: String,
    pub held: Vec<String>,
    pub up: Vec<String>,
}

/// A connected link: `tx` reaches hamond; hamond's lines arrive on the
/// channel given to [`connect`], then `None` when it goes away.
pub struct Link {
    pub tx: mpsc::UnboundedSender<ToHamond>,
    /// The task that writes `tx`'s lines; it ends once every sender is
    /// dropped and what they sent is written.
    pub writer: tokio::task::JoinHandle<()>,
}

/// Connects to hamond at `path` and says hello with `services`; retries
/// until hamond answers. Refusals are fatal.
pub async fn connect(
    path: &Path,
    services: &[String],
    lines: mpsc::UnboundedSender<Option<ToHasvrd>>,
) -> Result<(Link, Welcome), String> {
    let mut complained = false;
    loop {
        match attempt(path, services).await {
            Ok((stream, reader, welcome)) => {
                tracing::info!("connected to hamond at {}", path.display());
                let link = start(stream, reader, lines);
                return Ok((link, welcome));
            }
            Err(Attempt::Refused(reason)) => {
                return Err(format!("hamond refused this hasvrd: {reason}"));
            }
            Err(Attempt::Failed(e)) => {
                if !complained {
                    tracing::warn!(
                        "cannot reach hamond at {} ({e}); retrying until it runs (start hamond first)",
                        path.display()
                    );
                    complained = true;
                }
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

enum Attempt {
    Refused(String),
    Failed(String),
}

async fn attempt(
    path: &Path,
    services: &[String],
) -> Result<
    (
        tokio::net::unix::OwnedWriteHalf,
        BufReader<OwnedReadHalf>,
        Welcome,
    ),
    Attempt,
> {
    let fail = |e: &dyn std::fmt::Display| Attempt::Failed(e.to_string());
    let stream = UnixStream::connect(path).await.map_err(|e| fail(&e))?;
    let (read, mut write) = stream.into_split();
    let hello = ToHamond::Hello {
        services: services.to_vec(),
    };
    write
        .write_all(&svclink::encode(&hello))
        .await
        .map_err(|e| fail(&e))?;
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    match tokio::time::timeout(WELCOME_TIMEOUT, reader.read_line(&mut line)).await {
        Err(_) => return Err(fail(&"no welcome within 10 s")),
        Ok(Err(e)) => return Err(fail(&e)),
        Ok(Ok(0)) => return Err(fail(&"hamond closed the link")),
        Ok(Ok(_)) => {}
    }
    match svclink::decode::<ToHasvrd>(&line).map_err(|e| fail(&e))? {
        ToHasvrd::Welcome { node, held, up } => Ok((write, reader, Welcome { node, held, up })),
        ToHasvrd::Refused { reason } => Err(Attempt::Refused(reason)),
        other => Err(fail(&format!("expected a welcome, got {other:?}"))),
    }
}

fn start(
    mut write: tokio::net::unix::OwnedWriteHalf,
    mut reader: BufReader<OwnedReadHalf>,
    lines: mpsc::UnboundedSender<Option<ToHasvrd>>,
) -> Link {
    let (tx, mut rx) = mpsc::unbounded_channel::<ToHamond>();
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if write.write_all(&svclink::encode(&msg)).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => match svclink::decode::<ToHasvrd>(&line) {
                    Ok(msg) => {
                        if lines.send(Some(msg)).is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::warn!("hamond link: {e}; line ignored"),
                },
            }
        }
        let _ = lines.send(None);
    });
    Link { tx, writer }
}
