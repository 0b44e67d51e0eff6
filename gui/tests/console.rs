//! The console (egui_kittest, no renderer) against a live two-node cluster
//! in network namespaces: hamond and hasvrd on alpha and beta with the web
//! service `www` (`hatests::web`), alpha's admin endpoint on lan1. The
//! console's client thread is started in beta's namespace, so it reaches
//! alpha as a remote console does. The operator opens Connect, types a
//! wrong password, accepts the certificate's fingerprint and sees the
//! refusal; types the right one and sees both servers and the service
//! (gold on alpha, green on beta); presses BringOut and sees it turn grey
//! on alpha, BringIn and sees it gold again; stops it from Service > Stop
//! (asked first) and sees it grey (OUTSTB) on both and held by nobody,
//! then brings it in again; creates a socket private network from
//! PrivateNet > Create Socket (beta's hamond then holds it in its
//! cluster.toml; both hamonds restart to load it and the console logs in
//! again by itself) and a service from Service > Create (it appears in
//! the status panel on both servers); removes that service; locks the
//! console (a wrong password keeps it locked); and after its pin is
//! changed, is refused with the client's explanation. Colours are read
//! from the shapes egui painted for the service's label.

use eframe::egui::{Color32, Rect, Shape, epaint::ClippedShape};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use hagui::Console;
use hagui::panel::{GOLD, GREEN, GREY};
use haschema::config::ClusterConfig;
use haschema::ctl::{Request, Response};
use hatests::web::{NODES, SERVICE, WebService, WebSpec};
use hatests::{ClusterSpec, LAN1, LAN2, require_root};
use std::time::{Duration, Instant};

const PORT: u16 = 7406;
const PASSWORD: &str = "correct horse battery";
/// Longest wait for what the console shows.
const WAIT: Duration = Duration::from_secs(40);
/// Time between two frames while waiting.
const FRAME: Duration = Duration::from_millis(100);

type Ui = Harness<'static, Console>;

/// Draws frames until `ok` holds (at most [`WAIT`]); panics with the
/// console's messages otherwise.
#[track_caller]
fn wait_for(h: &mut Ui, what: &str, ok: impl Fn(&Ui) -> bool) {
    let end = Instant::now() + WAIT;
    for _ in 0..(WAIT.as_millis() / FRAME.as_millis()) {
        h.step();
        if ok(h) {
            return;
        }
        if Instant::now() > end {
            break;
        }
        std::thread::sleep(FRAME);
    }
    panic!(
        "the console did not show {what} within {WAIT:?}; its messages: {:#?}",
        h.state().model().messages
    );
}

/// Whether a widget with exactly this accessible label is shown.
fn shows(h: &Ui, label: &str) -> bool {
    h.query_by_label(label).is_some()
}

/// Every shape, nested ones included.
fn flatten(shape: &Shape, out: &mut Vec<Shape>) {
    match shape {
        Shape::Vec(shapes) => shapes.iter().for_each(|s| flatten(s, out)),
        other => out.push(other.clone()),
    }
}

/// The colours of the text painted inside the widget labelled `label`.
fn text_colours(h: &Ui, label: &str) -> Vec<Color32> {
    let area: Rect = h.get_by_label(label).rect();
    let mut shapes = Vec::new();
    for ClippedShape { shape, .. } in &h.output().shapes {
        flatten(shape, &mut shapes);
    }
    shapes
        .iter()
        .filter_map(|s| match s {
            Shape::Text(t) => Some(t),
            _ => None,
        })
        .filter(|t| area.contains(Rect::from_min_size(t.pos, t.galley.size()).center()))
        .flat_map(|t| t.galley.job.sections.iter().map(|s| s.format.color))
        .collect()
}

/// Waits until `node` shows the service in `state`, painted in `colour`.
#[track_caller]
fn wait_service(h: &mut Ui, node: &str, state: &str, colour: Color32) {
    let label = format!("{SERVICE} on {node}: {state}");
    wait_for(h, &label, |h| shows(h, &label));
    let colours = text_colours(h, &label);
    assert!(
        colours.contains(&colour),
        "{label}: painted in {colours:?}, not {colour:?}"
    );
}

