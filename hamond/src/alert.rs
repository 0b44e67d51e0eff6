//! Alerts (Skybility's "user alert platform"): when an event at or above
//! the configured severity (emergency by default) is recorded, hamond runs
//! the configured hooks and mails the configured addresses, so that an
//! operator hears of a stall, a failed fence or a node reset.
//!
//! * A hook is a command (argument vector, no shell) run with the event as
//!   environment variables (`HA_EVENT_KIND`, `HA_EVENT_SEVERITY`,
//!   `HA_EVENT_NODE`, `HA_EVENT_SERVICE`, `HA_EVENT_WHAT`,
//!   `HA_EVENT_CAUSE`, `HA_EVENT_AT_MS`, `HA_EVENT_SUMMARY`) and as one JSON
//!   object on stdin. Exit 0 is success.
//! * Mail goes through the local sendmail (`sendmail -t -oi`, as every MTA
//!   on Debian provides it), with the summary as the subject and the JSON in
//!   the body.
//!
//! Every hook and mail has the same timeout, after which its process group
//! is killed. [`Alerts::fire`] never blocks the daemon: it starts the work in
//! the background and returns; while [`MAX_RUNNING`] alerts are still
//! running, further ones are dropped with an error log rather than piling
//! up. A failed hook is logged with what the operator can check.
//! [`Alerts::test`] runs them all now and reports each result
//! (`hactl alert test`).

use crate::helper;
use haschema::config::AlertsConfig;
use haschema::ctl;
use haschema::event::{Event, Severity};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Alerts running at once; more are dropped (and logged).
pub const MAX_RUNNING: usize = 8;

/// The alert hooks and mail of this node.
#[derive(Clone, Debug)]
pub struct Alerts {
    hooks: Vec<Vec<String>>,
    mail_to: Vec<String>,
    sendmail: String,
    timeout: Duration,
    min_severity: Severity,
    running: Arc<Semaphore>,
}

/// One hook's or mail's result, for `hactl alert test`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The hook's program, or `mail to ADDRESS,...`.
    pub target: String,
    pub result: Result<(), String>,
}

impl From<Delivery> for ctl::Delivery {
    fn from(d: Delivery) -> ctl::Delivery {
        ctl::Delivery {
            target: d.target,
            error: d.result.err(),
        }
    }
}

impl Alerts {
    /// Alerts for events at or above `min_severity`: `hooks` (argument
    /// vectors), mail to `mail_to` through `sendmail`, each with `timeout`.
    pub fn new(
        hooks: Vec<Vec<String>>,
        mail_to: Vec<String>,
        sendmail: String,
        timeout: Duration,
        min_severity: Severity,
    ) -> Alerts {
        Alerts {
            hooks,
            mail_to,
            sendmail,
            timeout,
            min_severity,
            running: Arc::new(Semaphore::new(MAX_RUNNING)),
        }
    }

    /// The alerts of the cluster config's `[alerts]` section; none when
    /// it is absent.
    pub fn from_config(config: Option<&AlertsConfig>) -> Alerts {
        match config {
            Some(c) => Alerts::new(
                c.hooks.clone(),
                c.mail.clone(),
                c.sendmail.to_string_lossy().into_owned(),
                c.timeout,
                c.severity,
            ),
            None => Alerts::new(
                Vec::new(),
                Vec::new(),
                String::new(),
                haschema::config::DEFAULT_ALERT_TIMEOUT,
                Severity::Emergency,
            ),
        }
    }

