//! The operator's per-service choices on this node, kept across hasvrd
//! restarts (a crash, a `kill -9`, an upgrade, hamond restarting it):
//! `bring-out` (the service is left as it is, neither watched nor moved)
//! and `stop` (stopped, then brought out everywhere until `bring-in`), and
//! `bring-in` of a service whose `onstart = false` would otherwise come back
//! brought out. Without them a restarted hasvrd would follow `onstart`, and
//! start again a service the operator stopped for maintenance.
//!
//! They live in a small file of hasvrd's state directory, `operator.NODE`,
//! one line per service whose choice differs from what its `onstart`
//! gives, `SERVICE in|out|stopped`, written atomically (temp file, fsync,
//! rename: `haschema::private_file`) as soon as a choice changes, so before
//! the command is acknowledged. A restarted hasvrd builds each machine from
//! it before it asks for any lock; `bring-in` clears the line (when
//! `onstart` brings the service in), and a service forgotten by a reload
//! loses its line. Cleanup does not change it.

use hasvrd::service::{Service, Time};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// What the operator chose for a service here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Brought in: watched and moved.
    In,
    /// Brought out: left as it is, neither watched nor moved.
    Out,
    /// Stopped (proven) and brought out until `bring-in`.
    Stopped,
}

impl Choice {
    /// The choice of a machine that is brought in (`managed`) or not, and
    /// `stopped` or not.
    pub fn of(managed: bool, stopped: bool) -> Choice {
        match (stopped, managed) {
            (true, _) => Choice::Stopped,
            (false, true) => Choice::In,
            (false, false) => Choice::Out,
        }
    }

    /// What a service whose `onstart` is that starts as, without a choice.
    fn default_for(onstart: bool) -> Choice {
        if onstart { Choice::In } else { Choice::Out }
    }

    /// The choice as it is kept: None when it is the `onstart` default.
    pub fn kept(self, onstart: bool) -> Option<Choice> {
        (self != Choice::default_for(onstart)).then_some(self)
    }

    /// Whether a machine restored with `choice` (None: none kept) starts
    /// brought in: the `onstart` its settings are built with.
    pub fn onstart(choice: Option<Choice>, onstart: bool) -> bool {
        choice.unwrap_or(Choice::default_for(onstart)) == Choice::In
    }

    fn as_str(self) -> &'static str {
        match self {
            Choice::In => "in",
            Choice::Out => "out",
            Choice::Stopped => "stopped",
        }
    }

    fn parse(s: &str) -> Option<Choice> {
        Some(match s {
            "in" => Choice::In,
            "out" => Choice::Out,
            "stopped" => Choice::Stopped,
            _ => return None,
        })
    }
}

/// Restores at `now` on `service`'s new machine `svc` the operator's
/// `choice` kept for it (the `onstart` it was built with came from
/// [`Choice::onstart`]), and says so.
pub fn restore(svc: &mut Service, service: &str, choice: Option<Choice>, now: Time) {
    match choice {
        None => {}
        Some(Choice::In) => tracing::info!(
            "service {service}: brought in by the operator before hasvrd restarted: watched and \
             moved"
        ),
        Some(Choice::Out) => tracing::warn!(
            "service {service}: brought out by the operator before hasvrd restarted: left as it \
             is here ({}), neither watched nor moved, until `hactl service bring-in {service}`",
            svc.state()
        ),
        Some(Choice::Stopped) => {
            svc.restore_stopped(now);
            tracing::warn!(
                "service {service}: stopped by the operator before hasvrd restarted: it stays \
                 stopped here until `hactl service bring-in {service}`"
            );
        }
    }
}

/// The file for node `me` in `state_dir`.
pub fn path(state_dir: &Path, me: &str) -> PathBuf {
    state_dir.join(format!("operator.{me}"))
}

/// Reads the choices stored in `path` (none when there is no file yet).
fn read(path: &Path) -> Result<BTreeMap<String, Choice>, String> {
    let lines = crate::service_lines::read(
        path,
        "the operator's service choices file",
        "SERVICE in|out|stopped",
        "fix the line, or remove the file (every service then follows its `onstart`)",
        Choice::parse,
    )?;
    Ok(lines.into_iter().collect())
}

/// The choices as last stored, and where.
pub struct Saved {
    path: PathBuf,
    choices: BTreeMap<String, Choice>,
}