/// Clicks the widget labelled `label` and draws the result.
#[track_caller]
fn click(h: &mut Ui, label: &str) {
    h.get_by_label(label).click();
    h.run_ok();
}

/// Replaces the text of the field labelled `label`.
#[track_caller]
fn type_into(h: &mut Ui, label: &str, text: &str) {
    h.get_by_label(label).set_text_value_accesskit(text);
    h.run_ok();
}

#[test]
fn console_logs_in_and_brings_a_service_out_and_in() {
    if !require_root() {
        return;
    }
    let web = WebService::start_with(
        "gui",
        WebSpec {
            hamond_runs_hasvrd: true,
            cluster: Some(ClusterSpec {
                extra_config: format!("[admin]\nlisten = \"0.0.0.0:{PORT}\""),
                ..ClusterSpec::with_nodes(&NODES)
            }),
            ..WebSpec::default()
        },
    );
    let c = web.cluster();
    web.wait_state("alpha", "ACTIVE");
    web.wait_state("beta", "STANDBY");
    let config = ClusterConfig::load(c.config_path()).unwrap_or_else(|e| panic!("{e}"));
    let admin = config.admin.expect("the [admin] table");
    hamond::admin::password::set(&admin.password_file, PASSWORD).unwrap_or_else(|e| panic!("{e}"));
    c.wait_for_log("alpha", "admin: serving on", Duration::from_secs(10));

    let known_hosts = c.dir().join("gui_known_hosts");
    let console = c
        .ns("beta")
        .enter(|| Console::new(known_hosts.clone()))
        .expect("enter beta's namespace")
        .expect("the client thread starts");
    let mut h = Harness::builder()
        .with_size([1000.0, 700.0])
        .build_ui_state(|ui, console: &mut Console| console.ui(ui), console);
    h.run_ok();
    assert!(shows(&h, "not connected: Tools > Connect"));

    // A wrong password: the certificate is shown first and accepted, then
    // the login is refused and the refusal shown.
    click(&mut h, "Connect");
    let server = format!("{}:{PORT}", c.addr("alpha", LAN1).ip());
    type_into(&mut h, "Server (host:port)", &server);
    type_into(&mut h, "Password", "wrong password");
    click(&mut h, "Log in");
    wait_for(&mut h, "the new certificate", |h| {
        shows(h, "Accept certificate")
    });
    click(&mut h, "Accept certificate");
    wait_for(&mut h, "the refusal", |h| {
        h.query_all_by(|n| {
            // A label's text is its AccessKit value.
            n.value()
                .is_some_and(|l| l.starts_with("ERROR: ") && l.contains("wrong password"))
        })
        .next()
        .is_some()
    });
    assert!(!h.state().model().connected());

    // The right one: no certificate question any more (pinned).
    type_into(&mut h, "Password", PASSWORD);
    click(&mut h, "Log in");
    wait_for(&mut h, "both servers", |h| {
        shows(h, "alpha") && shows(h, "beta")
    });
    assert!(h.query_by_label("Accept certificate").is_none());
    wait_service(&mut h, "alpha", "ACTIVE", GOLD);
    wait_service(&mut h, "beta", "STANDBY", GREEN);

    click(&mut h, "BringOut");
    wait_service(&mut h, "alpha", "OUTACT", GREY);
    web.wait_state("alpha", "OUTACT");

    click(&mut h, "BringIn");
    wait_service(&mut h, "alpha", "ACTIVE", GOLD);
    web.wait_state("alpha", "ACTIVE");

    // Stop: asked first, then OUTSTB everywhere until BringIn.
    click(&mut h, "Service");
    click(&mut h, "Stop");
    click(&mut h, "Yes, stop");
    for node in NODES {
        wait_service(&mut h, node, "OUTSTB", GREY);
        web.wait_state(node, "OUTSTB");
    }
    wait_for(&mut h, "nobody holding the stopped service", |h| {
        h.state()
            .model()
            .services
            .iter()
            .any(|s| s.name == SERVICE && s.owner.is_none())
    });
    click(&mut h, "BringIn");
    wait_service(&mut h, "alpha", "ACTIVE", GOLD);
    wait_service(&mut h, "beta", "STANDBY", GREEN);

    create_a_network(&mut h, &web);
    create_and_remove_a_service(&mut h);

    // Lock: only the password field is left until the password is typed.
    click(&mut h, "Lock");
    assert!(!shows(&h, "BringIn") && !shows(&h, "alpha"));
    type_into(&mut h, "Password", "wrong password");
    click(&mut h, "Unlock");
    wait_for(&mut h, "the unlock refusal", |h| {
        !h.state().model().unlocking && h.state().model().login_error.is_some()
    });
    assert!(h.state().model().locked && !shows(&h, "BringIn"));
    type_into(&mut h, "Password", PASSWORD);
    click(&mut h, "Unlock");
    wait_for(&mut h, "the console again", |h| shows(h, "BringIn"));

    // A changed certificate is refused with the client's explanation.
    click(&mut h, "Disconnect");
    std::fs::write(&known_hosts, format!("{server} 00:11:22\n")).unwrap();
    click(&mut h, "Connect");
    type_into(&mut h, "Password", PASSWORD);
    click(&mut h, "Log in");
    wait_for(&mut h, "the changed certificate", |h| {
        h.state()
            .model()
            .login_error
            .as_ref()
            .is_some_and(|e| e.contains("has CHANGED"))
    });
    assert!(!h.state().model().connected());
    let beta_ip = c.addr("beta", LAN1).ip().to_string();
    for op in ["stop", "bring-in"] {
        let needle = format!("admin: service {op} {SERVICE} by admin from {beta_ip}:");
        c.wait_for_log("alpha", &needle, Duration::from_secs(5));
        c.assert_logged("alpha", &[&needle, ": done: "]);
    }
}

