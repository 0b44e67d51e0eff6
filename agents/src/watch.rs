//! The loop every agent runs: open the service, check it every interval
//! (under the timeout), report `ok` or, after enough failures in a row,
//! `err`, and `close` on SIGTERM or SIGINT.

use crate::checks::Check;
use haapi::Client;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::MissedTickBehavior;

/// What the loop needs besides the check.
#[derive(Debug, Clone)]
pub struct Settings {
    pub service: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// Failed checks in a row before `err`; at least 1.
    pub failures: u32,
}

/// Why an agent stopped before it was told to.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot read the agent API settings: {0}; fix HA_AGENT_SOCKET or HA_AGENT_GRACE")]
    Config(haapi::Error),
    #[error(
        "service {service}: {call} failed: {source}; the service is no longer watched by this \
         agent: check that hasvrd runs and that {service} is one of its services \
         (/etc/hacluster/services)"
    )]
    Api {
        service: String,
        call: &'static str,
        source: haapi::Error,
    },
    #[error("cannot catch {0}: {1}")]
    Signal(&'static str, std::io::Error),
}

/// Consecutive failures, and whether this outage was reported.
#[derive(Debug, Default)]
struct Outage {
    failures: u32,
    reported: bool,
}

/// Runs the agent until SIGTERM or SIGINT (then `close`, `Ok`) or until
/// hasvrd refuses a request or stays unreachable past the client's grace
/// period (`Err`: the agent exits, which hasvrd counts as a failure while
/// the service is open).
pub async fn watch<C: Check>(settings: &Settings, check: &C) -> Result<(), WatchError> {
    let client = Client::from_env().map_err(WatchError::Config)?;
    let service = settings.service.as_str();
    let api = |call: &'static str, result: Result<(), haapi::Error>| {
        result.map_err(|source| WatchError::Api {
            service: service.to_owned(),
            call,
            source,
        })
    };
    let mut term = signal(SignalKind::terminate()).map_err(|e| WatchError::Signal("SIGTERM", e))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| WatchError::Signal("SIGINT", e))?;
    api("open", client.open(service))?;
    tracing::info!(
        "service {service}: watching, a check every {:?} (timeout {:?}, err after {} failed in a row), \
         reporting to {}",
        settings.interval,
        settings.timeout,
        settings.failures,
        client.socket().display()
    );
    let mut ticks = tokio::time::interval(settings.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut outage = Outage::default();
    loop {
        let result = tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            result = async {
                ticks.tick().await;
                tokio::time::timeout(settings.timeout, check.check(settings.timeout)).await
            } => result.unwrap_or_else(|_| {
                Err(format!("no answer within the timeout of {:?}: check killed", settings.timeout))
            }),
        };
        match result {
            Ok(()) => {
                if outage.failures > 0 {
                    tracing::info!("service {service}: the check passes again");
                }
                outage = Outage::default();
                api("ok", client.ok(service))?;
                tracing::debug!("service {service}: ok");
            }
            Err(reason) => {
                outage.failures = outage.failures.saturating_add(1);
                tracing::warn!(
                    "service {service}: check failed ({} of {} before the service is reported \
                     failed): {reason}",
                    outage.failures.min(settings.failures),
                    settings.failures
                );
                if outage.failures >= settings.failures && !outage.reported {
                    api("err", client.err(service, &reason))?;
                    outage.reported = true;
                    tracing::error!(
                        "service {service}: reported failed to hasvrd ({reason}); it restarts \
                         the service or moves it as restart_times says: see hasvrd's log and \
                         `hactl service status`"
                    );
                }
            }
        }
    }
    api("close", client.close(service))?;
    tracing::info!("service {service}: stopped watching (closed)");
    Ok(())
}
