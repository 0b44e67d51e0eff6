//! The model's job queue, refresh timing and reactions to the client
//! thread's events, on a virtual clock.

use super::*;
use haschema::ctl::{ServiceNode, ServiceStatus};

fn service(name: &str, state: &str) -> ServiceStatus {
    ServiceStatus {
        name: name.into(),
        owner: Some("alpha".into()),
        nodes: vec![ServiceNode {
            node: "alpha".into(),
            state: state.into(),
            can_host: true,
        }],
        failures: 0,
        fault: None,
    }
}

/// A model logged in on `alpha:7405` at `t0`, its first job (the connect)
/// answered.
fn connected(t0: Instant) -> Model {
    let mut m = Model::new();
    m.connect("alpha:7405".into(), "pw".into(), None);
    assert!(matches!(m.next_job(t0), Some(Job::Connect { .. })));
    m.apply(
        Event::Connected {
            server: "alpha:7405".into(),
            first_use: None,
        },
        t0,
    );
    m
}

fn refreshed(services: Vec<ServiceStatus>) -> Event {
    Event::Refreshed {
        status: Err("no status in this test".into()),
        services: Ok(services),
    }
}

#[test]
fn one_request_at_a_time_and_a_refresh_every_two_seconds() {
    let t0 = Instant::now();
    let mut m = connected(t0);
    assert_eq!(m.next_job(t0), Some(Job::Refresh));
    assert!(m.busy());
    // Nothing more while the refresh is out, even a due one.
    m.selected = Some("www".into());
    m.command(ServiceOp::BringOut);
    assert_eq!(m.next_job(t0 + REFRESH * 3), None);
    m.apply(refreshed(vec![service("www", "ACTIVE")]), t0);
    // The queued command goes before the next refresh.
    let Some(Job::Command { request, .. }) = m.next_job(t0 + REFRESH * 3) else {
        panic!("no command")
    };
    assert_eq!(
        request,
        Request::Service {
            op: ServiceOp::BringOut,
            service: "www".into()
        }
    );
    // Answered: a refresh at once.
    m.apply(
        Event::Done {
            what: "bring-out www".into(),
            result: Ok("brought out".into()),
        },
        t0 + REFRESH * 3,
    );
    assert_eq!(m.next_job(t0 + REFRESH * 3), Some(Job::Refresh));
    m.apply(refreshed(vec![service("www", "OUTACT")]), t0 + REFRESH * 3);
    // Then not before REFRESH has passed.
    assert_eq!(m.wait(t0 + REFRESH * 3), Some(REFRESH));
    assert_eq!(
        m.next_job(t0 + REFRESH * 4 - Duration::from_millis(1)),
        None
    );
    assert_eq!(m.next_job(t0 + REFRESH * 4), Some(Job::Refresh));
    let texts: Vec<_> = m
        .messages
        .iter()
        .map(|m| (m.level, m.text.as_str()))
        .collect();
    assert!(texts.contains(&(Level::Info, "bring-out www: brought out")));
    assert_eq!(m.services[0].nodes[0].state, "OUTACT");
}

#[test]
fn the_first_service_is_selected_and_a_gone_one_unselected() {
    let t0 = Instant::now();
    let mut m = connected(t0);
    m.next_job(t0);
    m.apply(
        refreshed(vec![service("db", "STANDBY"), service("www", "ACTIVE")]),
        t0,
    );
    assert_eq!(m.selected.as_deref(), Some("db"));
    m.selected = Some("www".into());
    m.next_job(t0 + REFRESH);
    m.apply(
        refreshed(vec![service("db", "STANDBY"), service("www", "ACTIVE")]),
        t0,
    );
    assert_eq!(m.selected.as_deref(), Some("www"));
    m.next_job(t0 + REFRESH * 2);
    m.apply(refreshed(vec![service("db", "STANDBY")]), t0);
    assert_eq!(m.selected.as_deref(), Some("db"));
}

#[test]
fn an_unknown_certificate_waits_for_the_operator() {
    let t0 = Instant::now();
    let mut m = Model::new();
    m.connect("alpha:7405".into(), "pw".into(), None);
    m.next_job(t0);
    m.apply(
        Event::NotTrusted {
            server: "alpha:7405".into(),
            fingerprint: "AB:CD".into(),
        },
        t0,
    );
    assert_eq!(
        m.link,
        Link::Trust {
            server: "alpha:7405".into(),
            fingerprint: "AB:CD".into()
        }
    );
    // Nothing is sent meanwhile.
    assert_eq!(m.next_job(t0 + REFRESH), None);
    m.decline();
    assert_eq!(m.link, Link::Disconnected);
    assert_eq!(m.messages.back().unwrap().level, Level::Warning);
}

#[test]
fn a_failed_login_is_an_error_and_no_refresh() {
    let t0 = Instant::now();
    let mut m = Model::new();
    m.connect("alpha:7405".into(), "bad".into(), None);
    m.next_job(t0);
    m.apply(
        Event::ConnectFailed("alpha:7405 refused: wrong password".into()),
        t0,
    );
    assert_eq!(m.link, Link::Disconnected);
    assert_eq!(
        m.login_error.as_deref(),
        Some("alpha:7405 refused: wrong password")
    );
    assert_eq!(m.messages.back().unwrap().level, Level::Error);
    assert_eq!(m.next_job(t0 + REFRESH * 10), None);
    assert_eq!(m.wait(t0), None);
}

#[test]
fn lock_needs_a_good_password_and_disconnect_drops_the_queue() {
    let t0 = Instant::now();
    let mut m = connected(t0);
    m.lock();
    assert!(m.locked);
    m.unlock("bad".into());
    assert_eq!(
        m.next_job(t0),
        Some(Job::Unlock {
            password: "bad".into()
        })
    );
    m.apply(Event::Unlocked(Err("wrong password".into())), t0);
    assert!(m.locked);
    m.unlock("pw".into());
    m.next_job(t0);
    m.apply(Event::Unlocked(Ok(())), t0);
    assert!(!m.locked);
    m.selected = Some("www".into());
    m.command(ServiceOp::FailOver);
    m.disconnect();
    assert_eq!(m.next_job(t0), Some(Job::Disconnect));
    m.apply(Event::Disconnected, t0);
    assert_eq!(m.next_job(t0 + REFRESH * 10), None);
    // Not connected: neither commands nor the lock.
    m.command(ServiceOp::BringIn);
    m.lock();
    assert!(!m.locked);
    assert_eq!(m.next_job(t0), None);
}

#[test]
fn the_message_bar_keeps_the_last_lines_and_no_repeats() {
    let mut m = Model::new();
    for i in 0..MAX_MESSAGES + 5 {
        m.say(Level::Info, format!("line {i}"));
    }
    assert_eq!(m.messages.len(), MAX_MESSAGES);
    assert_eq!(m.messages.front().unwrap().text, "line 5");
    m.say_once(Level::Warning, "services: down".into());
    m.say_once(Level::Warning, "services: down".into());
    assert_eq!(m.messages.len(), MAX_MESSAGES);
    assert_eq!(m.messages.back().unwrap().text, "services: down");
}

#[test]
fn a_login_given_up_meanwhile_is_closed() {
    let t0 = Instant::now();
    let mut m = Model::new();
    m.connect("alpha:7405".into(), "pw".into(), None);
    m.next_job(t0);
    m.disconnect();
    m.apply(
        Event::Connected {
            server: "alpha:7405".into(),
            first_use: None,
        },
        t0,
    );
    assert_eq!(m.link, Link::Disconnected);
    assert_eq!(m.next_job(t0), Some(Job::Disconnect));
}
