//! The event timeline: the failovers of the cluster's history, newest
//! first, each with its time, service, node and cause, and a bar of its
//! phases (detection, fencing, stop, start) whose lengths are their
//! durations, on one scale for all the bars so that they compare.

use crate::model::Model;
use crate::panel::{GREEN, GREY, RED};
use eframe::egui::{self, Color32, Rect, Role, Sense, Ui, Vec2, WidgetInfo};
use haschema::ctl::show_time;
use haschema::event::Event;

/// The stop phase (a colour of its own, apart from the services' states).
const STOP_BLUE: Color32 = Color32::from_rgb(70, 110, 200);
/// Rows visible at once.
const VISIBLE_ROWS: f32 = 6.0;
/// Height of one bar.
const BAR_HEIGHT: f32 = 12.0;
/// Width of the longest bar.
const BAR_WIDTH: f32 = 320.0;

/// The colour of a phase, by its name; others grey.
pub fn phase_colour(name: &str) -> Color32 {
    match name {
        "detection" => Color32::from_rgb(220, 140, 0),
        "fencing" => RED,
        "stop" => STOP_BLUE,
        "start" => GREEN,
        _ => GREY,
    }
}

/// The phases of the legend.
const LEGEND: [&str; 4] = ["detection", "fencing", "stop", "start"];

/// Draws the timeline.
pub fn show(ui: &mut Ui, model: &Model) {
    ui.horizontal(|ui| {
        ui.strong("Failovers");
        for name in LEGEND {
            let (swatch, _) = ui.allocate_exact_size(Vec2::splat(BAR_HEIGHT), Sense::hover());
            ui.painter().rect_filled(swatch, 0.0, phase_colour(name));
            ui.label(name);
        }
    });
    if model.failovers.is_empty() {
        ui.label("no failover recorded");
        return;
    }
    let longest = model
        .failovers
        .iter()
        .filter_map(|e| e.duration())
        .max()
        .map_or(1, |d| d.as_millis().max(1)) as f32;
    let height = ui.text_style_height(&egui::TextStyle::Body) * VISIBLE_ROWS;
    egui::ScrollArea::vertical()
        .max_height(height)
        .auto_shrink([false, true])
        .show(ui, |ui| {
            for event in model.failovers.iter().rev() {
                ui.horizontal(|ui| row(ui, event, longest));
            }
        });
}

/// One failover: its bar, then what happened.
fn row(ui: &mut Ui, event: &Event, longest_ms: f32) {
    let (rect, response) = ui.allocate_exact_size(Vec2::new(BAR_WIDTH, BAR_HEIGHT), Sense::hover());
    let scale = BAR_WIDTH / longest_ms;
    let mut x = rect.left();
    for phase in &event.phases {
        let width = phase.ms as f32 * scale;
        let part = Rect::from_min_size(egui::pos2(x, rect.top()), Vec2::new(width, BAR_HEIGHT));
        ui.painter()
            .rect_filled(part, 0.0, phase_colour(&phase.name));
        x += width;
    }
    let summary = event.summary();
    response.widget_info(|| WidgetInfo::labeled(Role::Image, true, &summary));
    let total = event
        .duration()
        .map_or_else(|| "-".to_owned(), |d| format!("{} ms", d.as_millis()));
    ui.label(format!(
        "{}  {}  {}: {} ({total})",
        show_time(event.at_ms),
        event.service.as_deref().unwrap_or("-"),
        event.node,
        if event.cause.is_empty() {
            event.what.clone()
        } else {
            format!("{}, {}", event.what, event.cause)
        }
    ))
    .on_hover_text(&summary);
}