    /// Whether anything is configured.
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty() && self.mail_to.is_empty()
    }

    /// Alerts about `event` in the background if it is severe enough.
    /// Returns at once; must be called inside a tokio runtime.
    pub fn fire(&self, event: &Event) {
        if event.severity < self.min_severity || self.is_empty() {
            return;
        }
        let Ok(permit) = Arc::clone(&self.running).try_acquire_owned() else {
            tracing::error!(
                "alert for \"{}\" dropped: {MAX_RUNNING} alerts are still running; check that \
                 the alert hooks and sendmail finish quickly",
                event.summary()
            );
            return;
        };
        let alerts = self.clone();
        let event = event.clone();
        tokio::spawn(async move {
            for d in alerts.deliver(&event).await {
                if let Err(why) = d.result {
                    tracing::error!(
                        "alert for \"{}\" through {} failed: {why}; check the [alerts] section \
                         of the cluster config and run `hactl alert test`",
                        event.summary(),
                        d.target
                    );
                }
            }
            drop(permit);
        });
    }

    /// Alerts about `event` now, whatever its severity, and says how each
    /// hook and mail went.
    pub async fn test(&self, event: &Event) -> Vec<Delivery> {
        self.deliver(event).await
    }

    async fn deliver(&self, event: &Event) -> Vec<Delivery> {
        let json = serde_json::to_string(event).unwrap_or_default();
        let env = environment(event);
        let mut done = Vec::new();
        for hook in &self.hooks {
            let result = helper::run(hook, &env, json.as_bytes(), self.timeout).await;
            done.push(Delivery {
                target: hook.first().cloned().unwrap_or_default(),
                result: verdict(result),
            });
        }
        if !self.mail_to.is_empty() {
            let argv = [self.sendmail.clone(), "-t".into(), "-oi".into()];
            let message = mail(event, &self.mail_to, &json);
            let result = helper::run(&argv, &[], message.as_bytes(), self.timeout).await;
            done.push(Delivery {
                target: format!("mail to {}", self.mail_to.join(",")),
                result: verdict(result),
            });
        }
        done
    }
}