/// The name of the network the console creates.
const NEW_NET: &str = "sock2";
/// The service the console creates.
const NEW_SERVICE: &str = "app";

/// Waits for the message bar's line about `what` (its commit, or why not).
#[track_caller]
fn wait_outcome(h: &mut Ui, what: &str) -> String {
    wait_for(h, &format!("the outcome of {what}"), |h| {
        h.state()
            .model()
            .messages
            .iter()
            .any(|m| m.text.starts_with(what))
    });
    let m = h.state().model();
    m.messages
        .iter()
        .find(|m| m.text.starts_with(what))
        .map(hagui::messages::line)
        .unwrap_or_default()
}

/// PrivateNet > Create Socket on alpha's and beta's lan1 addresses; beta's
/// hamond then serves the new cluster.toml.
#[track_caller]
fn create_a_network(h: &mut Ui, web: &WebService) {
    let c = web.cluster();
    click(h, "PrivateNet");
    click(h, "Create Socket");
    type_into(h, "Name", NEW_NET);
    autoget(h, web);
    for node in NODES {
        let ip = c.addr(node, LAN1).ip().to_string();
        type_into(h, &format!("IP address of {node}"), &ip);
    }
    type_into(h, "Port (1-65535)", "5499");
    click(h, "OK");
    let what = format!("create network {NEW_NET}");
    let outcome = wait_outcome(h, &what);
    assert!(
        outcome.starts_with(&format!("INFO: {what}: committed on every node, version "))
            || outcome.contains("may or may not have been made"),
        "{outcome}"
    );
    let holds_it = || match c.ask(
        "beta",
        &Request::ConfigGet {
            name: "cluster.toml".into(),
        },
    ) {
        Ok(Response::ConfigDoc {
            content: Some(text),
            ..
        }) => ClusterConfig::parse(&text, "cluster.toml".as_ref())
            .is_ok_and(|config| config.network(NEW_NET).is_some()),
        _ => false,
    };
    let end = Instant::now() + WAIT;
    while !holds_it() {
        assert!(
            Instant::now() < end,
            "beta's cluster.toml has no network {NEW_NET}: {}",
            c.log_tails(30)
        );
        std::thread::sleep(FRAME);
    }
    // The failover timeline was read without complaint.
    let messages = &h.state().model().messages;
    assert!(
        !messages
            .iter()
            .any(|m| m.text.starts_with("failover history")),
        "{messages:#?}"
    );
    // The console is still (or again) connected and sees the new path.
    wait_for(h, "the new network in the status", |h| {
        h.state()
            .model()
            .status
            .as_ref()
            .is_some_and(|s| s.paths.iter().any(|p| p.name == NEW_NET))
    });
}

