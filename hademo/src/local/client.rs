//! The demo's client when there is no floating IP: every 0.1 s it asks each
//! node's own loopback port (`GET /`) and records which nodes answered
//! (each server answers with its node's name), so that the outage of a
//! move can be measured afterwards.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the client asks.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// How long one request may take (connect, then the answer).
const REQUEST_TIMEOUT: Duration = Duration::from_millis(300);
/// The longest a client runs, whoever forgets to stop it.
const MAX_RUN: Duration = Duration::from_secs(600);

/// One round of requests: when, and which nodes answered.
#[derive(Clone, Debug)]
struct Probe {
    at: Instant,
    answered: Vec<String>,
}

/// A client polling in its own thread.
pub struct Client {
    stop: Arc<AtomicBool>,
    probes: Arc<Mutex<Vec<Probe>>>,
    thread: JoinHandle<()>,
}

/// What the client saw while the service moved.
pub struct Outage {
    /// From the old node's last answer to the new node's first.
    pub gap: Duration,
    /// Rounds in between that nobody answered.
    pub failed_probes: usize,
    /// Rounds answered by both nodes (the service running twice).
    pub twice: usize,
}

impl Client {
    /// Starts asking `ports` of 127.0.0.1.
    pub fn start(ports: Vec<u16>) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let probes = Arc::new(Mutex::new(Vec::new()));
        let (stop2, probes2) = (stop.clone(), probes.clone());
        let thread = std::thread::spawn(move || {
            let began = Instant::now();
            while !stop2.load(Ordering::Relaxed) && began.elapsed() < MAX_RUN {
                let at = Instant::now();
                let answered = ports.iter().filter_map(|&port| fetch(port).ok()).collect();
                lock(&probes2).push(Probe { at, answered });
                std::thread::sleep((at + PROBE_EVERY).saturating_duration_since(Instant::now()));
            }
        });
        Client {
            stop,
            probes,
            thread,
        }
    }

    /// Waits until `node` answers a round, at most `timeout`.
    pub fn wait_answer_from(&self, node: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        for _ in 0..=timeout.as_millis() / PROBE_EVERY.as_millis() {
            if lock(&self.probes)
                .last()
                .is_some_and(|p| p.answered.iter().any(|a| a == node))
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(PROBE_EVERY);
        }
        Err(format!(
            "the client got no answer from {node} within {timeout:?}"
        ))
    }

    /// Stops the client; the outage as the service moved from `from` to
    /// `to` (None if it never saw both).
    pub fn stop(self, from: &str, to: &str) -> Option<Outage> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        let probes = lock(&self.probes).clone();
        let by = |p: &Probe, node: &str| p.answered.iter().any(|a| a == node);
        let first_new = probes.iter().position(|p| by(p, to))?;
        let last_old = probes[..first_new].iter().rposition(|p| by(p, from))?;
        Some(Outage {
            gap: probes[first_new].at.duration_since(probes[last_old].at),
            failed_probes: first_new - last_old - 1,
            twice: probes.iter().filter(|p| p.answered.len() > 1).count(),
        })
    }
}

/// `GET /` on 127.0.0.1:`port`; the last line of the answer (the node's
/// name).
pub fn fetch(port: u16) -> std::io::Result<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    answer
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
        .ok_or_else(|| std::io::Error::other("empty answer"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
