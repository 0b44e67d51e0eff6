//! The optional Prometheus endpoint (`[metrics] listen` in the cluster
//! config): `GET /metrics` over HTTP/1.x answers in the Prometheus text
//! exposition format, version 0.0.4.
//!
//! Each scrape asks the daemon loop over the same channel as the control
//! socket ([`CtlCall`]) for its status report (`Request::Status`), the
//! services' states every node advertised (`Request::Services`) and the
//! failover and fence events of its history (`Request::History`), and
//! renders them, so `hactl status`, `hactl history` and the metrics always
//! agree.
//! Requests are parsed with `httparse`; a request head is at most
//! [`MAX_REQUEST`] bytes and must arrive within [`READ_TIMEOUT`], each
//! connection carries one request and is closed after the answer, and at
//! most [`MAX_CLIENTS`] connections are served at once. Other paths get
//! 404, other methods on `/metrics` 405. If the address cannot be bound the
//! daemon logs it, runs on without metrics and retries.

use haschema::ctl::{FenceRecord, Request, Response, ServiceStatus, State, StatusReport};
use haschema::ctl_server::CtlCall;
use haschema::event::{Event, EventKind, Filter};
use litecloud::wire::Reject;
use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// Largest accepted request head (request line and headers).
pub const MAX_REQUEST: usize = 8 * 1024;
/// Most headers accepted in a request.
const MAX_HEADERS: usize = 32;
/// A client has this long to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// A client has this long to take the answer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// The daemon loop has this long to hand over a status report.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long unread request bytes are drained before closing.
const LINGER: Duration = Duration::from_millis(500);
/// Most unread request bytes drained before closing.
const LINGER_MAX: usize = 1024 * 1024;
/// Connections served at once; more wait in the listen backlog.
pub const MAX_CLIENTS: usize = 8;
/// Time between attempts to bind the address after a failure.
const BIND_RETRY: Duration = Duration::from_secs(30);
/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves `/metrics` on `listen` until the runtime stops. A failure to bind
/// is logged (once per distinct error) and retried every [`BIND_RETRY`]; it
/// never stops the daemon.
pub async fn serve(listen: SocketAddr, calls: mpsc::Sender<CtlCall>) {
    let mut last_error: Option<String> = None;
    let listener = loop {
        match TcpListener::bind(listen).await {
            Ok(listener) => break listener,
            Err(e) => {
                let error = e.to_string();
                if last_error.as_ref() != Some(&error) {
                    tracing::error!(
                        "metrics: cannot listen on {listen}: {error}; hamond runs on without \
                         metrics and retries every {} s (check [metrics] listen in the cluster config)",
                        BIND_RETRY.as_secs()
                    );
                    last_error = Some(error);
                }
                tokio::time::sleep(BIND_RETRY).await;
            }
        }
    };
    tracing::info!("metrics: serving http://{listen}/metrics");
    serve_on(listener, calls).await;
}

/// Accepts clients on a bound listener, [`MAX_CLIENTS`] at a time.
async fn serve_on(listener: TcpListener, calls: mpsc::Sender<CtlCall>) {
    hamond::accept::serve(listener, MAX_CLIENTS, "metrics", move |stream, _peer| {
        let calls = calls.clone();
        async move { handle(stream, &calls).await }
    })
    .await;
}

