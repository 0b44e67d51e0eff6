//! The status panel, as the manual draws it: each server as a box with its
//! state (the node the console is connected to first, the others in a grid
//! when there are more than two), each heartbeat path as a line between
//! two servers, green when up and red when down, labelled with its name and
//! kind, and each service's name inside its servers' boxes in the colour of
//! its state there ([`service_colour`]). Clicking a service selects it for
//! the service commands.

use crate::model::Model;
use eframe::egui::{
    self, Color32, Pos2, Rect, RichText, Role, Sense, Stroke, Ui, UiBuilder, Vec2, WidgetInfo,
};
use haschema::ctl::{State, StatusReport};

/// Active (the service runs there).
pub const GOLD: Color32 = Color32::from_rgb(212, 160, 0);
/// Standby, and heartbeat paths and nodes that are up.
pub const GREEN: Color32 = Color32::from_rgb(0, 150, 60);
/// Error, stalled, and what is down.
pub const RED: Color32 = Color32::from_rgb(210, 30, 30);
/// Out of cluster control, switching, or not known.
pub const GREY: Color32 = Color32::from_rgb(128, 128, 128);
/// Height of one grid cell.
const CELL_HEIGHT: f32 = 190.0;
/// Widest server box.
const BOX_WIDTH: f32 = 220.0;
/// Space between two heartbeat lines.
const LINE_GAP: f32 = 24.0;

/// The colour of a service state (the SureHA names).
pub fn service_colour(state: &str) -> Color32 {
    match state {
        "ACTIVE" | "ACTIVEACT" | "ACTIVESTB" => GOLD,
        "STANDBY" => GREEN,
        "ERRORACT" | "ERRORSTB" | "STALLED" => RED,
        _ => GREY,
    }
}

/// The colour of a node's or a path's state.
pub fn state_colour(state: State) -> Color32 {
    match state {
        State::Up => GREEN,
        State::Down => RED,
    }
}

/// Up or down, as shown.
fn state_name(state: State) -> &'static str {
    match state {
        State::Up => "UP",
        State::Down => "DOWN",
    }
}

/// One server of the panel.
struct Server<'a> {
    name: &'a str,
    state: State,
    /// The node the console talks to.
    here: bool,
}

/// The servers, the connected one first.
fn servers(report: &StatusReport) -> Vec<Server<'_>> {
    let me = Server {
        name: &report.node,
        state: State::Up,
        here: true,
    };
    std::iter::once(me)
        .chain(report.peers.iter().map(|p| Server {
            name: &p.name,
            state: p.state,
            here: false,
        }))
        .collect()
}

/// Columns of the grid for `n` servers: side by side up to two, else a
/// square-ish grid.
pub fn columns(n: usize) -> usize {
    match n {
        0..=2 => n.max(1),
        _ => (1..).find(|c| c * c >= n).unwrap_or(n),
    }
}

/// Draws the panel into the rest of `ui`.
pub fn show(ui: &mut Ui, model: &mut Model) {
    let Some(report) = model.status.clone() else {
        ui.label(if model.connected() {
            "waiting for the first status report ..."
        } else {
            "not connected: Tools > Connect"
        });
        return;
    };
    ui.label(format!(
        "cluster {}  (epoch {}{})",
        report.cluster,
        report.epoch,
        match &report.view {
            Some(v) if v.quorum => ", quorum",
            Some(_) => ", NO QUORUM",
            None => ", no agreed view yet",
        }
    ));
    if let Some(why) = &report.withdrawn {
        ui.colored_label(
            Color32::RED,
            format!(
                "SERVICES WITHDRAWN on {}: {why}; it stops its services and takes none",
                report.node
            ),
        );
    }
    let servers = servers(&report);
    let cols = columns(servers.len());
    let area = ui.available_rect_before_wrap();
    let cell_width = area.width() / cols as f32;
    let rects: Vec<Rect> = (0..servers.len())
        .map(|i| {
            let (row, col) = (i / cols, i % cols);
            let cell = Rect::from_min_size(
                area.min + Vec2::new(col as f32 * cell_width, row as f32 * CELL_HEIGHT),
                Vec2::new(cell_width, CELL_HEIGHT),
            );
            Rect::from_center_size(
                cell.center(),
                Vec2::new((cell_width * 0.55).min(BOX_WIDTH), CELL_HEIGHT - 30.0),
            )
        })
        .collect();
    links(ui, &report, &rects);
    for (server, rect) in servers.iter().zip(&rects) {
        server_box(ui, model, server, *rect);
    }
    let rows = servers.len().div_ceil(cols);
    ui.allocate_rect(
        Rect::from_min_size(area.min, Vec2::new(area.width(), rows as f32 * CELL_HEIGHT)),
        Sense::hover(),
    );
}

