//! The dialogs that change the configuration on every node: PrivateNet >
//! Create RS232, Create Socket and Remove, Service > Create. (Service >
//! Remove, which only asks first, is in [`crate::dialogs`].)
//! Each one checks what it would send with the daemons' own parser and
//! shows the parser's error instead of sending; what it sends goes to the
//! [`Model`] as a configuration change based on the version read.

use crate::dialogs::labelled;
use crate::model::{CLUSTER_DOC, ClusterDoc, Model, service_doc};
use crate::network_form::{self, Medium, NetworkForm};
use crate::service_form::ServiceForm;
use eframe::egui::{self, Context, RichText, Ui};
use haschema::config::{BAUD_RATES, ClusterConfig};
use haschema::service::ServiceType;

/// The open change dialogs, their fields and their errors.
#[derive(Debug, Default)]
pub struct Edits {
    network: Option<NetworkForm>,
    /// The network chosen in PrivateNet > Remove (the dialog is open).
    remove_network: Option<String>,
    service: Option<ServiceForm>,
    /// Why the open dialog's change was not sent.
    error: Option<String>,
}

/// Why a dialog cannot be filled yet.
const NOT_READ: &str = "reading cluster.toml from the node ...";

/// The cluster config as read, or why there is none to edit.
fn cluster(model: &Model) -> Result<(&ClusterDoc, &ClusterConfig), String> {
    let doc = model.cluster.as_ref().ok_or(NOT_READ)?;
    let config = doc.config.as_ref().map_err(|e| {
        format!("{CLUSTER_DOC} as read is not valid ({e}); fix it with `hactl config put`")
    })?;
    Ok((doc, config))
}

impl Edits {
    /// PrivateNet > Create RS232 or Create Socket.
    pub fn create_network(&mut self, medium: Medium, model: &mut Model) {
        match cluster(model) {
            Ok((_, config)) => {
                self.network = Some(NetworkForm::new(medium, config));
                self.error = None;
                // Answers to an earlier dialog's AutoGet are not this one's.
                model.nics.clear();
            }
            Err(e) => model.say(crate::model::Level::Warning, e),
        }
    }

    /// PrivateNet > Remove.
    pub fn remove_network(&mut self, model: &mut Model) {
        match cluster(model) {
            Ok((_, config)) => {
                self.remove_network = config.networks.first().map(|n| n.name.clone());
                self.error = None;
            }
            Err(e) => model.say(crate::model::Level::Warning, e),
        }
    }

    /// Service > Create.
    pub fn create_service(&mut self, model: &mut Model) {
        match cluster(model) {
            Ok((_, config)) => {
                let nodes: Vec<String> = config.nodes.iter().map(|n| n.name.clone()).collect();
                self.service = Some(ServiceForm::new(ServiceType::Userdef, &nodes));
                self.error = None;
            }
            Err(e) => model.say(crate::model::Level::Warning, e),
        }
    }

    /// Draws the open dialogs.
    pub fn show(&mut self, ctx: &Context, model: &mut Model) {
        self.network_dialog(ctx, model);
        self.remove_network_dialog(ctx, model);
        self.service_dialog(ctx, model);
    }

    /// The dialog's error, if any.
    fn error(&self, ui: &mut Ui) {
        if let Some(e) = &self.error {
            ui.label(RichText::new(e).color(crate::panel::RED));
        }
    }

    /// OK and Cancel: which one was pressed.
    fn buttons(ui: &mut Ui) -> (bool, bool) {
        ui.horizontal(|ui| (ui.button("OK").clicked(), ui.button("Cancel").clicked()))
            .inner
    }

    fn network_dialog(&mut self, ctx: &Context, model: &mut Model) {
        let Some(mut form) = self.network.take() else {
            return;
        };
        Self::take_autoget(&mut form, model);
        let mut open = true;
        let mut done = false;
        egui::Window::new(form.title())
            .open(&mut open)
            .collapsible(false)
            .show(ctx, |ui| {
                network_fields(ui, &mut form);
                if form.medium == Medium::Udp {
                    autoget_button(ui, &mut form, model);
                }
                self.error(ui);
                let (ok, cancel) = Self::buttons(ui);
                if ok {
                    done = self.send_network(&form, model);
                }
                done |= cancel;
            });
        if open && !done {
            self.network = Some(form);
        }
    }