/// AutoGet in the open Create Socket dialog: each node's address is
/// filled from that node's own interfaces (beta's read by beta's hamond),
/// never with an address its private networks use already, or left empty
/// with a note saying why.
#[track_caller]
fn autoget(h: &mut Ui, web: &WebService) {
    let c = web.cluster();
    let field = |h: &Ui, node: &str| {
        h.get_by_label(&format!("IP address of {node}"))
            .value()
            .unwrap_or_default()
    };
    let note = |h: &Ui, node: &str| {
        let start = format!("{node}: ");
        h.query_all_by(|n| n.value().is_some_and(|v| v.starts_with(&start)))
            .next()
            .and_then(|n| n.value())
    };
    click(h, "AutoGet");
    wait_for(h, "AutoGet's answers", |h| {
        NODES
            .iter()
            .all(|n| !field(h, n).is_empty() || note(h, n).is_some())
    });
    for node in NODES {
        let got = field(h, node);
        if got.is_empty() {
            let note = note(h, node).unwrap_or_default();
            assert!(note.contains("no up interface"), "{note}");
            continue;
        }
        let ip: std::net::Ipv4Addr = got.parse().unwrap_or_else(|e| panic!("{got}: {e}"));
        let lans = [LAN1, LAN2].map(|lan| *c.addr(node, lan).ip());
        assert!(!lans.contains(&ip), "{node}: {ip} is a private network's");
    }
}

/// Service > Create: a user-defined service with no floating IP and no
/// volume, brought out; it shows on both servers; then Remove.
#[track_caller]
fn create_and_remove_a_service(h: &mut Ui) {
    click(h, "Service");
    click(h, "Create");
    type_into(h, "Service name", NEW_SERVICE);
    for (field, value) in [
        ("Floating IP (address/prefix)", ""),
        ("Mount point (empty: no volume)", ""),
        ("Agent script", ""),
        ("Start script", "/bin/true"),
        ("Stop script", "/bin/true"),
        ("Status script", "/bin/false"),
    ] {
        type_into(h, field, value);
    }
    click(h, "OK");
    let what = format!("create service {NEW_SERVICE}");
    let outcome = wait_outcome(h, &what);
    assert!(
        outcome.starts_with(&format!("INFO: {what}: committed")),
        "{outcome}"
    );
    for node in NODES {
        let prefix = format!("{NEW_SERVICE} on {node}: ");
        wait_for(h, &prefix, |h| {
            h.query_all_by(|n| n.label().is_some_and(|l| l.starts_with(&prefix)))
                .next()
                .is_some()
        });
    }
    h.state_mut().model_mut().selected = Some(NEW_SERVICE.into());
    click(h, "Remove");
    click(h, "Yes, remove");
    let what = format!("remove service {NEW_SERVICE}");
    let outcome = wait_outcome(h, &what);
    assert!(
        outcome.starts_with(&format!("INFO: {what}: committed")),
        "{outcome}"
    );
    wait_for(h, "the service gone", |h| {
        h.state()
            .model()
            .services
            .iter()
            .all(|s| s.name != NEW_SERVICE)
    });
}
