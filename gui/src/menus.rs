//! The manual's menu bar (Tools, PrivateNet, Service, Help) and toolbar
//! (Connect, BringIn, BringOut, TakeOver, FailOver, Review, StopService,
//! Remove, Lock, Disconnect). Both only report the operator's [`Action`];
//! the console carries it out. Items whose backend is not built yet are
//! shown disabled, with a tooltip that says so.

use crate::dialogs::Drastic;
use crate::model::Model;
use crate::network_form::Medium;
use eframe::egui::{self, Ui};
use haschema::ctl::ServiceOp;

/// What the operator asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Connect,
    Disconnect,
    Exit,
    Service(ServiceOp),
    ReviewNetworks,
    ReviewService,
    /// PrivateNet > Create RS232 or Create Socket.
    CreateNetwork(Medium),
    RemoveNetwork,
    CreateService,
    /// Service > Stop or Remove: asked first.
    Ask(Drastic),
    Lock,
    About,
}

/// Why Tools > Stop is disabled.
const NO_STOP: &str = "not available yet: stop the cluster on a node with \
     `systemctl stop hacluster` there";

/// The service operations of the Service menu and the toolbar, with their
/// menu and toolbar names and what they do.
const OPS: [(ServiceOp, &str, &str, &str); 4] = [
    (
        ServiceOp::BringIn,
        "Bring In",
        "BringIn",
        "put the selected service back under cluster control",
    ),
    (
        ServiceOp::BringOut,
        "Bring Out",
        "BringOut",
        "take the selected service out of cluster control (left as it is)",
    ),
    (
        ServiceOp::TakeOver,
        "Take Over",
        "TakeOver",
        "move the selected service to the connected node",
    ),
    (
        ServiceOp::FailOver,
        "Fail Over",
        "FailOver",
        "move the selected service away from the node that holds it",
    ),
];

/// The service operations the operator confirms first, with their menu
/// and toolbar names and what they do.
const ASKED: [(Drastic, &str, &str, &str); 2] = [
    (
        Drastic::Stop,
        "Stop",
        "StopService",
        "stop the selected service on every node; it stays stopped (OUTSTB) until Bring In",
    ),
    (
        Drastic::Remove,
        "Remove",
        "Remove",
        "remove the selected service's file on every node (bring it out first)",
    ),
];

/// A menu item or toolbar button, enabled or not.
fn item(ui: &mut Ui, enabled: bool, text: &str, hint: &str) -> bool {
    ui.add_enabled(enabled, egui::Button::new(text))
        .on_hover_text(hint)
        .on_disabled_hover_text(hint)
        .clicked()
}

/// A menu item that is not built yet.
fn disabled(ui: &mut Ui, text: &str, why: &str) {
    ui.add_enabled(false, egui::Button::new(text))
        .on_disabled_hover_text(why);
}

/// The menu bar.
pub fn menu_bar(ui: &mut Ui, model: &Model) -> Option<Action> {
    let connected = model.connected();
    let has_service = connected && model.selected.is_some();
    let mut action = None;
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("Tools", |ui| {
            if item(ui, true, "Connect", "log in on a node's admin endpoint") {
                action = Some(Action::Connect);
            }
            if item(ui, connected, "Disconnect", "close the connection") {
                action = Some(Action::Disconnect);
            }
            disabled(ui, "Stop", NO_STOP);
            if item(ui, true, "Exit", "close the console") {
                action = Some(Action::Exit);
            }
        });
        ui.menu_button("PrivateNet", |ui| {
            if item(
                ui,
                connected,
                "Create RS232",
                "a new heartbeat path on a serial null-modem cable, on every node",
            ) {
                action = Some(Action::CreateNetwork(Medium::Serial));
            }
            if item(
                ui,
                connected,
                "Create Socket",
                "a new heartbeat path over UDP, on every node",
            ) {
                action = Some(Action::CreateNetwork(Medium::Udp));
            }
            if item(
                ui,
                connected,
                "Review",
                "the heartbeat paths and their counters",
            ) {
                action = Some(Action::ReviewNetworks);
            }
            if item(
                ui,
                connected,
                "Remove",
                "take a heartbeat path out of the cluster config, on every node",
            ) {
                action = Some(Action::RemoveNetwork);
            }
        });
        ui.menu_button("Service", |ui| {
            if item(
                ui,
                connected,
                "Create",
                "a new protected service, on every node",
            ) {
                action = Some(Action::CreateService);
            }
            for (op, text, _, hint) in OPS {
                if item(ui, has_service, text, hint) {
                    action = Some(Action::Service(op));
                }
            }
            if item(
                ui,
                has_service,
                "Review",
                "the selected service on each node",
            ) {
                action = Some(Action::ReviewService);
            }
            for (drastic, text, _, hint) in ASKED {
                if item(ui, has_service, text, hint) {
                    action = Some(Action::Ask(drastic));
                }
            }
        });
        ui.menu_button("Help", |ui| {
            if item(ui, true, "About", "version and licence") {
                action = Some(Action::About);
            }
        });
    });
    action
}

/// The toolbar.
pub fn toolbar(ui: &mut Ui, model: &Model) -> Option<Action> {
    let connected = model.connected();
    let has_service = connected && model.selected.is_some();
    let mut action = None;
    ui.horizontal(|ui| {
        if item(ui, true, "Connect", "log in on a node's admin endpoint") {
            action = Some(Action::Connect);
        }
        ui.separator();
        for (op, _, text, hint) in OPS {
            if item(ui, has_service, text, hint) {
                action = Some(Action::Service(op));
            }
        }
        if item(
            ui,
            has_service,
            "Review",
            "the selected service on each node",
        ) {
            action = Some(Action::ReviewService);
        }
        for (drastic, _, text, hint) in ASKED {
            if item(ui, has_service, text, hint) {
                action = Some(Action::Ask(drastic));
            }
        }
        ui.separator();
        if item(
            ui,
            connected,
            "Lock",
            "hide everything until the password is typed again",
        ) {
            action = Some(Action::Lock);
        }
        if item(ui, connected, "Disconnect", "close the connection") {
            action = Some(Action::Disconnect);
        }
    });
    action
}
