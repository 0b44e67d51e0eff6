//! The dialogs that change the configuration, the question before
//! Service > Stop and Remove, and the failover timeline, on a console drawn
//! from fixed data (no cluster, `common`): a bad value shows the daemons'
//! parser's error in the dialog and sends nothing; a good one is sent;
//! Stop and Remove send nothing until the operator says yes; the timeline
//! draws each failover's phases in their colours, to scale; the status
//! panel warns when the node's services are withdrawn.

mod common;

use common::{Ui, connected, failovers};
use eframe::egui::{Color32, Rect, Shape, epaint::ClippedShape};
use egui_kittest::kittest::Queryable;
use hagui::timeline::phase_colour;
use std::time::Duration;

const SIZE: [f32; 2] = [1000.0, 900.0];

#[track_caller]
fn click(h: &mut Ui, label: &str) {
    h.get_by_label(label).click();
    h.run_ok();
}

#[track_caller]
fn type_into(h: &mut Ui, label: &str, text: &str) {
    h.get_by_label(label).set_text_value_accesskit(text);
    h.run_ok();
}

/// A label whose text contains all of `parts`.
fn label_with(h: &Ui, parts: &[&str]) -> Option<String> {
    h.query_all_by(|n| {
        n.value()
            .is_some_and(|v| parts.iter().all(|p| v.contains(p)))
    })
    .next()
    .and_then(|n| n.value())
}

/// Draws a few frames, then checks that nothing reached the client thread
/// (it would have answered "not connected" and the console disconnected).
#[track_caller]
fn nothing_sent(h: &mut Ui) {
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    let m = h.state().model();
    assert!(
        m.connected() && !m.busy() && m.messages.is_empty(),
        "something was sent: {:?}",
        m.messages
    );
}

/// Waits (bounded) until the console got the client thread's answer to
/// something it sent.
#[track_caller]
fn wait_sent(h: &mut Ui) {
    for _ in 0..100 {
        if !h.state().model().connected() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    let m = h.state().model();
    assert!(
        m.messages.iter().any(|l| l.text.contains("not connected")),
        "nothing was sent: {:?}",
        m.messages
    );
}

#[test]
fn a_socket_network_with_a_bad_maxmiss_shows_the_parsers_error_and_sends_nothing() {
    let mut h = connected(SIZE);
    click(&mut h, "PrivateNet");
    click(&mut h, "Create Socket");
    assert!(h.query_by_label("Port (1-65535)").is_some());
    type_into(&mut h, "Name", "sock");
    type_into(&mut h, "IP address of alpha", "192.168.30.1");
    type_into(&mut h, "IP address of beta", "192.168.30.2");
    type_into(&mut h, "Heartbeat maxmiss (2-100)", "1000");
    click(&mut h, "OK");
    let error = label_with(&h, &["cluster.toml:", "network[3].maxmiss"]);
    assert!(error.is_some(), "no parser error shown");
    nothing_sent(&mut h);
    type_into(&mut h, "Heartbeat maxmiss (2-100)", "5");
    click(&mut h, "OK");
    assert!(h.query_by_label("Port (1-65535)").is_none(), "still open");
    wait_sent(&mut h);
}

#[test]
fn a_service_with_too_many_restarts_shows_the_parsers_error_and_sends_nothing() {
    let mut h = connected(SIZE);
    click(&mut h, "Service");
    click(&mut h, "Create");
    type_into(&mut h, "Service name", "app");
    type_into(&mut h, "Restart times (0-5)", "9");
    click(&mut h, "OK");
    let error = label_with(&h, &["services/app.toml:", "restart_times"]);
    assert!(error.is_some(), "no parser error shown");
    nothing_sent(&mut h);
    click(&mut h, "Cancel");
    assert!(h.query_by_label("Service name").is_none());
    nothing_sent(&mut h);
}

#[test]
fn removing_a_service_asks_first() {
    let mut h = connected(SIZE);
    click(&mut h, "Remove");
    click(&mut h, "Cancel");
    nothing_sent(&mut h);
    click(&mut h, "Remove");
    click(&mut h, "Yes, remove");
    wait_sent(&mut h);
}

#[test]
fn stopping_a_service_asks_first_and_says_what_it_does() {
    let mut h = connected(SIZE);
    click(&mut h, "Service");
    click(&mut h, "Stop");
    let question = label_with(
        &h,
        &[
            "stops www on every node",
            "stays stopped (OUTSTB) until Bring In",
        ],
    );
    assert!(question.is_some(), "no question");
    click(&mut h, "Cancel");
    assert!(h.query_by_label("Yes, stop").is_none(), "still open");
    nothing_sent(&mut h);
    click(&mut h, "Service");
    click(&mut h, "Stop");
    click(&mut h, "Yes, stop");
    assert!(h.query_by_label("Yes, stop").is_none(), "still open");
    wait_sent(&mut h);
}

/// The filled rectangles painted inside `area`, with their colours.
fn rects_in(h: &Ui, area: Rect) -> Vec<(Rect, Color32)> {
    h.output()
        .shapes
        .iter()
        .filter_map(|ClippedShape { shape, .. }| match shape {
            Shape::Rect(r) if area.expand(0.5).contains_rect(r.rect) => Some((r.rect, r.fill)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_timeline_draws_each_failover_to_scale() {
    let h = connected(SIZE);
    let events = failovers();
    let mut widths = Vec::new();
    for e in &events {
        let bar = h.get_by_label(&e.summary()).rect();
        let rects = rects_in(&h, bar);
        let colours: Vec<Color32> = rects.iter().map(|(_, c)| *c).collect();
        let expected: Vec<Color32> = e.phases.iter().map(|p| phase_colour(&p.name)).collect();
        assert_eq!(colours, expected, "{}", e.summary());
        widths.push(rects.iter().map(|(r, _)| r.width()).sum::<f32>());
    }
    // 3300 ms and 850 ms on one scale.
    let ratio = widths[0] / widths[1];
    assert!((ratio - 3300.0 / 850.0).abs() < 0.05, "{widths:?}");
    assert!(label_with(&h, &["www", "beta", "alpha lost", "3300 ms"]).is_some());
}

#[test]
fn the_panel_says_when_the_nodes_services_are_withdrawn() {
    let mut h = connected(SIZE);
    assert_eq!(label_with(&h, &["SERVICES WITHDRAWN"]), None);
    let why = "this node lost quorum: its view 5.alpha has 1 of the 3 nodes (alpha)";
    if let Some(status) = h.state_mut().model_mut().status.as_mut() {
        status.withdrawn = Some(why.to_owned());
    }
    h.run_ok();
    let shown = label_with(&h, &["SERVICES WITHDRAWN on alpha", why]);
    assert!(shown.is_some(), "no warning of the withdrawn services");
}
