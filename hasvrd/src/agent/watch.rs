//! The heartbeat watch of every service, as a pure state machine: no
//! sockets, no clock. The driver ([`super::server`]) passes in each request
//! with the time and who sent it, the exits of agent processes, and its
//! timer ([`Watch::handle_timeout`] at [`Watch::next_deadline`]); it gets
//! back the reply to send and [`Event`]s to act on.
//!
//! Per service, the watch is closed, open (heartbeats expected before a
//! deadline) or failed (a failure was reported; nothing is expected until
//! the next `open` or `ok`):
//!
//! | input | closed | open | failed |
//! |---|---|---|---|
//! | `open` | open, [`Event::AgentOpened`] | window restarts | open, [`Event::AgentOpened`] |
//! | `ok` | open, [`Event::AgentOpened`] | window restarts | open, [`Event::AgentOpened`] |
//! | `err` | failed, [`Event::AgentFailed`] | failed, [`Event::AgentFailed`] | [`Event::AgentFailed`] again |
//! | `close` | - | closed, [`Event::AgentClosed`] | closed, [`Event::AgentClosed`] |
//! | deadline passes | | failed, [`Event::AgentFailed`] (silent) | |
//! | agent exits | - | failed, [`Event::AgentFailed`] (exited) | - |
//! | [`Watch::disarm`] | - | closed, no event | closed, no event |
//!
//! The window is `check_interval x check_tko` from the `open` or the last
//! `ok`. Every `err` is reported (an agent repeats it each interval while
//! the application is down); the service logic decides what a repeated
//! failure means while it is already restarting or moving the service.
//!
//! A request counts at the time the driver hands it in, even if a deadline
//! passed meanwhile without the timer having fired: a heartbeat waiting in
//! the socket is a heartbeat. When the timer itself fires more than one
//! `check_interval` after a deadline, hasvrd was not running (a VM pause,
//! SIGSTOP, CPU starvation): the silence overlaps that stall, so the window
//! restarts from now instead of failing the service ([`Event::CheckLate`]);
//! a dead agent is still found one window later.

use haschema::agent::{Reply, Request, Verb};
use haschema::service::ServiceConfig;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::Duration;

/// A point in time: the time since an arbitrary origin on the driver's
/// monotonic clock (virtual in tests).
pub type Time = Duration;

/// The timing of one service's heartbeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchParams {
    pub check_interval: Duration,
    pub check_tko: u32,
}

impl WatchParams {
    /// Longest silence allowed: `check_interval x check_tko`.
    pub fn window(&self) -> Duration {
        self.check_interval.saturating_mul(self.check_tko.max(1))
    }
}

impl From<&ServiceConfig> for WatchParams {
    fn from(service: &ServiceConfig) -> WatchParams {
        WatchParams {
            check_interval: service.check_interval,
            check_tko: service.check_tko,
        }
    }
}

/// Who sent a request, from SO_PEERCRED.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    pub uid: u32,
    pub pid: Option<i32>,
    /// Root or a member of the admin group: may send `cmd`.
    pub admin: bool,
}

/// Why a service's agent counts as failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailCause {
    /// No heartbeat for `silence` (at least the window).
    Silent { silence: Duration },
    /// The agent sent `err`, with this reason (maybe empty).
    Reported { reason: String },
    /// The agent process hasvrd started exited while the service was open.
    Exited { how: String },
}

impl fmt::Display for FailCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailCause::Silent { silence } => {
                write!(f, "silent (fake alive): no heartbeat for {silence:?}")
            }
            FailCause::Reported { reason } if reason.is_empty() => {
                f.write_str("the agent reported an error")
            }
            FailCause::Reported { reason } => write!(f, "the agent reported an error: {reason}"),
            FailCause::Exited { how } => write!(f, "the agent exited while open ({how})"),
        }
    }
}

/// What the daemon acts on (and logs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Heartbeats are now expected (after `open`, or an `ok` while not open).
    AgentOpened {
        service: String,
        uid: u32,
        pid: Option<i32>,
    },
    /// Heartbeats are no longer expected: the agent said `close`.
    AgentClosed {
        service: String,
        uid: u32,
        pid: Option<i32>,
    },
    /// The application failed, as its agent tells (or fails to tell).
    AgentFailed { service: String, cause: FailCause },
    /// An admin asked, through `apicmd`, to bring the service in or out or
    /// to move it.
    Command {
        verb: Verb,
        service: String,
        requested_by: u32,
    },
    /// The silence check ran `late` after the deadline: the window was
    /// restarted rather than the service failed (see the module doc).
    CheckLate { service: String, late: Duration },
}

