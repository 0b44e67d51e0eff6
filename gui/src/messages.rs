//! The message bar: the console's INFO, WARNING and ERROR lines, newest at
//! the bottom, each tagged and coloured by its level.

use crate::model::{Level, Message, Model};
use eframe::egui::{self, Color32, RichText, Ui};

/// Lines of the bar visible at once.
const VISIBLE_LINES: f32 = 5.0;

fn colour(ui: &Ui, level: Level) -> Color32 {
    match level {
        Level::Info => ui.visuals().text_color(),
        Level::Warning => Color32::from_rgb(220, 140, 0),
        Level::Error => crate::panel::RED,
    }
}

/// One line as shown (and as screen readers read it).
pub fn line(m: &Message) -> String {
    format!("{}: {}", m.level.tag(), m.text)
}

/// Draws the bar.
pub fn show(ui: &mut Ui, model: &Model) {
    let height = ui.text_style_height(&egui::TextStyle::Body) * VISIBLE_LINES;
    egui::ScrollArea::vertical()
        .max_height(height)
        .stick_to_bottom(true)
        .auto_shrink([false, true])
        .show(ui, |ui| {
            for m in &model.messages {
                ui.label(RichText::new(line(m)).color(colour(ui, m.level)));
            }
        });
}