impl Saved {
    /// Reads `path`: the store, and whether the file could be read. An
    /// unreadable file is an error the caller logs; nothing is restored
    /// then.
    pub fn load(path: PathBuf) -> (Saved, Result<(), String>) {
        let (choices, result) = match read(&path) {
            Ok(choices) => (choices, Ok(())),
            Err(e) => (BTreeMap::new(), Err(e)),
        };
        (Saved { path, choices }, result)
    }

    /// The choice kept for `service`, if any (a line of a service this
    /// node does not run is never asked for, so it is ignored).
    pub fn restored(&self, service: &str) -> Option<Choice> {
        self.choices.get(service).copied()
    }

    /// `service`'s choice is now `kept` ([`Choice::kept`]; None: forgotten
    /// or the default): the file is written again if that changed. A
    /// failed write is logged with what to do, and tried again at the next
    /// change.
    pub fn note(&mut self, service: &str, kept: Option<Choice>) {
        if self.choices.get(service).copied() == kept {
            return;
        }
        match kept {
            Some(choice) => self.choices.insert(service.to_owned(), choice),
            None => self.choices.remove(service),
        };
        if let Err(e) = self.write() {
            tracing::error!(
                severity = "crit",
                "cannot write {}: {e}; make hasvrd's --state-dir writable (until then a restart \
                 of hasvrd forgets the bring-out and stop of services here and follows their \
                 `onstart`)",
                self.path.display()
            );
        }
    }

    /// Drops (and logs) the choices of services for which `known` is
    /// false: their files were removed while hasvrd was not running.
    pub fn retain(&mut self, known: impl Fn(&str) -> bool) {
        let gone: Vec<String> = self.choices.keys().filter(|s| !known(s)).cloned().collect();
        for service in gone {
            tracing::info!(
                "service {service}: not a service of this node any more: its kept choice is \
                 dropped from {}",
                self.path.display()
            );
            self.note(&service, None);
        }
    }

