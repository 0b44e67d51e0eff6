//! The admin endpoint's way to the services: a logged-in service request
//! ([`Request::Services`], [`Request::Service`], [`Request::NodeStandby`])
//! is sent to this node's hasvrd on its control socket (hamond runs as root, which hasvrd
//! accepts), one JSON line each way, as `hactl` does locally.

use haschema::ctl::{Request, Response};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// hasvrd has this long to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Longest answer read.
const MAX_ANSWER: u64 = 4 * 1024 * 1024;

/// True for the requests hasvrd answers.
pub fn serves(request: &Request) -> bool {
    matches!(
        request,
        Request::Services | Request::Service { .. } | Request::NodeStandby { .. }
    )
}

/// Sends `request` to hasvrd at `socket`; any failure becomes an error
/// answer that says what the operator can check.
pub async fn ask(socket: &Path, request: &Request) -> Response {
    match tokio::time::timeout(TIMEOUT, exchange(socket, request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => Response::Error {
            message: format!(
                "cannot reach hasvrd at {}: {e}; is it running on this node (and is hamond's \
                 --service-socket its --socket)?",
                socket.display()
            ),
        },
        Err(_) => Response::Error {
            message: format!(
                "hasvrd at {} did not answer within {} s; see its log on this node",
                socket.display(),
                TIMEOUT.as_secs()
            ),
        },
    }
}

/// One request line out, one answer line back.
async fn exchange(socket: &Path, request: &Request) -> std::io::Result<Response> {
    let mut stream = UnixStream::connect(socket).await?;
    let mut line = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line).await?;
    let mut answer = String::new();
    BufReader::new(stream.take(MAX_ANSWER))
        .read_line(&mut answer)
        .await?;
    serde_json::from_str(&answer)
        .map_err(|e| std::io::Error::other(format!("unexpected answer: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use haschema::ctl::ServiceOp;
    use tokio::net::UnixListener;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn only_service_requests_go_to_hasvrd() {
        assert!(serves(&Request::Services));
        assert!(serves(&Request::Service {
            op: ServiceOp::BringIn,
            service: "www".into(),
            node: None,
        }));
        assert!(!serves(&Request::Status));
        assert!(!serves(&Request::FenceConfirm {
            node: "beta".into()
        }));
    }

    #[test]
    fn asks_and_reads_one_answer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.sock");
        runtime().block_on(async {
            let listener = UnixListener::bind(&path).unwrap();
            let server = tokio::spawn(async move {
                let (stream, _) = listener.accept().await.unwrap();
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                reader.read_line(&mut line).await.unwrap();
                let request: Request = serde_json::from_str(&line).unwrap();
                let answer = Response::Done {
                    message: format!("{request:?}"),
                };
                let mut out = serde_json::to_vec(&answer).unwrap();
                out.push(b'\n');
                reader.get_mut().write_all(&out).await.unwrap();
            });
            let answer = ask(&path, &Request::Services).await;
            assert_eq!(
                answer,
                Response::Done {
                    message: "Services".into()
                }
            );
            server.await.unwrap();
        });
    }

    #[test]
    fn a_missing_hasvrd_is_an_error_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let answer = runtime().block_on(ask(&dir.path().join("none.sock"), &Request::Services));
        match answer {
            Response::Error { message } => {
                assert!(message.contains("is it running"), "{message}");
                assert!(message.contains("none.sock"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
