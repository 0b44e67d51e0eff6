//! [`Console`]: the whole admin console, the model, its client thread and
//! the dialogs' fields, drawn into one [`Ui`] each frame (by eframe in
//! `hagui`, by egui_kittest in the tests). Each frame takes the client
//! thread's answers, draws, carries out the operator's actions, and hands
//! the next job to the thread; it asks to be drawn again when an answer or
//! the next refresh may be due.

use crate::dialogs::{self, Forms};
use crate::edit_dialogs::Edits;
use crate::menus::{self, Action};
use crate::model::{Level, Model};
use crate::worker::Worker;
use crate::{messages, panel, timeline};
use eframe::egui::{self, Ui};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often an outstanding request's answer is looked for.
const ANSWER_POLL: Duration = Duration::from_millis(100);

/// The console.
pub struct Console {
    model: Model,
    worker: Worker,
    forms: Forms,
    edits: Edits,
}

impl Console {
    /// A console that pins servers' certificates in `known_hosts`. Its
    /// client thread is started here, in the calling thread's network
    /// namespace.
    pub fn new(known_hosts: PathBuf) -> std::io::Result<Console> {
        Ok(Console {
            model: Model::new(),
            worker: Worker::spawn(known_hosts)?,
            forms: Forms::default(),
            edits: Edits::default(),
        })
    }

    /// The console's state.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The console's state, to change (tests draw a console from fixed
    /// data this way, with no cluster).
    pub fn model_mut(&mut self) -> &mut Model {
        &mut self.model
    }

    /// Opens the Connect dialog with `server` filled in.
    pub fn offer_connect(&mut self, server: String) {
        self.forms.server = server;
        self.forms.connect_open = true;
    }

    /// Takes the thread's answers and hands it the next job.
    fn pump(&mut self) {
        let now = Instant::now();
        loop {
            match self.worker.try_recv() {
                Ok(Some(event)) => self.model.apply(event, now),
                Ok(None) => break,
                Err(e) => {
                    tracing::error!("hagui: {e}");
                    self.model.say(Level::Error, e);
                    break;
                }
            }
        }
        if let Some(job) = self.model.next_job(now)
            && let Err(e) = self.worker.send(job)
        {
            tracing::error!("hagui: {e}");
            self.model.say(Level::Error, e);
        }
    }

    /// Draws one frame into `ui`.
    pub fn ui(&mut self, ui: &mut Ui) {
        self.pump();
        if self.model.locked {
            egui::CentralPanel::default().show(ui, |ui| {
                dialogs::lock_screen(ui, &mut self.forms, &mut self.model);
            });
        } else {
            let mut action = None;
            egui::Panel::top("menu").show(ui, |ui| {
                action = menus::menu_bar(ui, &self.model);
            });
            egui::Panel::top("toolbar").show(ui, |ui| {
                action = menus::toolbar(ui, &self.model).or(action);
            });
            egui::Panel::bottom("messages").show(ui, |ui| messages::show(ui, &self.model));
            if self.model.connected() || !self.model.failovers.is_empty() {
                egui::Panel::bottom("timeline").show(ui, |ui| timeline::show(ui, &self.model));
            }
            egui::CentralPanel::default().show(ui, |ui| panel::show(ui, &mut self.model));
            let ctx = ui.ctx().clone();
            dialogs::connect(&ctx, &mut self.forms, &mut self.model);
            dialogs::networks(&ctx, &mut self.forms, &self.model);
            dialogs::service(&ctx, &mut self.forms, &self.model);
            dialogs::about(&ctx, &mut self.forms);
            dialogs::ask(&ctx, &mut self.forms, &mut self.model);
            self.edits.show(&ctx, &mut self.model);
            if let Some(action) = action {
                self.act(ui, action);
            }
        }
        self.pump();
        let wait = match self.model.busy() {
            true => Some(ANSWER_POLL),
            false => self.model.wait(Instant::now()),
        };
        if let Some(wait) = wait {
            ui.ctx().request_repaint_after(wait);
        }
    }

    fn act(&mut self, ui: &Ui, action: Action) {
        match action {
            Action::Connect => self.forms.connect_open = true,
            Action::Disconnect => self.model.disconnect(),
            Action::Exit => ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close),
            Action::Service(op) => self.model.command(op),
            Action::ReviewNetworks => self.forms.networks_open = true,
            Action::ReviewService => self.forms.service_open = true,
            Action::CreateNetwork(medium) => self.edits.create_network(medium, &mut self.model),
            Action::RemoveNetwork => self.edits.remove_network(&mut self.model),
            Action::CreateService => self.edits.create_service(&mut self.model),
            Action::Ask(drastic) => self.forms.ask = Some(drastic),
            Action::Lock => self.model.lock(),
            Action::About => self.forms.about_open = true,
        }
    }
}