    fn write(&self) -> std::io::Result<()> {
        let mut text = String::new();
        for (service, choice) in &self.choices {
            let _ = writeln!(text, "{service} {}", choice.as_str());
        }
        haschema::private_file::write(&self.path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use haschema::config::ClusterConfig;
    use haschema::service::ServiceConfig;
    use hasvrd::service::{Input, Output, Settings, State, Status, Step};

    /// The sample `vip` service (alpha active, beta standby), with
    /// `onstart`.
    fn vip() -> ServiceConfig {
        let cluster = ClusterConfig::parse(
            include_str!("../../../../etc/cluster.toml"),
            Path::new("/etc/hacluster/cluster.toml"),
        )
        .expect("the sample cluster");
        ServiceConfig::parse(
            include_str!("../../../../etc/services/vip.toml"),
            Path::new("/etc/hacluster/services/vip.toml"),
            &cluster,
        )
        .map(|cfg| ServiceConfig {
            onstart: true,
            ..cfg
        })
        .expect("the sample service")
    }

    /// alpha's machine of a restarted hasvrd that found `up` steps up,
    /// `owned` or not, restored with `choice` as the daemon does; and its
    /// outputs up to its first probe's answer.
    fn restarted(choice: Option<Choice>, owned: bool, up: usize) -> (Service, Vec<Output>) {
        let cfg = vip();
        let mut settings = Settings::from_config(&cfg, true);
        settings.onstart = Choice::onstart(choice, cfg.onstart);
        let now = Time::ZERO;
        let mut svc = Service::restored(settings, "alpha", now, owned, up, None);
        restore(&mut svc, "vip", choice, now);
        let mut outputs: Vec<Output> = std::iter::from_fn(|| svc.poll()).collect();
        // The first probe finds the application as the restart did.
        let status = if up == Step::ORDER.len() {
            Status::Running
        } else {
            Status::NotRunning
        };
        svc.handle(now, Input::StatusProbe(status));
        outputs.extend(std::iter::from_fn(|| svc.poll()));
        (svc, outputs)
    }

    fn requests(outputs: &[Output]) -> bool {
        outputs
            .iter()
            .any(|o| matches!(o, Output::RequestOwnership { .. }))
    }

    #[test]
    fn a_restored_choice_never_asks_for_the_lock_nor_restarts_what_runs() {
        let (_, outputs) = restarted(None, false, 0);
        assert!(requests(&outputs), "onstart asks: {outputs:?}");

        let (svc, outputs) = restarted(Some(Choice::Out), false, 0);
        assert!(!requests(&outputs), "{outputs:?}");
        assert_eq!(svc.state(), State::OutStb);

        // Held and running here: adopted as it is, nothing started or
        // stopped, not watched.
        let (svc, outputs) = restarted(Some(Choice::Out), true, Step::ORDER.len());
        assert!(
            outputs
                .iter()
                .all(|o| matches!(o, Output::Probe | Output::StateChanged { .. })),
            "{outputs:?}"
        );
        assert_eq!(svc.state(), State::OutAct);
        assert!(!svc.running_here(), "watched");

        let (svc, outputs) = restarted(Some(Choice::Stopped), false, 0);
        assert!(!requests(&outputs), "{outputs:?}");
        assert_eq!(svc.state(), State::OutStb);
        assert!(svc.stopped() && !svc.managed());

        // A stop cut short by the restart goes on.
        let (svc, outputs) = restarted(Some(Choice::Stopped), true, Step::ORDER.len());
        assert!(!requests(&outputs), "{outputs:?}");
        assert!(
            outputs.contains(&Output::Stop(Step::Application)),
            "{outputs:?}"
        );
        assert!(svc.stopped());
    }

    #[test]
    fn choices_survive_a_restart_and_defaults_are_not_kept() {
        let dir = hatests::scratch::ScratchDir::new("operator");
        let file = path(dir.path(), "alpha");
        let (mut saved, read) = Saved::load(file.clone());
        assert_eq!(read, Ok(()), "no file: nothing kept");
        assert_eq!(saved.restored("www"), None);
        saved.note("www", Choice::of(false, false).kept(true));
        saved.note("db", Choice::of(false, true).kept(true));
        saved.note("nfs", Choice::of(true, false).kept(false));
        saved.note("ftp", Choice::of(true, false).kept(true));
        let (again, read) = Saved::load(file.clone());
        assert_eq!(read, Ok(()));
        assert_eq!(again.restored("www"), Some(Choice::Out));
        assert_eq!(again.restored("db"), Some(Choice::Stopped));
        assert_eq!(again.restored("nfs"), Some(Choice::In));
        assert_eq!(again.restored("ftp"), None, "the onstart default");
        // Brought in again (onstart), and forgotten: cleared.
        saved.note("www", Choice::In.kept(true));
        saved.note("db", None);
        let (after, _) = Saved::load(file);
        assert_eq!(after.restored("www"), None);
        assert_eq!(after.restored("db"), None);
        assert_eq!(after.restored("nfs"), Some(Choice::In));
    }

    #[test]
    fn a_restored_choice_decides_onstart() {
        assert!(Choice::onstart(None, true));
        assert!(!Choice::onstart(None, false));
        assert!(Choice::onstart(Some(Choice::In), false));
        assert!(!Choice::onstart(Some(Choice::Out), true));
        assert!(!Choice::onstart(Some(Choice::Stopped), true));
    }

    #[test]
    fn a_corrupt_file_is_an_error_that_says_what_to_do_and_restores_nothing() {
        let dir = hatests::scratch::ScratchDir::new("operator");
        let file = path(dir.path(), "alpha");
        haschema::private_file::write(&file, b"www out\ndb paused\n").unwrap();
        let (saved, read) = Saved::load(file);
        let e = read.unwrap_err();
        assert!(
            e.contains("line 2") && e.contains("`db paused`") && e.contains("remove the file"),
            "{e}"
        );
        assert_eq!(saved.restored("www"), None, "nothing restored");
    }

    #[test]
    fn a_line_of_an_unknown_service_is_ignored_then_dropped() {
        let dir = hatests::scratch::ScratchDir::new("operator");
        let file = path(dir.path(), "alpha");
        haschema::private_file::write(&file, b"gone out\nwww stopped\n").unwrap();
        let (mut saved, read) = Saved::load(file);
        assert_eq!(read, Ok(()));
        assert_eq!(saved.restored("www"), Some(Choice::Stopped));
        assert_eq!(saved.restored("other"), None);
        saved.retain(|s| s == "www");
        let (again, _) = Saved::load(path(dir.path(), "alpha"));
        assert_eq!(again.restored("gone"), None, "dropped");
        assert_eq!(again.restored("www"), Some(Choice::Stopped));
    }
}
