//! Driver of one RS-232 private network (tokio-serial): frames are COBS
//! framed with a CRC, written in priority order and paced to the line's
//! airtime so that urgent frames never wait behind a queue of heartbeats in
//! the kernel. A port that vanishes, hangs up (EOF) or errors is closed,
//! reported and reopened with backoff; the daemon never stops for it.

use crate::transport::{Inbound, reopen_delays, report_and_back_off};
use litecloud::node::Transmit;
use litecloud::serial::{self, Deframer, SendQueue};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_serial::{SerialPort, SerialPortBuilderExt};

/// Longest a write may block before the frame is given up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs the path until the daemon drops `outbound`.
pub async fn run(
    path: u8,
    device: PathBuf,
    baud: u32,
    mut outbound: mpsc::Receiver<Transmit>,
    inbound: mpsc::Sender<Inbound>,
) {
    let mut delays = reopen_delays();
    loop {
        let error = match open(&device, baud) {
            Ok(port) => {
                delays = reopen_delays();
                if inbound
                    .send(Inbound::Port { path, error: None })
                    .await
                    .is_err()
                {
                    return;
                }
                match serve(path, port, baud, &mut outbound, &inbound).await {
                    Some(error) => error,
                    None => return,
                }
            }
            Err(e) => format!(
                "cannot open {}: {e}; check the device and cable",
                device.display()
            ),
        };
        if !report_and_back_off(path, error, &mut delays, &inbound, &mut outbound).await {
            return;
        }
    }
}

fn open(device: &std::path::Path, baud: u32) -> tokio_serial::Result<tokio_serial::SerialStream> {
    let port = tokio_serial::new(device.to_string_lossy(), baud)
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(tokio_serial::Parity::None)
        .stop_bits(tokio_serial::StopBits::One)
        .flow_control(tokio_serial::FlowControl::None)
        .open_native_async()?;
    port.clear(tokio_serial::ClearBuffer::All)?;
    Ok(port)
}

/// Moves frames both ways until the port fails (returns the error) or the
/// daemon goes away (returns None).
async fn serve(
    path: u8,
    port: tokio_serial::SerialStream,
    baud: u32,
    outbound: &mut mpsc::Receiver<Transmit>,
    inbound: &mpsc::Sender<Inbound>,
) -> Option<String> {
    let (mut reader, mut writer) = tokio::io::split(port);
    let mut deframer = Deframer::default();
    let mut queue = SendQueue::default();
    let mut line_free_at = Instant::now();
    let mut buf = [0u8; 512];
    loop {
        tokio::select! {
            read = reader.read(&mut buf) => {
                let n = match read {
                    Ok(0) => return Some("hang-up (end of file): cable or peer port gone".into()),
                    Ok(n) => n,
                    Err(e) => return Some(format!("read error: {e}")),
                };
                for result in deframer.push(&buf[..n]) {
                    let report = match result {
                        Ok(bytes) => Inbound::Frame { path, bytes },
                        Err(reason) => Inbound::Dropped { path, reason },
                    };
                    inbound.send(report).await.ok()?;
                }
            }
            transmit = outbound.recv() => queue.push(transmit?),
            () = sleep_until(line_free_at), if !queue.is_empty() => {
                let Some(t) = queue.pop() else { continue };
                let bytes = serial::encode(&t.bytes);
                match timeout(WRITE_TIMEOUT, writer.write_all(&bytes)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Some(format!("write error: {e}")),
                    Err(_) => return Some("write blocked for 2 s: line stuck".into()),
                }
                line_free_at = Instant::now() + serial::airtime(bytes.len(), baud);
            }
        }
    }
}