/// Answers one request on `stream`, then closes it.
async fn handle(mut stream: TcpStream, calls: &mpsc::Sender<CtlCall>) -> std::io::Result<()> {
    let reply = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Err(_) => Reply::text(408, "Request Timeout", "no request within 5 s\n"),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(Head::Closed)) => return Ok(()),
        Ok(Ok(Head::TooLarge)) => Reply::text(
            431,
            "Request Header Fields Too Large",
            "request head too large\n",
        ),
        Ok(Ok(Head::Bad(why))) => Reply::text(400, "Bad Request", &format!("{why}\n")),
        Ok(Ok(Head::Request { method, target })) => match route(&method, &target) {
            Route::NotFound => Reply::text(404, "Not Found", "only /metrics is served here\n"),
            Route::NotAllowed => Reply {
                allow: true,
                ..Reply::text(405, "Method Not Allowed", "use GET\n")
            },
            Route::Metrics { head } => {
                let reply = scrape(calls).await;
                Reply { head, ..reply }
            }
        },
    };
    let bytes = reply.to_bytes();
    match tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    })
    .await
    {
        Ok(result) => result?,
        Err(_) => return Err(std::io::Error::other("client did not take the answer")),
    }
    // Closing with unread bytes (a body, the rest of an oversized head)
    // would reset the connection and could destroy the answer in flight:
    // read a little of what is left first.
    let mut rest = [0u8; 4096];
    let _ = tokio::time::timeout(LINGER, async {
        let mut drained = 0;
        while drained < LINGER_MAX {
            match stream.read(&mut rest).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
    Ok(())
}

/// What a scrape renders, as the daemon loop hands it over.
pub struct Scraped {
    pub report: StatusReport,
    /// Each service's advertised state on every node.
    pub services: Vec<ServiceStatus>,
    /// The history's failover and fence events, oldest first.
    pub events: Vec<Event>,
}

/// The metrics, from what the daemon loop hands over.
async fn scrape(calls: &mpsc::Sender<CtlCall>) -> Reply {
    match gather(calls).await {
        Ok(scraped) => Reply {
            status: 200,
            reason: "OK",
            content_type: CONTENT_TYPE,
            allow: false,
            head: false,
            body: render(&scraped),
        },
        Err(why) => Reply::text(503, "Service Unavailable", &format!("{why}\n")),
    }
}

/// Asks the daemon loop for everything [`render`] needs.
async fn gather(calls: &mpsc::Sender<CtlCall>) -> Result<Scraped, String> {
    let other = || "hamond answered something other than was asked".to_string();
    let Response::Status(report) = ask(calls, Request::Status).await? else {
        return Err(other());
    };
    let Response::Services { services } = ask(calls, Request::Services).await? else {
        return Err(other());
    };
    let mut events = Vec::new();
    for kind in [EventKind::Failover, EventKind::Fence] {
        let filter = Filter {
            kind: Some(kind),
            ..Filter::default()
        };
        let request = Request::History {
            filter,
            limit: haschema::ctl::MAX_HISTORY,
        };
        let Response::History { events: found } = ask(calls, request).await? else {
            return Err(other());
        };
        events.extend(found);
    }
    Ok(Scraped {
        report: *report,
        services,
        events,
    })
}

/// One request to the daemon loop; an error answer, or none, is why not.
async fn ask(calls: &mpsc::Sender<CtlCall>, request: Request) -> Result<Response, String> {
    let shutting_down = || "hamond is shutting down".to_string();
    let (reply, answer) = oneshot::channel();
    let call = CtlCall {
        request,
        uid: None,
        reply,
    };
    calls.send(call).await.map_err(|_| shutting_down())?;
    match tokio::time::timeout(STATUS_TIMEOUT, answer).await {
        Ok(Ok(Response::Error { message })) => Err(message),
        Ok(Ok(response)) => Ok(response),
        Ok(Err(_)) => Err(shutting_down()),
        Err(_) => Err("the daemon loop did not answer within 5 s".into()),
    }
}

// ---------------------------------------------------------------------------
// HTTP

/// What a client sent, as far as it matters here.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    Request {
        method: String,
        target: String,
    },
    /// Not HTTP/1.x, or a malformed head.
    Bad(String),
    /// The head is longer than [`MAX_REQUEST`] or has too many headers.
    TooLarge,
    /// The client closed the connection before a full head.
    Closed,
}

/// Reads until the request head is complete (its body, if any, is ignored).
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Head> {
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut len = 0;
    loop {
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok(Head::Closed);
        }
        len += n;
        match parse_head(&buf[..len]) {
            Some(head) => return Ok(head),
            None if len == buf.len() => return Ok(Head::TooLarge),
            None => {}
        }
    }
}

/// The head in `bytes`, or None while it is incomplete.
fn parse_head(bytes: &[u8]) -> Option<Head> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bytes) {
        Ok(httparse::Status::Partial) => None,
        Ok(httparse::Status::Complete(_)) => Some(Head::Request {
            method: request.method.unwrap_or_default().to_owned(),
            target: request.path.unwrap_or_default().to_owned(),
        }),
        Err(httparse::Error::TooManyHeaders) => Some(Head::TooLarge),
        Err(e) => Some(Head::Bad(format!("bad request: {e}"))),
    }
}

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// The metrics; `head`: headers only (HEAD).
    Metrics {
        head: bool,
    },
    NotAllowed,
    NotFound,
}

