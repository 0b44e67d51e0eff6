//! The console without a cluster: what is shown before connecting, the
//! Connect dialog, the items disabled without a connection, and the error
//! of a server given without its port (no traffic leaves the test).

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use hagui::Console;

fn console() -> Harness<'static, Console> {
    let dir = std::env::temp_dir().join(format!("hagui-offline-{}", std::process::id()));
    let console = Console::new(dir.join("known_hosts")).expect("the client thread starts");
    let mut h = Harness::builder()
        .with_size([1000.0, 700.0])
        .build_ui_state(|ui, console: &mut Console| console.ui(ui), console);
    h.run_ok();
    h
}

#[test]
fn connect_opens_its_dialog() {
    let mut h = console();
    assert!(h.query_by_label("not connected: Tools > Connect").is_some());
    h.get_by_label("Connect").click();
    h.run_ok();
    assert!(h.query_by_label("Server (host:port)").is_some());
    assert!(h.query_by_label("Password").is_some());
}

#[test]
fn what_needs_a_connection_or_is_not_built_is_disabled() {
    let mut h = console();
    let menus: [(&str, &[&str]); 3] = [
        ("Tools", &["Stop"]),
        ("PrivateNet", &["Create RS232", "Create Socket"]),
        ("Service", &["Create", "Bring In", "Stop"]),
    ];
    for (menu, items) in menus {
        h.get_by_label(menu).click();
        h.run_ok();
        for item in items {
            let node = h.get_by_label(item).accesskit_node();
            assert!(node.is_disabled(), "{menu} > {item} is enabled");
        }
        h.key_press(eframe::egui::Key::Escape);
        h.run_ok();
    }
    // Without a connection, neither the service commands nor the lock.
    for item in [
        "BringIn",
        "BringOut",
        "TakeOver",
        "FailOver",
        "StopService",
        "Remove",
        "Lock",
        "Disconnect",
    ] {
        assert!(
            h.get_by_label(item).accesskit_node().is_disabled(),
            "{item}"
        );
    }
}

#[test]
fn a_server_without_a_port_is_an_error() {
    let mut h = console();
    h.get_by_label("Connect").click();
    h.run_ok();
    h.get_by_label("Server (host:port)")
        .set_text_value_accesskit("alpha");
    h.run_ok();
    h.get_by_label("Log in").click();
    h.run_ok();
    for _ in 0..100 {
        if h.state().model().login_error.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        h.step();
    }
    let error = h.state().model().login_error.clone().unwrap_or_default();
    assert!(error.contains("alpha: not a HOST:PORT"), "{error:?}");
    assert!(
        h.query_all_by(|n| n
            .value()
            .is_some_and(|v| v.starts_with("ERROR: alpha: not a HOST:PORT")))
            .next()
            .is_some()
    );
}
