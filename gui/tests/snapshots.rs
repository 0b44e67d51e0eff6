//! Snapshot images of the console (egui_kittest, rendered with wgpu on the
//! adapter there is: Mesa's llvmpipe on a machine without a GPU), drawn
//! from fixed data (`common`): the main window with two servers, one
//! heartbeat path up and one down, a service in each state's colour and
//! the failover timeline; and the Create Socket and Service Configuration
//! dialogs. The images are
//! kept in gui/tests/snapshots/; after a deliberate change of the look,
//! `UPDATE_SNAPSHOTS=1 cargo test -p hagui --test snapshots` rewrites
//! them (look at them before committing).

mod common;

use egui_kittest::kittest::Queryable;

const SIZE: [f32; 2] = [1000.0, 720.0];

#[test]
fn main_window() {
    let mut h = common::connected(SIZE);
    // What the image must show, checked on the widgets first.
    for label in [
        "alpha",
        "beta",
        "www on alpha: ACTIVE",
        "db on alpha: ERRORACT",
    ] {
        assert!(h.query_by_label(label).is_some(), "{label}");
    }
    for e in common::failovers() {
        assert!(h.query_by_label(&e.summary()).is_some(), "{}", e.summary());
    }
    h.snapshot("main_window");
}

#[test]
fn create_socket_dialog() {
    let mut h = common::connected(SIZE);
    h.get_by_label("PrivateNet").click();
    h.run_ok();
    h.get_by_label("Create Socket").click();
    h.run_ok();
    h.get_by_label("IP address of alpha")
        .set_text_value_accesskit("192.168.30.1");
    h.run_ok();
    h.snapshot("create_socket_dialog");
}

#[test]
fn create_service_dialog() {
    let mut h = common::connected(SIZE);
    h.get_by_label("Service").click();
    h.run_ok();
    h.get_by_label("Create").click();
    h.run_ok();
    h.snapshot("create_service_dialog");
}