/// Where one service's watch stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchState {
    Closed,
    /// Heartbeats expected; the last one (or the open) was at `since`.
    Open {
        since: Time,
        deadline: Time,
    },
    Failed,
}

#[derive(Debug)]
struct Entry {
    params: WatchParams,
    state: WatchState,
}

/// The heartbeat watch of the services known on this node.
#[derive(Debug)]
pub struct Watch {
    services: BTreeMap<String, Entry>,
    events: VecDeque<Event>,
}

impl Watch {
    /// A watch of these services, all closed.
    pub fn new(services: impl IntoIterator<Item = (String, WatchParams)>) -> Watch {
        let services = services
            .into_iter()
            .map(|(name, params)| {
                let entry = Entry {
                    params,
                    state: WatchState::Closed,
                };
                (name, entry)
            })
            .collect();
        Watch {
            services,
            events: VecDeque::new(),
        }
    }

    /// A watch of these configured services.
    pub fn of_services<'a>(services: impl IntoIterator<Item = &'a ServiceConfig>) -> Watch {
        Watch::new(
            services
                .into_iter()
                .map(|s| (s.name.clone(), WatchParams::from(s))),
        )
    }

    /// One request from `client`, received at `now`: the reply to send.
    pub fn handle(&mut self, now: Time, client: &Client, request: &Request) -> Reply {
        if let Request::Cmd { .. } = request
            && !client.admin
        {
            return Reply::error(format_args!(
                "permission denied: cmd needs root or the admin group (uid {})",
                client.uid
            ));
        }
        let service = request.service();
        let Some(entry) = self.services.get_mut(service) else {
            return Reply::error(format_args!("unknown service {service}"));
        };
        let service = service.to_owned();
        let (uid, pid) = (client.uid, client.pid);
        let event = match request {
            Request::Open { .. } | Request::Ok { .. } => {
                let was_open = matches!(entry.state, WatchState::Open { .. });
                entry.state = WatchState::Open {
                    since: now,
                    deadline: now + entry.params.window(),
                };
                (!was_open).then_some(Event::AgentOpened { service, uid, pid })
            }
            Request::Err { reason, .. } => {
                entry.state = WatchState::Failed;
                let cause = FailCause::Reported {
                    reason: reason.clone(),
                };
                Some(Event::AgentFailed { service, cause })
            }
            Request::Close { .. } => {
                let was_closed = entry.state == WatchState::Closed;
                entry.state = WatchState::Closed;
                (!was_closed).then_some(Event::AgentClosed { service, uid, pid })
            }
            Request::Cmd { verb, .. } => Some(Event::Command {
                verb: *verb,
                service,
                requested_by: uid,
            }),
        };
        self.events.extend(event);
        Reply::Ok
    }

    /// The agent process hasvrd started for `service` exited (`how`: its
    /// exit status, for the log): a failure if the service was open.
    pub fn agent_exited(&mut self, service: &str, how: &str) {
        let Some(entry) = self.services.get_mut(service) else {
            return;
        };
        if let WatchState::Open { .. } = entry.state {
            entry.state = WatchState::Failed;
            self.events.push_back(Event::AgentFailed {
                service: service.to_owned(),
                cause: FailCause::Exited {
                    how: how.to_owned(),
                },
            });
        }
    }

    /// The service files were reloaded: watch `service` with `params`
    /// (a new service starts closed; a changed one keeps where it stands),
    /// or, with None, forget it (its requests are refused from now on).
    pub fn set_service(&mut self, service: &str, params: Option<WatchParams>) {
        match params {
            Some(params) => {
                self.services
                    .entry(service.to_owned())
                    .and_modify(|e| e.params = params)
                    .or_insert(Entry {
                        params,
                        state: WatchState::Closed,
                    });
            }
            None => {
                self.services.remove(service);
            }
        }
    }

    /// The daemon is stopping `service` (its agent will be killed): stop
    /// expecting heartbeats, without an event.
    pub fn disarm(&mut self, service: &str) {
        if let Some(entry) = self.services.get_mut(service) {
            entry.state = WatchState::Closed;
        }
    }

    /// The driver's timer fired at `now`: every open service whose deadline
    /// passed fails as silent (or, if the check is late, gets a new window).
    pub fn handle_timeout(&mut self, now: Time) {
        for (name, entry) in &mut self.services {
            let WatchState::Open { since, deadline } = entry.state else {
                continue;
            };
            if now < deadline {
                continue;
            }
            let late = now - deadline;
            if late > entry.params.check_interval {
                entry.state = WatchState::Open {
                    since: now,
                    deadline: now + entry.params.window(),
                };
                self.events.push_back(Event::CheckLate {
                    service: name.clone(),
                    late,
                });
            } else {
                entry.state = WatchState::Failed;
                self.events.push_back(Event::AgentFailed {
                    service: name.clone(),
                    cause: FailCause::Silent {
                        silence: now - since,
                    },
                });
            }
        }
    }

    /// When [`Watch::handle_timeout`] must next run: the earliest deadline
    /// of an open service.
    pub fn next_deadline(&self) -> Option<Time> {
        self.services
            .values()
            .filter_map(|e| match e.state {
                WatchState::Open { deadline, .. } => Some(deadline),
                _ => None,
            })
            .min()
    }

    /// The next event to act on.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Where a service's watch stands (None: not a known service).
    pub fn state(&self, service: &str) -> Option<WatchState> {
        self.services.get(service).map(|e| e.state)
    }

    /// The known services, by name.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.services.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_millis(200);

    fn ms(n: u64) -> Time {
        Duration::from_millis(n)
    }

    fn watch() -> Watch {
        let params = WatchParams {
            check_interval: INTERVAL,
            check_tko: 3,
        };
        let slow = WatchParams {
            check_interval: Duration::from_secs(1),
            check_tko: 2,
        };
        Watch::new([("www".to_owned(), params), ("db".to_owned(), slow)])
    }

    const AGENT: Client = Client {
        uid: 0,
        pid: Some(4242),
        admin: true,
    };
    const USER: Client = Client {
        uid: 1000,
        pid: Some(777),
        admin: false,
    };

    fn req(line: &str) -> Request {
        Request::parse(line.as_bytes()).unwrap()
    }

    fn send(w: &mut Watch, now: Time, line: &str) -> Reply {
        w.handle(now, &AGENT, &req(line))
    }

    fn events(w: &mut Watch) -> Vec<Event> {
        std::iter::from_fn(|| w.poll_event()).collect()
    }

    fn opened(service: &str) -> Event {
        Event::AgentOpened {
            service: service.into(),
            uid: AGENT.uid,
            pid: AGENT.pid,
        }
    }

    fn failed(service: &str, cause: FailCause) -> Event {
        Event::AgentFailed {
            service: service.into(),
            cause,
        }
    }

    fn silent(ms_: u64) -> FailCause {
        FailCause::Silent { silence: ms(ms_) }
    }

    /// Runs the timer as a driver would: at each deadline up to `until`.
    fn run_until(w: &mut Watch, until: Time) {
        while let Some(d) = w.next_deadline().filter(|&d| d <= until) {
            w.handle_timeout(d);
        }
    }

    #[test]
    fn nothing_is_expected_before_open() {
        let mut w = watch();
        assert_eq!(w.next_deadline(), None);
        run_until(&mut w, ms(60_000));
        assert_eq!(events(&mut w), []);
        assert_eq!(w.state("www"), Some(WatchState::Closed));
    }

    #[test]
    fn open_then_silence_fails_after_the_window() {
        let mut w = watch();
        assert_eq!(send(&mut w, ms(1000), "open www"), Reply::Ok);
        assert_eq!(events(&mut w), [opened("www")]);
        assert_eq!(w.next_deadline(), Some(ms(1600)));
        w.handle_timeout(ms(1599));
        assert_eq!(events(&mut w), [], "not before the deadline");
        w.handle_timeout(ms(1600));
        assert_eq!(events(&mut w), [failed("www", silent(600))]);
        assert_eq!(w.state("www"), Some(WatchState::Failed));
        assert_eq!(w.next_deadline(), None, "reported once");
    }

    #[test]
    fn heartbeats_within_the_window_keep_it_open() {
        let mut w = watch();
        send(&mut w, ms(0), "open www");
        for t in (200..=5000).step_by(200) {
            run_until(&mut w, ms(t));
            assert_eq!(send(&mut w, ms(t), "ok www"), Reply::Ok);
        }
        assert_eq!(events(&mut w), [opened("www")]);
        // Heartbeats as slow as the window itself still do.
        for t in (5600..=8000).step_by(600) {
            send(&mut w, ms(t), "ok www");
            run_until(&mut w, ms(t + 599));
        }
        assert_eq!(events(&mut w), []);
        // Then they stop: silent one window after the last.
        run_until(&mut w, ms(20_000));
        assert_eq!(events(&mut w), [failed("www", silent(600))]);
    }

    #[test]
    fn a_heartbeat_handed_in_after_the_deadline_still_counts() {
        let mut w = watch();
        send(&mut w, ms(0), "open www");
        send(&mut w, ms(650), "ok www");
        w.handle_timeout(ms(650));
        assert_eq!(events(&mut w), [opened("www")]);
        assert_eq!(w.next_deadline(), Some(ms(1250)));
    }

    #[test]
    fn each_service_has_its_own_window() {
        let mut w = watch();
        send(&mut w, ms(0), "open www");
        send(&mut w, ms(0), "open db");
        events(&mut w);
        assert_eq!(w.next_deadline(), Some(ms(600)));
        run_until(&mut w, ms(1999));
        assert_eq!(events(&mut w), [failed("www", silent(600))]);
        assert_eq!(w.next_deadline(), Some(ms(2000)));
        run_until(&mut w, ms(2000));
        assert_eq!(events(&mut w), [failed("db", silent(2000))]);
    }

    #[test]
    fn err_fails_with_the_reason_every_time() {
        let mut w = watch();
        send(&mut w, ms(0), "open www");
        events(&mut w);
        assert_eq!(
            send(&mut w, ms(100), "err www httpd answers 503"),
            Reply::Ok
        );
        let cause = FailCause::Reported {
            reason: "httpd answers 503".into(),
        };
        assert_eq!(
            cause.to_string(),
            "the agent reported an error: httpd answers 503"
        );
        assert_eq!(events(&mut w), [failed("www", cause.clone())]);
        assert_eq!(w.next_deadline(), None);
        send(&mut w, ms(1100), "err www httpd answers 503");
        assert_eq!(events(&mut w), [failed("www", cause)]);
        // An err without open (SureHA's shell template never opens).
        send(&mut w, ms(1100), "err db");
        let bare = FailCause::Reported { reason: "".into() };
        assert_eq!(bare.to_string(), "the agent reported an error");
        assert_eq!(events(&mut w), [failed("db", bare)]);
    }

    #[test]
    fn ok_opens_a_closed_or_failed_service() {
        let mut w = watch();
        send(&mut w, ms(0), "ok www");
        assert_eq!(events(&mut w), [opened("www")]);
        send(&mut w, ms(100), "err www");
        events(&mut w);
        send(&mut w, ms(200), "ok www");
        assert_eq!(events(&mut w), [opened("www")], "heartbeats resumed");
        assert_eq!(w.next_deadline(), Some(ms(800)));
        send(&mut w, ms(300), "open www");
        assert_eq!(events(&mut w), [], "already open: the window restarts");
        assert_eq!(w.next_deadline(), Some(ms(900)));
    }

    #[test]
    fn close_stops_expecting() {
        let mut w = watch();
        send(&mut w, ms(0), "open www");
        events(&mut w);
        assert_eq!(send(&mut w, ms(300), "close www"), Reply::Ok);
        assert_eq!(
            events(&mut w),
            [Event::AgentClosed {
                service: "www".into(),
                uid: 0,
                pid: Some(4242)
            }]
        );
        assert_eq!(w.next_deadline(), None);
        run_until(&mut w, ms(60_000));
        w.agent_exited("www", "exit status 0");
        assert_eq!(events(&mut w), [], "a clean exit after close");
        send(&mut w, ms(60_000), "close www");
        assert_eq!(events(&mut w), [], "closing twice says nothing");
    }

    #[test]
    fn an_agent_that_exits_while_open_failed() {
        let mut w = watch();
        w.agent_exited("www", "exit status 1");
        assert_eq!(events(&mut w), [], "not open yet");
        send(&mut w, ms(0), "open www");
        events(&mut w);
        w.agent_exited("www", "killed by signal 9");
        let cause = FailCause::Exited {
            how: "killed by signal 9".into(),
        };
        assert_eq!(
            cause.to_string(),
            "the agent exited while open (killed by signal 9)"
        );
        assert_eq!(events(&mut w), [failed("www", cause)]);
        assert_eq!(w.next_deadline(), None);
        w.agent_exited("nosuch", "exit status 1");
        assert_eq!(events(&mut w), []);
    }

    #[test]
    fn disarm_closes_without_an_event() {
        let mut w = watch();
        send(&mut w, ms(0), "open www");
        events(&mut w);
        w.disarm("www");
        w.agent_exited("www", "killed by signal 15");
        run_until(&mut w, ms(10_000));
        assert_eq!(events(&mut w), []);
        assert_eq!(w.state("www"), Some(WatchState::Closed));
    }

    #[test]
    fn a_late_check_restarts_the_window() {
        let mut w = watch();
        send(&mut w, ms(0), "open www");
        events(&mut w);
        // The timer should have fired at 600 ms; hasvrd was stopped.
        w.handle_timeout(ms(5000));
        assert_eq!(
            events(&mut w),
            [Event::CheckLate {
                service: "www".into(),
                late: ms(4400)
            }]
        );
        assert_eq!(w.next_deadline(), Some(ms(5600)));
        // A dead agent is still found, one window later.
        run_until(&mut w, ms(6000));
        assert_eq!(events(&mut w), [failed("www", silent(600))]);
        // Slightly late (within one interval) is not a stall.
        send(&mut w, ms(7000), "open www");
        events(&mut w);
        w.handle_timeout(ms(7800));
        assert_eq!(events(&mut w), [failed("www", silent(800))]);
    }

    #[test]
    fn unknown_services_are_refused() {
        let mut w = watch();
        for line in [
            "open mail",
            "ok mail",
            "err mail x",
            "close mail",
            "cmd FAILOVER mail",
        ] {
            assert_eq!(
                send(&mut w, ms(0), line),
                Reply::error("unknown service mail"),
                "{line}"
            );
        }
        assert_eq!(events(&mut w), []);
        assert_eq!(w.state("mail"), None);
    }

    #[test]
    fn commands_need_an_admin() {
        let mut w = watch();
        assert_eq!(
            w.handle(ms(0), &USER, &req("cmd FAILOVER www")),
            Reply::error("permission denied: cmd needs root or the admin group (uid 1000)")
        );
        assert_eq!(
            w.handle(ms(0), &USER, &req("cmd FAILOVER mail")),
            Reply::error("permission denied: cmd needs root or the admin group (uid 1000)"),
            "refused before the service is looked up"
        );
        assert_eq!(events(&mut w), []);
        let admin = Client {
            admin: true,
            ..USER
        };
        assert_eq!(w.handle(ms(0), &admin, &req("cmd bringout www")), Reply::Ok);
        assert_eq!(
            events(&mut w),
            [Event::Command {
                verb: Verb::BringOut,
                service: "www".into(),
                requested_by: 1000
            }]
        );
        assert_eq!(
            w.state("www"),
            Some(WatchState::Closed),
            "a command opens nothing"
        );
    }

    #[test]
    fn heartbeats_from_any_user() {
        let mut w = watch();
        assert_eq!(w.handle(ms(0), &USER, &req("open www")), Reply::Ok);
        assert_eq!(w.handle(ms(100), &USER, &req("ok www")), Reply::Ok);
        assert_eq!(
            events(&mut w),
            [Event::AgentOpened {
                service: "www".into(),
                uid: 1000,
                pid: Some(777)
            }]
        );
    }

    #[test]
    fn window_is_interval_times_tko() {
        let p = WatchParams {
            check_interval: ms(250),
            check_tko: 4,
        };
        assert_eq!(p.window(), ms(1000));
        let w = watch();
        let names: Vec<&str> = w.services().collect();
        assert_eq!(names, ["db", "www"]);
    }

    #[test]
    fn a_reload_adds_changes_and_forgets_services() {
        let mut w = watch();
        let p = WatchParams {
            check_interval: ms(100),
            check_tko: 1,
        };
        assert!(matches!(send(&mut w, ms(0), "open new"), Reply::Error(_)));
        w.set_service("new", Some(p));
        assert_eq!(w.state("new"), Some(WatchState::Closed));
        assert_eq!(send(&mut w, ms(0), "open new"), Reply::Ok);
        send(&mut w, ms(0), "open www");
        events(&mut w);
        w.set_service("www", Some(p));
        assert!(matches!(w.state("www"), Some(WatchState::Open { .. })));
        assert_eq!(send(&mut w, ms(50), "ok www"), Reply::Ok);
        assert_eq!(w.next_deadline(), Some(ms(100)), "the new window");
        w.set_service("new", None);
        assert_eq!(w.state("new"), None);
        assert!(matches!(send(&mut w, ms(60), "ok new"), Reply::Error(_)));
    }
}