fn route(method: &str, target: &str) -> Route {
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    if path != "/metrics" {
        return Route::NotFound;
    }
    match method {
        "GET" => Route::Metrics { head: false },
        "HEAD" => Route::Metrics { head: true },
        _ => Route::NotAllowed,
    }
}

/// One HTTP response; the connection closes after it.
struct Reply {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    /// Send `Allow: GET, HEAD` (with 405).
    allow: bool,
    /// Leave the body out (HEAD).
    head: bool,
    body: String,
}

impl Reply {
    fn text(status: u16, reason: &'static str, body: &str) -> Reply {
        Reply {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            allow: false,
            head: false,
            body: body.to_owned(),
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len()
        );
        if self.allow {
            out.push_str("Allow: GET, HEAD\r\n");
        }
        out.push_str("\r\n");
        if !self.head {
            out.push_str(&self.body);
        }
        out.into_bytes()
    }
}

// ---------------------------------------------------------------------------
// Exposition format 0.0.4

/// Writes metric families: `# HELP` and `# TYPE` lines, then the samples.
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape(help, false));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (key, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{key}=\"{}\"", escape(v, true));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// Escapes `\` and newline (and `"` in label values).
fn escape(text: &str, label: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if label => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// Milliseconds as seconds.
fn seconds_ms(ms: u64) -> f64 {
    ms as f64 / 1e3
}

/// 1 for up, 0 for down.
fn up(state: State) -> u8 {
    u8::from(state == State::Up)
}

/// What was scraped as metrics in the text exposition format 0.0.4. Every
/// sample carries the `node` label (this node; for a service's state, the
/// node the state is on); per peer `peer`, per path `path`.
pub fn render(scraped: &Scraped) -> String {
    let r = &scraped.report;
    let mut m = Exposition { out: String::new() };
    let node = r.node.as_str();
    let me = [("node", node)];
    let incarnation = r.incarnation.to_string();

    m.family(
        "hamond_node_info",
        "gauge",
        "This node: cluster, node name, incarnation and config hash (value 1).",
    );
    m.sample(
        "hamond_node_info",
        &[
            ("node", node),
            ("cluster", &r.cluster),
            ("incarnation", &incarnation),
            ("config_hash", &r.config_hash),
        ],
        1,
    );
    m.family(
        "hamond_uptime_seconds",
        "gauge",
        "Time since this hamond started.",
    );
    m.sample("hamond_uptime_seconds", &me, seconds_ms(r.uptime_ms));
    m.family(
        "hamond_membership_epoch",
        "gauge",
        "Membership epoch: bumped at each change of the set of live nodes.",
    );
    m.sample("hamond_membership_epoch", &me, r.epoch);
    if let Some(v) = &r.view {
        m.family(
            "hamond_view_epoch",
            "gauge",
            "Epoch of the membership view agreed with the peers.",
        );
        m.sample("hamond_view_epoch", &me, v.epoch);
        m.family(
            "hamond_view_members",
            "gauge",
            "Members of the agreed membership view.",
        );
        m.sample("hamond_view_members", &me, v.members.len() as u64);
        m.family(
            "hamond_view_quorum",
            "gauge",
            "1 when the agreed view holds a strict majority of the configured nodes.",
        );
        m.sample("hamond_view_quorum", &me, u64::from(v.quorum));
    }
    if let Some(w) = &r.watchdog {
        m.family(
            "hamond_watchdog_petting",
            "gauge",
            "1 while hamond pets its watchdog; 0: the node resets within the watchdog's timeout unless it clears.",
        );
        m.sample("hamond_watchdog_petting", &me, u64::from(w.petting));
        if let Some(left) = w.lease_left_ms {
            m.family(
                "hamond_lease_remaining_seconds",
                "gauge",
                "While this node holds services: how long its lease still runs (renewed while it may hold them).",
            );
            m.sample("hamond_lease_remaining_seconds", &me, seconds_ms(left));
        }
    }
    m.family(
        "hamond_stalls_total",
        "counter",
        "Times hamond found itself not scheduled for a while (VM pause, SIGSTOP, CPU starvation).",
    );
    m.sample("hamond_stalls_total", &me, r.stalls);

    m.family(
        "hamond_peer_up",
        "gauge",
        "Whether the peer is up (1) or down (0): up while any link to it is up.",
    );
    for p in &r.peers {
        m.sample(
            "hamond_peer_up",
            &[("node", node), ("peer", &p.name)],
            up(p.state),
        );
    }
    let links = || {
        r.peers
            .iter()
            .flat_map(|p| p.links.iter().map(move |l| (p.name.as_str(), l)))
    };
    m.family(
        "hamond_link_up",
        "gauge",
        "Whether the link to the peer over the path is up (1, two-way) or down (0).",
    );
    for (peer, l) in links() {
        let labels = [("node", node), ("peer", peer), ("path", l.path.as_str())];
        m.sample("hamond_link_up", &labels, up(l.state));
    }
    m.family(
        "hamond_link_last_heard_seconds",
        "gauge",
        "Time since the last accepted frame from the peer on the path (absent until one arrives).",
    );
    for (peer, l) in links() {
        if let Some(ms) = l.last_heard_ms {
            let labels = [("node", node), ("peer", peer), ("path", l.path.as_str())];
            m.sample("hamond_link_last_heard_seconds", &labels, seconds_ms(ms));
        }
    }
    m.family(
        "hamond_link_round_trip_seconds",
        "gauge",
        "Round trip of the last acknowledged frame to the peer on the path (absent until measured).",
    );
    for (peer, l) in links() {
        if let Some(us) = l.rtt_us {
            let labels = [("node", node), ("peer", peer), ("path", l.path.as_str())];
            m.sample("hamond_link_round_trip_seconds", &labels, us as f64 / 1e6);
        }
    }

    m.family(
        "hamond_path_open",
        "gauge",
        "Whether this node's port or socket on the path is open (1) or being reopened (0).",
    );
    for p in &r.paths {
        let labels = [("node", node), ("path", p.name.as_str()), ("kind", &p.kind)];
        m.sample("hamond_path_open", &labels, u8::from(p.open));
    }
    type Counter = fn(&haschema::ctl::PathStatus) -> u64;
    let counters: [(&str, &str, Counter); 4] = [
        (
            "hamond_frames_sent_total",
            "Frames sent on the path.",
            |p| p.frames_sent,
        ),
        (
            "hamond_frames_received_total",
            "Frames received on the path, accepted or not.",
            |p| p.frames_received,
        ),
        (
            "hamond_bytes_sent_total",
            "Bytes of frames sent on the path.",
            |p| p.bytes_sent,
        ),
        (
            "hamond_bytes_received_total",
            "Bytes of frames received on the path.",
            |p| p.bytes_received,
        ),
    ];
    for (name, help, value) in counters {
        m.family(name, "counter", help);
        for p in &r.paths {
            m.sample(name, &[("node", node), ("path", p.name.as_str())], value(p));
        }
    }
    m.family(
        "hamond_frames_rejected_total",
        "counter",
        "Frames dropped on the path, by reason (bad_mac, replay, foreign, ...).",
    );
    for p in &r.paths {
        let known = Reject::ALL.iter().map(|r| r.as_str());
        let other = p
            .rejected
            .keys()
            .map(String::as_str)
            .filter(|k| !Reject::ALL.iter().any(|r| r.as_str() == *k));
        for reason in known.chain(other) {
            let labels = [
                ("node", node),
                ("path", p.name.as_str()),
                ("reason", reason),
            ];
            let n = p.rejected.get(reason).copied().unwrap_or(0);
            m.sample("hamond_frames_rejected_total", &labels, n);
        }
    }
    render_services(&mut m, scraped);
    m.out
}

/// The services' states, failovers and fences.
fn render_services(m: &mut Exposition, scraped: &Scraped) {
    let node = scraped.report.node.as_str();
    m.family(
        "hamond_service_state",
        "gauge",
        "The state a node advertised for the service (ACTIVE, STANDBY, ...): 1 for the current one.",
    );
    for s in &scraped.services {
        for n in &s.nodes {
            let labels = [
                ("service", s.name.as_str()),
                ("node", n.node.as_str()),
                ("state", n.state.as_str()),
            ];
            m.sample("hamond_service_state", &labels, 1);
        }
    }
    m.family(
        "hamond_service_failures",
        "gauge",
        "The service's fail count on a node, as that node advertised it (failures not yet \
         expired nor cleaned up; at migration_threshold the node cannot host it).",
    );
    for s in &scraped.services {
        for n in &s.nodes {
            let labels = [("service", s.name.as_str()), ("node", n.node.as_str())];
            m.sample("hamond_service_failures", &labels, u64::from(n.failures));
        }
    }
    // Per service: how many failovers, and the newest one's duration.
    let mut failovers: BTreeMap<&str, (u64, Option<Duration>)> = BTreeMap::new();
    // Per recording node: how many fence attempts.
    let mut fences: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &scraped.events {
        match (e.kind, &e.service) {
            (EventKind::Failover, Some(service)) => {
                let entry = failovers.entry(service).or_default();
                entry.0 += 1;
                entry.1 = e.duration().or(entry.1);
            }
            (EventKind::Fence, _) if !e.phases.is_empty() => {
                *fences.entry(e.node.as_str()).or_default() += 1;
            }
            _ => {}
        }
    }
    m.family(
        "hamond_failovers_total",
        "counter",
        "Failovers of the service in the event history (cluster-wide, as far as it reaches back).",
    );
    for (service, (count, _)) in &failovers {
        m.sample(
            "hamond_failovers_total",
            &[("node", node), ("service", service)],
            count,
        );
    }
    m.family(
        "hamond_failover_last_duration_seconds",
        "gauge",
        "Duration of the service's newest failover, all its phases (detection, fencing, stop, start).",
    );
    for (service, (_, took)) in &failovers {
        if let Some(took) = took {
            let labels = [("node", node), ("service", service)];
            m.sample(
                "hamond_failover_last_duration_seconds",
                &labels,
                took.as_secs_f64(),
            );
        }
    }
    m.family(
        "hamond_fence_attempts_total",
        "counter",
        "Fence attempts in the event history, by the node that fenced (`by`), failed ones included.",
    );
    for (by, count) in &fences {
        m.sample(
            "hamond_fence_attempts_total",
            &[("node", node), ("by", by)],
            count,
        );
    }
    // The report lists each fenced node's fences oldest first.
    let last: BTreeMap<&str, &FenceRecord> = scraped
        .report
        .fences
        .iter()
        .map(|f| (f.node.as_str(), f))
        .collect();
    m.family(
        "hamond_fence_last_duration_seconds",
        "gauge",
        "Duration of this node's newest fence of the node `fenced`, to the end of its proof.",
    );
    for (fenced, f) in &last {
        let labels = [("node", node), ("fenced", fenced)];
        m.sample(
            "hamond_fence_last_duration_seconds",
            &labels,
            seconds_ms(f.duration_ms),
        );
    }
    m.family(
        "hamond_fence_last_success",
        "gauge",
        "Whether this node's newest fence of the node `fenced` succeeded (1) or failed (0).",
    );
    for (fenced, f) in &last {
        let labels = [("node", node), ("fenced", fenced)];
        m.sample(
            "hamond_fence_last_success",
            &labels,
            u8::from(f.error.is_none()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use haschema::ctl::{LinkStatus, PathStatus, PeerStatus, ServiceNode};
    use haschema::event::Severity;
    use std::collections::BTreeMap;

    fn report() -> StatusReport {
        let link = |path: &str, state, rtt_us| LinkStatus {
            path: path.into(),
            state,
            last_heard_ms: Some(250),
            rtt_us,
            cause: None,
        };
        let path = |name: &str, kind: &str, rejected: &[(&str, u64)]| PathStatus {
            name: name.into(),
            kind: kind.into(),
            open: true,
            error: None,
            frames_sent: 10,
            frames_received: 9,
            bytes_sent: 430,
            bytes_received: 387,
            rejected: rejected
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect::<BTreeMap<_, _>>(),
        };
        StatusReport {
            cluster: "demo".into(),
            netid: 7,
            node: "alpha".into(),
            domain: 1,
            incarnation: 42,
            boot: "0badf00d".into(),
            config_hash: "12345678".into(),
            epoch: 3,
            view: None,
            uptime_ms: 61_500,
            stalls: 1,
            last_stall_ms: Some(900),
            watchdog: None,
            withdrawn: None,
            fences: Vec::new(),
            fence_devices: Vec::new(),
            peers: vec![PeerStatus {
                name: "beta".into(),
                domain: 2,
                state: State::Up,
                incarnation: Some(5),
                config_matches: Some(true),
                since_ms: 1000,
                cause: None,
                watchdog: Default::default(),
                links: vec![
                    link("rs232", State::Down, None),
                    link("lan1", State::Up, Some(1500)),
                ],
            }],
            paths: vec![
                path("rs232", "serial", &[]),
                path("lan1", "udp", &[("bad_mac", 2), ("future_reason", 1)]),
            ],
        }
    }

    /// [`report`] with a service on alpha and beta, two failovers of it,
    /// and fences of beta.
    fn scraped() -> Scraped {
        let mut report = report();
        let fence = |at_ms, duration_ms, error: Option<&str>| FenceRecord {
            node: "beta".into(),
            device: "ipmi".into(),
            action: "off".into(),
            at_ms,
            duration_ms,
            error: error.map(Into::into),
        };
        report.fences = vec![fence(1, 900, Some("timeout")), fence(2, 2500, None)];
        let state = |node: &str, state: &str| ServiceNode {
            node: node.into(),
            state: state.into(),
            can_host: true,
            failures: 0,
        };
        let failover = |took| {
            Event::now(
                "beta",
                EventKind::Failover,
                Severity::Warning,
                "took over www",
            )
            .about("www")
            .phase("fencing", Duration::from_millis(took))
            .phase("start", Duration::from_millis(500))
        };
        let fenced = Event::now("alpha", EventKind::Fence, Severity::Warning, "beta fenced")
            .phase("fencing", Duration::from_millis(2500));
        Scraped {
            report,
            services: vec![ServiceStatus {
                name: "www".into(),
                owner: Some("alpha".into()),
                nodes: vec![
                    state("alpha", "ACTIVEACT"),
                    ServiceNode {
                        failures: 3,
                        ..state("beta", "STANDBY")
                    },
                ],
                failures: 0,
                fault: None,
            }],
            events: vec![failover(1000), failover(250), fenced],
        }
    }

    #[test]
    fn renders_services_failovers_and_fences() {
        let text = render(&scraped());
        let want = [
            (
                "hamond_service_state{service=\"www\",node=\"alpha\",state=\"ACTIVEACT\"}",
                "1",
            ),
            (
                "hamond_service_state{service=\"www\",node=\"beta\",state=\"STANDBY\"}",
                "1",
            ),
            (
                "hamond_service_failures{service=\"www\",node=\"beta\"}",
                "3",
            ),
            (
                "hamond_failovers_total{node=\"alpha\",service=\"www\"}",
                "2",
            ),
            (
                "hamond_failover_last_duration_seconds{node=\"alpha\",service=\"www\"}",
                "0.75",
            ),
            (
                "hamond_fence_attempts_total{node=\"alpha\",by=\"alpha\"}",
                "1",
            ),
            (
                "hamond_fence_last_duration_seconds{node=\"alpha\",fenced=\"beta\"}",
                "2.5",
            ),
            (
                "hamond_fence_last_success{node=\"alpha\",fenced=\"beta\"}",
                "1",
            ),
        ];
        for (series, v) in want {
            assert_eq!(value(&text, series).as_deref(), Some(v), "{series}\n{text}");
        }
        for (name, kind) in [
            ("hamond_service_state", "gauge"),
            ("hamond_service_failures", "gauge"),
            ("hamond_failovers_total", "counter"),
            ("hamond_fence_attempts_total", "counter"),
        ] {
            assert!(
                text.contains(&format!("\n# TYPE {name} {kind}\n")),
                "{name}"
            );
        }
    }

    /// The sample lines of `text` for `name`, without the value.
    fn value(text: &str, series: &str) -> Option<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(str::to_owned)
    }

    #[test]
    fn renders_every_family_with_help_and_type() {
        let text = render(&scraped());
        let families = [
            ("hamond_node_info", "gauge"),
            ("hamond_uptime_seconds", "gauge"),
            ("hamond_membership_epoch", "gauge"),
            ("hamond_stalls_total", "counter"),
            ("hamond_peer_up", "gauge"),
            ("hamond_link_up", "gauge"),
            ("hamond_link_last_heard_seconds", "gauge"),
            ("hamond_link_round_trip_seconds", "gauge"),
            ("hamond_path_open", "gauge"),
            ("hamond_frames_sent_total", "counter"),
            ("hamond_frames_received_total", "counter"),
            ("hamond_bytes_sent_total", "counter"),
            ("hamond_bytes_received_total", "counter"),
            ("hamond_frames_rejected_total", "counter"),
        ];
        for (name, kind) in families {
            assert!(
                text.contains(&format!("\n# TYPE {name} {kind}\n")),
                "{name}"
            );
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
            assert_eq!(text.matches(&format!("# TYPE {name} ")).count(), 1);
        }
        let want = [
            (
                "hamond_node_info{node=\"alpha\",cluster=\"demo\",incarnation=\"42\",config_hash=\"12345678\"}",
                "1",
            ),
            ("hamond_uptime_seconds{node=\"alpha\"}", "61.5"),
            ("hamond_membership_epoch{node=\"alpha\"}", "3"),
            ("hamond_stalls_total{node=\"alpha\"}", "1"),
            ("hamond_peer_up{node=\"alpha\",peer=\"beta\"}", "1"),
            (
                "hamond_link_up{node=\"alpha\",peer=\"beta\",path=\"rs232\"}",
                "0",
            ),
            (
                "hamond_link_up{node=\"alpha\",peer=\"beta\",path=\"lan1\"}",
                "1",
            ),
            (
                "hamond_link_last_heard_seconds{node=\"alpha\",peer=\"beta\",path=\"lan1\"}",
                "0.25",
            ),
            (
                "hamond_link_round_trip_seconds{node=\"alpha\",peer=\"beta\",path=\"lan1\"}",
                "0.0015",
            ),
            (
                "hamond_path_open{node=\"alpha\",path=\"rs232\",kind=\"serial\"}",
                "1",
            ),
            (
                "hamond_frames_sent_total{node=\"alpha\",path=\"lan1\"}",
                "10",
            ),
            (
                "hamond_bytes_received_total{node=\"alpha\",path=\"rs232\"}",
                "387",
            ),
            (
                "hamond_frames_rejected_total{node=\"alpha\",path=\"lan1\",reason=\"bad_mac\"}",
                "2",
            ),
            (
                "hamond_frames_rejected_total{node=\"alpha\",path=\"lan1\",reason=\"replay\"}",
                "0",
            ),
            (
                "hamond_frames_rejected_total{node=\"alpha\",path=\"lan1\",reason=\"future_reason\"}",
                "1",
            ),
        ];
        for (series, v) in want {
            assert_eq!(value(&text, series).as_deref(), Some(v), "{series}\n{text}");
        }
        // No round trip measured on rs232: no sample rather than a made-up 0.
        assert!(!text.contains("round_trip_seconds{node=\"alpha\",peer=\"beta\",path=\"rs232\"}"));
        let reasons = text
            .lines()
            .filter(|l| l.starts_with("hamond_frames_rejected_total{node=\"alpha\",path=\"rs232\""))
            .count();
        assert_eq!(reasons, Reject::ALL.len());
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn renders_the_watchdog_and_the_lease_while_services_are_held() {
        let mut scraped = scraped();
        assert!(!render(&scraped).contains("hamond_watchdog_petting"));
        let mut w = haschema::ctl::WatchdogStatus {
            petting: true,
            lease_s: 60,
            ..Default::default()
        };
        scraped.report.watchdog = Some(w.clone());
        let text = render(&scraped);
        assert_eq!(
            value(&text, "hamond_watchdog_petting{node=\"alpha\"}").as_deref(),
            Some("1")
        );
        assert!(
            !text.contains("hamond_lease_remaining_seconds"),
            "nothing held"
        );
        w.petting = false;
        w.lease_left_ms = Some(41_500);
        scraped.report.watchdog = Some(w);
        let text = render(&scraped);
        assert_eq!(
            value(&text, "hamond_watchdog_petting{node=\"alpha\"}").as_deref(),
            Some("0")
        );
        assert_eq!(
            value(&text, "hamond_lease_remaining_seconds{node=\"alpha\"}").as_deref(),
            Some("41.5")
        );
    }

    #[test]
    fn samples_of_a_family_are_contiguous() {
        let text = render(&scraped());
        let mut seen: Vec<&str> = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            if seen.last() != Some(&name) {
                assert!(!seen.contains(&name), "{name} is split\n{text}");
                seen.push(name);
            }
        }
    }

    #[test]
    fn escapes_label_values_and_help() {
        let mut r = report();
        r.cluster = "a\"b\\c\nd".into();
        let text = render(&Scraped {
            report: r,
            ..scraped()
        });
        assert!(text.contains(r#"cluster="a\"b\\c\nd""#), "{text}");
        assert_eq!(escape("x\\y\n\"", false), "x\\\\y\\n\"");
    }

    #[test]
    fn routes() {
        assert_eq!(route("GET", "/metrics"), Route::Metrics { head: false });
        assert_eq!(route("GET", "/metrics?x=1"), Route::Metrics { head: false });
        assert_eq!(route("HEAD", "/metrics"), Route::Metrics { head: true });
        for method in ["POST", "PUT", "DELETE", "get"] {
            assert_eq!(route(method, "/metrics"), Route::NotAllowed, "{method}");
        }
        for target in ["/", "/metrics/", "/Metrics", "*", "http://x/metrics"] {
            assert_eq!(route("GET", target), Route::NotFound, "{target}");
        }
    }

    #[test]
    fn parses_heads() {
        assert_eq!(parse_head(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(
            parse_head(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(Head::Request {
                method: "GET".into(),
                target: "/metrics".into()
            })
        );
        assert!(matches!(
            parse_head(b"GET /metrics SPDY/3\r\n\r\n"),
            Some(Head::Bad(_))
        ));
        assert!(matches!(
            parse_head(b"\x00\x01\x02\r\n\r\n"),
            Some(Head::Bad(_))
        ));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: y\r\n")).collect();
        let head = format!("GET /metrics HTTP/1.1\r\n{many}\r\n");
        assert_eq!(parse_head(head.as_bytes()), Some(Head::TooLarge));
    }

    #[test]
    fn replies() {
        let r = Reply {
            allow: true,
            ..Reply::text(405, "Method Not Allowed", "use GET\n")
        };
        let text = String::from_utf8(r.to_bytes()).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nAllow: GET, HEAD\r\n"), "{text}");
        assert!(text.contains("\r\nContent-Length: 8\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nuse GET\n"), "{text}");
        let head = Reply {
            head: true,
            ..Reply::text(200, "OK", "body")
        };
        let text = String::from_utf8(head.to_bytes()).unwrap();
        assert!(text.ends_with(
            "Content-Length: 4\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n"
        ));
    }

    /// A fake daemon loop answering with [`scraped`].
    fn fake_daemon() -> mpsc::Sender<CtlCall> {
        let (tx, mut rx) = mpsc::channel::<CtlCall>(4);
        tokio::spawn(async move {
            while let Some(call) = rx.recv().await {
                let s = scraped();
                let answer = match call.request {
                    Request::Status => Response::Status(Box::new(s.report)),
                    Request::Services => Response::Services {
                        services: s.services,
                    },
                    Request::History { filter, .. } => Response::History {
                        events: s.events.into_iter().filter(|e| filter.matches(e)).collect(),
                    },
                    _ => unreachable!("metrics ask nothing else"),
                };
                let _ = call.reply.send(answer);
            }
        });
        tx
    }

    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn serves_over_tcp() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve_on(listener, fake_daemon()));

        let ok = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let (head, body) = ok.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(
            head.contains(&format!("Content-Type: {CONTENT_TYPE}")),
            "{head}"
        );
        assert_eq!(body, render(&scraped()));
        let head_only = exchange(addr, b"HEAD /metrics HTTP/1.0\r\n\r\n").await;
        assert!(head_only.starts_with("HTTP/1.1 200 OK\r\n") && head_only.ends_with("\r\n\r\n"));

        let answers = [
            (
                &b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"[..],
                "405",
            ),
            (b"GET / HTTP/1.1\r\n\r\n", "404"),
            (b"GET /metrics HTTP/9.9\r\n\r\n", "400"),
        ];
        for (request, status) in answers {
            let answer = exchange(addr, request).await;
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {status} ")),
                "{status}: {answer}"
            );
        }
        let mut huge = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
        huge.resize(MAX_REQUEST + 100, b'a');
        let answer = exchange(addr, &huge).await;
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
        // The server still answers after all that.
        let again = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(again.starts_with("HTTP/1.1 200 OK\r\n"));
    }

    #[tokio::test]
    async fn no_daemon_is_503() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel::<CtlCall>(1);
        drop(rx);
        tokio::spawn(serve_on(listener, tx));
        let answer = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert!(answer.ends_with("hamond is shutting down\n"), "{answer}");
    }
}