fn verdict(result: Result<helper::Finished, helper::RunError>) -> Result<(), String> {
    match result {
        Ok(f) if f.code == Some(0) => Ok(()),
        Ok(f) => {
            let how = f
                .code
                .map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit {c}"));
            let said = f.stderr.lines().rev().find(|l| !l.trim().is_empty());
            Err(match said {
                Some(line) => format!("{how}: {line}"),
                None => how,
            })
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The event as environment variables for a hook.
fn environment(event: &Event) -> Vec<(String, String)> {
    let var = |k: &str, v: &str| (format!("HA_EVENT_{k}"), v.to_owned());
    vec![
        var("KIND", event.kind.as_str()),
        var("SEVERITY", event.severity.as_str()),
        var("NODE", &event.node),
        var("SERVICE", event.service.as_deref().unwrap_or("")),
        var("WHAT", &event.what),
        var("CAUSE", &event.cause),
        var("AT_MS", &event.at_ms.to_string()),
        var("SUMMARY", &event.summary()),
    ]
}

/// The mail for sendmail -t: headers, a blank line, the body. Header values
/// are kept to one line.
fn mail(event: &Event, to: &[String], json: &str) -> String {
    let one_line = |s: String| s.replace(['\r', '\n'], " ");
    format!(
        "To: {}\nSubject: {}\nContent-Type: text/plain; charset=utf-8\n\n{}\n\n{json}\n",
        one_line(to.join(", ")),
        one_line(format!(
            "[hacluster {}] {}",
            event.severity.as_str(),
            event.summary()
        )),
        event.summary()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use haschema::config::DEFAULT_SENDMAIL;
    use haschema::event::EventKind;
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::Path;

    fn event(severity: Severity) -> Event {
        Event::now("alpha", EventKind::Stall, severity, "www is stalled")
            .about("www")
            .because("beta lost and not fenced")
    }

    fn script(dir: &Path, name: &str, body: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn alerts(hooks: Vec<Vec<String>>, mail_to: Vec<String>, sendmail: String) -> Alerts {
        let timeout = Duration::from_secs(2);
        Alerts::new(hooks, mail_to, sendmail, timeout, Severity::Emergency)
    }

    #[test]
    fn the_config_section_sets_the_alerts() {
        assert!(Alerts::from_config(None).is_empty());
        let config = AlertsConfig {
            hooks: vec![vec!["/bin/true".into()]],
            mail: vec!["ops@example.com".into()],
            sendmail: DEFAULT_SENDMAIL.into(),
            timeout: Duration::from_secs(5),
            severity: Severity::Warning,
        };
        let a = Alerts::from_config(Some(&config));
        assert!(!a.is_empty());
        assert_eq!(
            (
                a.hooks,
                a.mail_to,
                a.sendmail.as_str(),
                a.timeout,
                a.min_severity
            ),
            (
                config.hooks,
                config.mail,
                DEFAULT_SENDMAIL,
                config.timeout,
                Severity::Warning
            )
        );
        let d = Delivery {
            target: "/bin/false".into(),
            result: Err("exit 1".into()),
        };
        assert_eq!(
            ctl::Delivery::from(d),
            ctl::Delivery {
                target: "/bin/false".into(),
                error: Some("exit 1".into())
            }
        );
    }

    #[test]
    fn a_hook_gets_the_event_in_its_environment_and_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let hook = script(
            dir.path(),
            "hook",
            &format!(
                "{{ echo \"$HA_EVENT_KIND $HA_EVENT_SEVERITY $HA_EVENT_SERVICE $HA_EVENT_NODE\"; \
                 cat; }} > {}",
                out.display()
            ),
        );
        let a = alerts(vec![vec![hook.clone()]], vec![], DEFAULT_SENDMAIL.into());
        let e = event(Severity::Emergency);
        let done = runtime().block_on(a.test(&e));
        assert_eq!(
            done,
            [Delivery {
                target: hook,
                result: Ok(())
            }]
        );
        let got = std::fs::read_to_string(&out).unwrap();
        let (env, json) = got.split_once('\n').unwrap();
        assert_eq!(env, "stall emergency www alpha");
        let back: Event = serde_json::from_str(json).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn failures_and_timeouts_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let fails = script(dir.path(), "fails", "echo 'no route to pager' >&2; exit 3");
        let hangs = script(dir.path(), "hangs", "sleep 60");
        let a = alerts(
            vec![vec![fails], vec![hangs], vec!["/nonexistent/hook".into()]],
            vec![],
            DEFAULT_SENDMAIL.into(),
        );
        let done = runtime().block_on(a.test(&event(Severity::Info)));
        let results: Vec<Result<(), String>> = done.into_iter().map(|d| d.result).collect();
        assert_eq!(results[0], Err("exit 3: no route to pager".into()));
        assert!(
            results[1].as_ref().unwrap_err().contains("killed"),
            "{results:?}"
        );
        assert!(results[2].as_ref().unwrap_err().contains("cannot start"));
    }

    #[test]
    fn mail_goes_through_sendmail_with_a_one_line_subject() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("mail");
        let sendmail = script(
            dir.path(),
            "sendmail",
            &format!("echo \"$@\" > {0}; cat >> {0}", out.display()),
        );
        let a = alerts(vec![], vec!["ops@example.com".into()], sendmail);
        let mut e = event(Severity::Emergency);
        e.what = "two\nlines".into();
        let done = runtime().block_on(a.test(&e));
        assert_eq!(done[0].target, "mail to ops@example.com");
        assert_eq!(done[0].result, Ok(()));
        let mail = std::fs::read_to_string(&out).unwrap();
        let mut lines = mail.lines();
        assert_eq!(lines.next(), Some("-t -oi"));
        assert_eq!(lines.next(), Some("To: ops@example.com"));
        let subject = lines.next().unwrap();
        assert!(subject.starts_with("Subject: [hacluster emergency] alpha stall www: two lines"));
    }

    #[test]
    fn fire_runs_only_severe_enough_events_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("fired");
        let hook = script(
            dir.path(),
            "hook",
            &format!("echo \"$HA_EVENT_SEVERITY\" >> {}", out.display()),
        );
        let a = alerts(vec![vec![hook]], vec![], DEFAULT_SENDMAIL.into());
        runtime().block_on(async {
            a.fire(&event(Severity::Warning));
            a.fire(&event(Severity::Emergency));
            // Bounded wait for the background hook.
            for _ in 0..200 {
                if a.running.available_permits() == MAX_RUNNING && out.exists() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        });
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "emergency\n");
    }
}
