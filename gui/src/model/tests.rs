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
            failures: 0,
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
    // First the cluster config and the failovers are read.
    let read = Job::Read {
        name: CLUSTER_DOC.into(),
    };
    assert_eq!(m.next_job(t0), Some(read));
    m.apply(
        Event::Read {
            name: CLUSTER_DOC.into(),
            result: Ok((version(), None)),
        },
        t0,
    );
    assert_eq!(m.next_job(t0), Some(Job::Failovers));
    m.apply(Event::Failovers(Ok(Vec::new())), t0);
    m
}

fn version() -> ConfigVersion {
    "0.4.1".parse().unwrap()
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
            service: "www".into(),
            node: None,
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
    // The service changed: the failovers are read again.
    assert_eq!(m.next_job(t0 + REFRESH * 3), Some(Job::Failovers));
    m.apply(Event::Failovers(Ok(Vec::new())), t0 + REFRESH * 3);
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

#[test]
fn a_change_is_sent_once_and_its_outcome_said_and_the_config_read_again() {
    let t0 = Instant::now();
    let mut m = connected(t0);
    m.put(
        CLUSTER_DOC.into(),
        Some(version()),
        "text".into(),
        "create network sock".into(),
    );
    let Some(Job::Put { request, .. }) = m.next_job(t0) else {
        panic!("no put")
    };
    assert_eq!(
        request,
        Request::ConfigPut {
            name: CLUSTER_DOC.into(),
            base: Some(version()),
            content: Some("text".into()),
            force_local: false,
        }
    );
    m.apply(
        Event::Committed {
            what: "create network sock".into(),
            result: Err("changed meanwhile: now at 0.5.2".into()),
        },
        t0,
    );
    let last = m.messages.back().unwrap();
    assert_eq!(last.level, Level::Error);
    assert_eq!(
        last.text,
        "create network sock refused: changed meanwhile: now at 0.5.2"
    );
    let read = Job::Read {
        name: CLUSTER_DOC.into(),
    };
    assert_eq!(m.next_job(t0), Some(read.clone()));
    m.apply(
        Event::Read {
            name: CLUSTER_DOC.into(),
            result: Ok((version(), Some("[cluster]".into()))),
        },
        t0,
    );
    // Read, but not valid: the dialogs say so.
    let doc = m.cluster.as_ref().unwrap();
    assert!(doc.config.is_err());
    assert_eq!(m.next_job(t0), Some(Job::Refresh));
    m.apply(refreshed(Vec::new()), t0);
    m.selected = Some("www".into());
    m.remove_service();
    assert_eq!(
        m.next_job(t0),
        Some(Job::Remove {
            name: "services/www.toml".into(),
            what: "remove service www".into()
        })
    );
    m.apply(
        Event::Committed {
            what: "remove service www".into(),
            result: Ok("0.6.1".parse().unwrap()),
        },
        t0,
    );
    let last = m.messages.back().unwrap();
    assert_eq!(
        (last.level, last.text.as_str()),
        (
            Level::Info,
            "remove service www: committed on every node, version 0.6.1"
        )
    );
    assert_eq!(m.next_job(t0), Some(read));
}

#[test]
fn failovers_are_read_again_only_when_the_services_change() {
    let t0 = Instant::now();
    let mut m = connected(t0);
    let mut t = t0;
    let mut reads = 0;
    for state in ["ACTIVE", "ACTIVE", "STANDBY", "STANDBY"] {
        let mut job = m.next_job(t);
        if job == Some(Job::Failovers) {
            reads += 1;
            m.apply(Event::Failovers(Ok(Vec::new())), t);
            job = m.next_job(t);
        }
        assert_eq!(job, Some(Job::Refresh));
        m.apply(refreshed(vec![service("www", state)]), t);
        t += REFRESH;
    }
    // One read for the one change, none for the same report again.
    assert_eq!(reads, 1);
    assert_eq!(m.next_job(t), Some(Job::Refresh));
}
