//! The WWW agent against a small HTTP server in the test (std
//! TcpListener) and hasvrd's real agent server: up (200 with the expected
//! text), down (503), hung (a request never answered: the agent's timeout
//! drops the connection) and SIGTERM.

mod support;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use support::{Backend, Harness, WAIT, lifecycle};

/// What the server shares with the test.
#[derive(Default)]
struct State {
    mode: Mutex<String>,
    /// The mode of each request served.
    calls: Mutex<Vec<String>>,
    /// Connections left unanswered in hang mode.
    held: Mutex<Vec<TcpStream>>,
    stop: AtomicBool,
}

/// A one-page web server switched up, down or hang.
struct Web {
    addr: SocketAddr,
    state: Arc<State>,
}

impl Web {
    fn start() -> Web {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    serve(stream, &shared);
                }
            }
        });
        Web { addr, state }
    }
}

/// Reads one request head and answers it as the mode says.
fn serve(mut stream: TcpStream, state: &State) {
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    assert!(
        head.starts_with(b"GET /index.html HTTP/1.0\r\n"),
        "{head:?}"
    );
    let mode = state.mode.lock().unwrap().clone();
    state.calls.lock().unwrap().push(mode.clone());
    let reply: &[u8] = match mode.as_str() {
        "up" => b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<h1>Welcome to www</h1>\n",
        "down" => b"HTTP/1.0 503 Service Unavailable\r\n\r\nmaintenance\n",
        _ => {
            state.held.lock().unwrap().push(stream);
            return;
        }
    };
    let _ = stream.write_all(reply);
}

impl Drop for Web {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop up so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

impl Backend for Web {
    fn set_mode(&self, mode: &str) {
        *self.state.mode.lock().unwrap() = mode.to_owned();
    }

    fn calls_in(&self, mode: &str) -> usize {
        self.state
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|m| *m == mode)
            .count()
    }

    /// The agent closed every connection it left unanswered.
    fn hang_cleaned_up(&self) -> bool {
        let held = std::mem::take(&mut *self.state.held.lock().unwrap());
        held.into_iter().all(|mut s| {
            s.set_read_timeout(Some(WAIT)).unwrap();
            matches!(s.read(&mut [0u8; 16]), Ok(0))
        })
    }
}

#[test]
fn www() {
    let web = Web::start();
    let url = format!("http://{}/index.html", web.addr);
    let mut h = Harness::start("agent-www");
    lifecycle(
        &mut h,
        &web,
        env!("CARGO_BIN_EXE_www"),
        &["--url", &url, "--body", "Welcome"],
        "HTTP status 503",
    );
}

#[test]
fn https_is_refused_with_a_reason() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_www"))
        .args(["--service", "www", "--url", "https://192.0.2.100/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no TLS"), "{stderr}");
}
