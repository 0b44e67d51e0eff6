//! hagui: the admin console. `hagui [HOST:PORT]` opens the window, with
//! the Connect dialog filled in when a server is given. Servers'
//! certificates are pinned in the same known-hosts file as `hactl
//! --remote` uses.

use hagui::Console;
use hamond::admin::client::default_known_hosts;
use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let server = std::env::args().nth(1);
    let Some(known_hosts) = default_known_hosts() else {
        tracing::error!("hagui: cannot tell where to keep known hosts: set HOME or HA_KNOWN_HOSTS");
        return ExitCode::FAILURE;
    };
    let mut console = match Console::new(known_hosts) {
        Ok(console) => console,
        Err(e) => {
            tracing::error!("hagui: cannot start the client thread: {e}; check the process limits");
            return ExitCode::FAILURE;
        }
    };
    console.offer_connect(server.unwrap_or_default());
    let options = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("hagui: HA cluster console")
            .with_inner_size([900.0, 640.0]),
        ..Default::default()
    };
    match eframe::run_native("hagui", options, Box::new(|_| Ok(Box::new(App(console))))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(
                "hagui: cannot open the window: {e}; is there a display (DISPLAY) and OpenGL?"
            );
            ExitCode::FAILURE
        }
    }
}

/// The console as an eframe application.
struct App(Console);

impl eframe::App for App {
    fn ui(&mut self, ui: &mut eframe::egui::Ui, _frame: &mut eframe::Frame) {
        self.0.ui(ui);
    }
}
