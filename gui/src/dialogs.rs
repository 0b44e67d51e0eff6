//! The console's dialogs: Connect (server and password), the first-use
//! certificate check, the lock screen, the Review windows of the private
//! networks and of the selected service, the question before a
//! [`Drastic`] operation (Service > Stop and Remove), and About. What the
//! operator types is kept in [`Forms`]; what they decide goes to the
//! [`Model`].

use crate::model::{Link, Model};
use eframe::egui::{self, Context, RichText, Ui};
use haschema::ctl::{ServiceOp, State};

/// The dialogs' fields and which windows are open.
#[derive(Debug, Default)]
pub struct Forms {
    pub server: String,
    pub password: String,
    pub connect_open: bool,
    /// A login from the Connect dialog is under way.
    connecting: bool,
    pub unlock_password: String,
    pub networks_open: bool,
    pub service_open: bool,
    pub about_open: bool,
    /// The operation on the selected service being asked about.
    pub ask: Option<Drastic>,
}

/// An operation on the selected service that the operator confirms first:
/// it takes the service away from every node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drastic {
    /// Service > Stop ([`ServiceOp::Stop`]): stopped where it runs, then
    /// OUTSTB on every node until Bring In.
    Stop,
    /// Service > Remove: its file removed on every node.
    Remove,
}

impl Drastic {
    /// The question's title, its text about `service`, and the button that
    /// goes ahead.
    fn question(self, service: &str) -> (&'static str, String, &'static str) {
        match self {
            Drastic::Stop => (
                "Stop service",
                format!(
                    "Stop service {service}? This stops {service} on every node; it stays \
                     stopped (OUTSTB) until Bring In."
                ),
                "Yes, stop",
            ),
            Drastic::Remove => (
                "Remove service",
                format!(
                    "Remove service {service} from every node? The nodes refuse while it \
                     runs: bring it out first."
                ),
                "Yes, remove",
            ),
        }
    }

    /// Sends it for the selected service.
    fn send(self, model: &mut Model) {
        match self {
            Drastic::Stop => model.command(ServiceOp::Stop),
            Drastic::Remove => model.remove_service(),
        }
    }
}

/// A label and its text field in the current layout (a line, a grid
/// row); the label is the field's name for screen readers (and tests).
pub(crate) fn labelled(
    ui: &mut Ui,
    label: &str,
    value: &mut String,
    password: bool,
) -> egui::Response {
    let l = ui.label(label);
    ui.add(
        egui::TextEdit::singleline(value)
            .password(password)
            .desired_width(220.0),
    )
    .labelled_by(l.id)
}

/// A label and its text field on one line.
fn field(ui: &mut Ui, label: &str, value: &mut String, password: bool) -> egui::Response {
    ui.horizontal(|ui| labelled(ui, label, value, password))
        .inner
}

/// Follows the login started from the Connect dialog: closes it (and
/// forgets the password) once connected; an error stays shown in it.
fn follow_login(forms: &mut Forms, model: &Model) {
    if !forms.connecting {
        return;
    }
    match model.link {
        Link::Connected { .. } => {
            forms.connecting = false;
            forms.connect_open = false;
            forms.password.clear();
        }
        Link::Disconnected => forms.connecting = false,
        Link::Connecting { .. } | Link::Trust { .. } => {}
    }
}

/// The Connect dialog and the certificate check.
pub fn connect(ctx: &Context, forms: &mut Forms, model: &mut Model) {
    follow_login(forms, model);
    if let Link::Trust {
        server,
        fingerprint,
    } = model.link.clone()
    {
        trust(ctx, forms, model, &server, &fingerprint);
        return;
    }
    if !forms.connect_open {
        return;
    }
    let mut open = true;
    egui::Window::new("Connect")
        .open(&mut open)
        .collapsible(false)
        .show(ctx, |ui| {
            field(ui, "Server (host:port)", &mut forms.server, false);
            let pw = field(ui, "Password", &mut forms.password, true);
            if let Some(e) = &model.login_error {
                ui.label(RichText::new(e).color(crate::panel::RED));
            }
            let busy = matches!(model.link, Link::Connecting { .. });
            let enter = pw.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            let ready = !busy && !forms.server.trim().is_empty();
            if busy {
                ui.label("connecting ...");
            }
            if (ui.add_enabled(ready, egui::Button::new("Log in")).clicked() || enter) && ready {
                forms.connecting = true;
                model.connect(forms.server.trim().to_owned(), forms.password.clone(), None);
            }
        });
    if !open {
        forms.connect_open = false;
        forms.password.clear();
    }
}

/// The first-use certificate check: the fingerprint must be accepted.
fn trust(ctx: &Context, forms: &mut Forms, model: &mut Model, server: &str, fingerprint: &str) {
    egui::Window::new("New certificate")
        .collapsible(false)
        .show(ctx, |ui| {
            ui.label(format!(
                "This is the first connection to {server}. Its certificate's SHA-256 \
                 fingerprint is:"
            ));
            ui.label(RichText::new(fingerprint).monospace());
            ui.label(format!(
                "Compare it with what `openssl x509 -noout -fingerprint -sha256 -in \
                 /var/lib/hacluster/{}` prints on the node; accept it only if they are equal.",
                hamond::admin::tls::CERT_FILE
            ));
            ui.horizontal(|ui| {
                if ui.button("Accept certificate").clicked() {
                    forms.connecting = true;
                    model.connect(
                        server.to_owned(),
                        forms.password.clone(),
                        Some(fingerprint.to_owned()),
                    );
                }
                if ui.button("Refuse certificate").clicked() {
                    model.decline();
                    forms.password.clear();
                }
            });
        });
}

