//! Ctrl-C (SIGINT), SIGTERM and SIGHUP at any moment of the walk-through:
//! a thread waits for the first of them and then runs the teardown it was
//! given, and the demo exits (code 130). The signals are caught with
//! handlers, not blocked, so that the daemons the demo starts inherit no
//! blocked signal mask.

use tokio::signal::unix::{SignalKind, signal};

/// Calls `teardown` (with the signal's name) in a thread when a signal
/// comes, then exits the process. The handlers are in place when this
/// returns; the thread's handle lets a caller wait for the signal.
pub fn on_signal(
    teardown: impl FnOnce(&str) + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| format!("cannot watch for Ctrl-C: {e}"))?;
    let err = |e: std::io::Error| format!("cannot watch for Ctrl-C: {e}");
    let (mut int, mut term, mut hup) = {
        let _in_rt = rt.enter();
        (
            signal(SignalKind::interrupt()).map_err(err)?,
            signal(SignalKind::terminate()).map_err(err)?,
            signal(SignalKind::hangup()).map_err(err)?,
        )
    };
    Ok(std::thread::spawn(move || {
        let name = rt.block_on(async {
            tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
                _ = hup.recv() => "SIGHUP",
            }
        });
        teardown(name);
        std::process::exit(130);
    }))
}