    /// Fills the form with the AutoGet answers that arrived.
    fn take_autoget(form: &mut NetworkForm, model: &mut Model) {
        let answers = std::mem::take(&mut model.nics);
        let Ok((_, config)) = cluster(model) else {
            return;
        };
        for (node, result) in &answers {
            let nics = result
                .as_ref()
                .map(|(nics, _)| nics.as_slice())
                .map_err(String::as_str);
            form.autoget(node, nics, config);
            if matches!(result, Ok((_, true))) {
                form.autoget_truncated(node);
            }
        }
    }

    /// Sends the new network; false (the error kept) when it is refused here.
    fn send_network(&mut self, form: &NetworkForm, model: &mut Model) -> bool {
        let result = cluster(model).and_then(|(doc, _)| Ok((doc.version, form.added_to(doc)?)));
        match result {
            Ok((base, text)) => {
                let what = format!("create network {}", form.name.trim());
                model.put(CLUSTER_DOC.into(), Some(base), text, what);
                self.error = None;
                true
            }
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }

    fn remove_network_dialog(&mut self, ctx: &Context, model: &mut Model) {
        let Some(mut chosen) = self.remove_network.take() else {
            return;
        };
        let Ok((doc, config)) = cluster(model) else {
            return;
        };
        let mut open = true;
        let mut done = false;
        let mut send = None;
        egui::Window::new("Remove private network")
            .open(&mut open)
            .collapsible(false)
            .show(ctx, |ui| {
                egui::ComboBox::from_label("Private network")
                    .selected_text(chosen.as_str())
                    .show_ui(ui, |ui| {
                        for n in &config.networks {
                            ui.selectable_value(&mut chosen, n.name.clone(), &n.name);
                        }
                    });
                self.error(ui);
                let (ok, cancel) = Self::buttons(ui);
                if ok {
                    match network_form::removed_from(doc, &chosen) {
                        Ok(text) => send = Some((doc.version, text)),
                        Err(e) => self.error = Some(e),
                    }
                }
                done = cancel;
            });
        if let Some((base, text)) = send {
            let what = format!("remove network {chosen}");
            model.put(CLUSTER_DOC.into(), Some(base), text, what);
            self.error = None;
        } else if open && !done {
            self.remove_network = Some(chosen);
        }
    }

    fn service_dialog(&mut self, ctx: &Context, model: &mut Model) {
        let Some(mut form) = self.service.take() else {
            return;
        };
        let Ok((_, config)) = cluster(model) else {
            return;
        };
        let nodes: Vec<String> = config.nodes.iter().map(|n| n.name.clone()).collect();
        let mut open = true;
        let mut done = false;
        let mut send = None;
        egui::Window::new("Service Configuration")
            .open(&mut open)
            .collapsible(false)
            .show(ctx, |ui| {
                egui::ScrollArea::vertical()
                    .max_height(ctx.content_rect().height() * 0.45)
                    .show(ui, |ui| service_fields(ui, &mut form, &nodes));
                self.error(ui);
                let (ok, cancel) = Self::buttons(ui);
                if ok {
                    match form.check(config) {
                        Ok(text) => send = Some(text),
                        Err(e) => self.error = Some(e),
                    }
                }
                done = cancel;
            });
        if let Some(text) = send {
            let name = form.name.trim().to_owned();
            model.put(
                service_doc(&name),
                None,
                text,
                format!("create service {name}"),
            );
            self.error = None;
        } else if open && !done {
            self.service = Some(form);
        }
    }
}

/// The fields of the Service Configuration dialog, on `nodes`.
fn service_fields(ui: &mut Ui, form: &mut ServiceForm, nodes: &[String]) {
    egui::Grid::new("service-fields")
        .num_columns(2)
        .show(ui, |ui| {
            row(ui, "Service name", &mut form.name);
            let mut kind = form.kind;
            let types = ServiceType::ALL.map(|t| (t, t.as_str().to_owned()));
            choice(ui, "Type", &mut kind, types);
            if kind != form.kind {
                // Another type: its template's values, the name kept.
                let name = std::mem::take(&mut form.name);
                *form = ServiceForm {
                    name,
                    ..ServiceForm::new(kind, nodes)
                };
            }
            row(ui, "Group id (1-65535, optional)", &mut form.group);
            let servers = nodes.iter().map(|n| (n.clone(), n.clone()));
            choice(ui, "Active server", &mut form.active, servers);
            row(ui, "Standby servers (in order)", &mut form.standby);
            row(ui, "Floating IP (address/prefix)", &mut form.address);
            for (node, nics) in &mut form.nics {
                row(ui, &format!("IP holding NICs on {node}"), nics);
            }
            row(ui, "Mount point (empty: no volume)", &mut form.mount_point);
            for (node, device) in &mut form.devices {
                row(ui, &format!("Volume on {node}"), device);
            }
            row(ui, "File system", &mut form.fstype);
            row(ui, "Agent script", &mut form.agent);
            row(ui, "Start script", &mut form.start);
            row(ui, "Stop script", &mut form.stop);
            row(ui, "Status script", &mut form.status);
            row(ui, "Start timeout (12s-1000s)", &mut form.start_timeout);
            row(ui, "Stop timeout (12s-1000s)", &mut form.stop_timeout);
            row(ui, "Check interval (100ms-120s)", &mut form.check_interval);
            row(ui, "Check tko (1-100)", &mut form.check_tko);
            row(ui, "Restart times (0-5)", &mut form.restart_times);
        });
    ui.checkbox(&mut form.switchback, "Switchback");
    ui.checkbox(&mut form.onstart, "Start with the cluster");
}

/// The fields of a PrivateNet Configuration dialog.
fn network_fields(ui: &mut Ui, form: &mut NetworkForm) {
    egui::Grid::new("network-fields")
        .num_columns(2)
        .show(ui, |ui| {
            row(ui, "Name", &mut form.name);
            row(ui, "Priority (0-100)", &mut form.priority);
            row(ui, "Heartbeat interval (20ms-15s)", &mut form.interval);
            row(ui, "Heartbeat maxmiss (2-100)", &mut form.maxmiss);
            if form.medium == Medium::Serial {
                let rates = BAUD_RATES.map(|b| (b, b.to_string()));
                choice(ui, "Baud rate", &mut form.baud, rates);
            }
        });
    let (what, end) = match form.medium {
        Medium::Serial => (
            "Serial device of each node (empty: not on this cable):",
            "Device on",
        ),
        Medium::Udp => (
            "IP address of each node (empty: not on this network):",
            "IP address of",
        ),
    };
    ui.label(what);
    egui::Grid::new("network-ends")
        .num_columns(2)
        .show(ui, |ui| {
            for (node, value) in &mut form.ends {
                row(ui, &format!("{end} {node}"), value);
            }
            if form.medium == Medium::Udp {
                row(ui, "Port (1-65535)", &mut form.port);
            }
        });
}

/// The manual's AutoGet: asks every node of the form for its interfaces
/// (answers fill the addresses as they come); shows what it could not fill.
fn autoget_button(ui: &mut Ui, form: &mut NetworkForm, model: &mut Model) {
    let button = ui.add_enabled(model.connected(), egui::Button::new("AutoGet"));
    if button
        .on_hover_text("Fill each node's address from that node's network interfaces")
        .clicked()
    {
        form.notes.clear();
        model.autoget(form.ends.iter().map(|(node, _)| node.clone()));
    }
    for note in &form.notes {
        ui.label(RichText::new(note).color(crate::panel::GOLD));
    }
}

/// One row of a dialog's grid: a label and its text field.
fn row(ui: &mut Ui, label: &str, value: &mut String) {
    labelled(ui, label, value, false);
    ui.end_row();
}

/// One row of a dialog's grid: a label and a drop-down list of `choices`
/// (each value with its text).
fn choice<T: PartialEq>(
    ui: &mut Ui,
    label: &str,
    value: &mut T,
    choices: impl IntoIterator<Item = (T, String)>,
) {
    let l = ui.label(label);
    let choices: Vec<(T, String)> = choices.into_iter().collect();
    let shown = choices
        .iter()
        .find(|(c, _)| c == value)
        .map(|(_, text)| text.clone())
        .unwrap_or_default();
    egui::ComboBox::from_id_salt(label)
        .selected_text(shown)
        .show_ui(ui, |ui| {
            for (c, text) in choices {
                ui.selectable_value(value, c, text);
            }
        })
        .response
        .labelled_by(l.id);
    ui.end_row();
}