/// The lock screen: nothing but the password field.
pub fn lock_screen(ui: &mut Ui, forms: &mut Forms, model: &mut Model) {
    ui.vertical_centered(|ui| {
        ui.add_space(60.0);
        ui.heading("Console locked");
        ui.label("Type the admin password to unlock.");
        let pw = field(ui, "Password", &mut forms.unlock_password, true);
        if let Some(e) = &model.login_error {
            ui.label(RichText::new(e).color(crate::panel::RED));
        }
        let enter = pw.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if model.unlocking {
            ui.label("checking ...");
        }
        if ui
            .add_enabled(!model.unlocking, egui::Button::new("Unlock"))
            .clicked()
            || enter
        {
            model.unlock(std::mem::take(&mut forms.unlock_password));
        }
    });
}

/// "UP" / "DOWN".
fn up(state: State) -> &'static str {
    match state {
        State::Up => "UP",
        State::Down => "DOWN",
    }
}

/// PrivateNet > Review: each path with its counters, each link's state.
pub fn networks(ctx: &Context, forms: &mut Forms, model: &Model) {
    let Some(report) = model.status.as_ref().filter(|_| forms.networks_open) else {
        return;
    };
    egui::Window::new("Private networks")
        .open(&mut forms.networks_open)
        .show(ctx, |ui| {
            egui::Grid::new("paths").striped(true).show(ui, |ui| {
                for h in ["path", "kind", "port", "sent", "received"] {
                    ui.strong(h);
                }
                ui.end_row();
                for p in &report.paths {
                    ui.label(&p.name);
                    ui.label(&p.kind);
                    ui.label(if p.open { "open" } else { "CLOSED" });
                    ui.label(p.frames_sent.to_string());
                    ui.label(p.frames_received.to_string());
                    ui.end_row();
                }
            });
            ui.separator();
            for peer in &report.peers {
                for l in &peer.links {
                    let rtt = l
                        .rtt_us
                        .map_or_else(|| "-".into(), |us| format!("{:.2} ms", us as f64 / 1e3));
                    ui.label(format!(
                        "{} to {} via {}: {}, rtt {rtt}{}",
                        report.node,
                        peer.name,
                        l.path,
                        up(l.state),
                        l.cause
                            .as_ref()
                            .map(|c| format!(" ({c})"))
                            .unwrap_or_default()
                    ));
                }
            }
        });
}

/// Service > Review: the selected service on each node.
pub fn service(ctx: &Context, forms: &mut Forms, model: &Model) {
    let Some(s) = model
        .selected
        .as_ref()
        .and_then(|name| model.services.iter().find(|s| &s.name == name))
        .filter(|_| forms.service_open)
    else {
        return;
    };
    egui::Window::new(format!("Service {}", s.name))
        .open(&mut forms.service_open)
        .show(ctx, |ui| {
            ui.label(format!(
                "owner: {}",
                s.owner.as_deref().unwrap_or("none (it runs nowhere)")
            ));
            ui.label(format!("failures: {}", s.failures));
            if let Some(f) = &s.fault {
                ui.label(RichText::new(format!("fault: {f}")).color(crate::panel::RED));
            }
            for n in &s.nodes {
                let able = if n.can_host { "" } else { " (unable to host)" };
                ui.label(
                    RichText::new(format!("{}: {}{able}", n.node, n.state))
                        .color(crate::panel::service_colour(&n.state)),
                );
            }
        });
}

/// The question before a [`Drastic`] operation on the selected service:
/// it is sent on yes, dropped on Cancel or when the window is closed.
pub fn ask(ctx: &Context, forms: &mut Forms, model: &mut Model) {
    let Some((drastic, service)) = forms.ask.zip(model.selected.clone()) else {
        forms.ask = None;
        return;
    };
    let (title, question, yes) = drastic.question(&service);
    let mut open = true;
    let mut done = false;
    egui::Window::new(title)
        .open(&mut open)
        .collapsible(false)
        .show(ctx, |ui| {
            ui.label(question);
            ui.horizontal(|ui| {
                if ui.button(yes).clicked() {
                    drastic.send(model);
                    done = true;
                }
                done |= ui.button("Cancel").clicked();
            });
        });
    if done || !open {
        forms.ask = None;
    }
}

/// Help > About.
pub fn about(ctx: &Context, forms: &mut Forms) {
    egui::Window::new("About hagui")
        .open(&mut forms.about_open)
        .show(ctx, |ui| {
            ui.label(format!(
                "hagui {}: the admin console of the HA cluster ({})",
                env!("CARGO_PKG_VERSION"),
                env!("CARGO_PKG_LICENSE")
            ));
        });
}