/// The heartbeat lines from the connected server (`rects[0]`) to each
/// peer, one per path, with their labels.
fn links(ui: &mut Ui, report: &StatusReport, rects: &[Rect]) {
    let from = rects[0].center();
    for (peer, rect) in report.peers.iter().zip(&rects[1..]) {
        let to = rect.center();
        let along = (to - from).normalized();
        let across = Vec2::new(-along.y, along.x);
        let n = peer.links.len() as f32;
        for (k, link) in peer.links.iter().enumerate() {
            let shift = across * (k as f32 - (n - 1.0) / 2.0) * LINE_GAP;
            let colour = state_colour(link.state);
            ui.painter()
                .line_segment([from + shift, to + shift], Stroke::new(2.5, colour));
            let kind = report
                .paths
                .iter()
                .find(|p| p.name == link.path)
                .map_or("?", |p| p.kind.as_str());
            let text = format!("{} ({kind})", link.path);
            let mid = Pos2::new((from.x + to.x) / 2.0, (from.y + to.y) / 2.0) + shift;
            let label = Rect::from_center_size(mid - Vec2::new(0.0, 9.0), Vec2::new(120.0, 18.0));
            let r = ui.put(
                label,
                egui::Label::new(RichText::new(&text).color(colour).small()),
            );
            let said = format!(
                "heartbeat {text} {} to {}: {}",
                report.node,
                peer.name,
                state_name(link.state)
            );
            r.widget_info(|| WidgetInfo::labeled(Role::Label, true, &said));
        }
    }
}

/// One server's box: name, state, and its services.
fn server_box(ui: &mut Ui, model: &mut Model, server: &Server<'_>, rect: Rect) {
    let colour = state_colour(server.state);
    ui.scope_builder(UiBuilder::new().max_rect(rect), |ui| {
        egui::Frame::group(ui.style())
            .fill(ui.visuals().panel_fill)
            .stroke(Stroke::new(2.0, colour))
            .show(ui, |ui| {
                ui.set_min_size(rect.size() - Vec2::splat(16.0));
                ui.label(RichText::new(server.name).strong().size(16.0));
                let here = if server.here { " (connected)" } else { "" };
                ui.label(
                    RichText::new(format!("{}{here}", state_name(server.state))).color(colour),
                );
                ui.separator();
                let mut clicked = None;
                for s in &model.services {
                    let Some(on) = s.nodes.iter().find(|n| n.node == server.name) else {
                        continue;
                    };
                    let selected = model.selected.as_deref() == Some(s.name.as_str());
                    let text = RichText::new(&s.name).color(service_colour(&on.state));
                    let r = ui
                        .add(egui::Button::selectable(selected, text))
                        .on_hover_text(&on.state);
                    let said = format!("{} on {}: {}", s.name, server.name, on.state);
                    r.widget_info(|| WidgetInfo::selected(Role::Button, true, selected, &said));
                    if r.clicked() {
                        clicked = Some(s.name.clone());
                    }
                }
                if clicked.is_some() {
                    model.selected = clicked;
                }
            });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_follow_the_manual() {
        for s in ["ACTIVE", "ACTIVEACT", "ACTIVESTB"] {
            assert_eq!(service_colour(s), GOLD, "{s}");
        }
        assert_eq!(service_colour("STANDBY"), GREEN);
        for s in ["ERRORACT", "ERRORSTB", "STALLED"] {
            assert_eq!(service_colour(s), RED, "{s}");
        }
        for s in ["OUTACT", "OUTSTB", "unknown", "STARTING"] {
            assert_eq!(service_colour(s), GREY, "{s}");
        }
        assert_eq!(state_colour(State::Up), GREEN);
        assert_eq!(state_colour(State::Down), RED);
    }

    #[test]
    fn more_than_two_servers_make_a_grid() {
        let cols: Vec<usize> = (1..=10).map(columns).collect();
        assert_eq!(cols, [1, 2, 2, 2, 3, 3, 3, 3, 3, 4]);
    }
}
