//! `hactl --remote HOST:PORT ...`: the request goes to a node's admin
//! endpoint over TLS instead of the local socket. The server certificate is
//! pinned on first use in the known-hosts file (`$HA_KNOWN_HOSTS`, else
//! `~/.config/hacluster/known_hosts`); the admin password comes from
//! `$HA_ADMIN_PASSWORD` or a prompt.

use hamond::admin::client::{Client, default_known_hosts};
use haschema::ctl::{Request, Response};
use std::time::Duration;

/// Environment variable holding the admin password.
pub const PASSWORD_ENV: &str = "HA_ADMIN_PASSWORD";
/// Longest wait for a connection or an answer.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Logs in on `server` and sends one request.
pub fn call(server: &str, request: &Request) -> Result<Response, String> {
    let known_hosts = default_known_hosts().ok_or_else(|| {
        "cannot tell where to keep known hosts: set HOME or HA_KNOWN_HOSTS".to_owned()
    })?;
    let mut client = Client::connect(server, &known_hosts, TIMEOUT)?;
    if let Some(fp) = &client.first_use {
        eprintln!(
            "hactl: first connection to {server}: trusting its certificate, SHA-256 {fp} \
             (recorded in {})",
            known_hosts.display()
        );
    }
    let password = match std::env::var(PASSWORD_ENV) {
        Ok(p) => p,
        Err(_) => rpassword::prompt_password(format!("Admin password for {server}: "))
            .map_err(|e| format!("cannot read the password (or set {PASSWORD_ENV}): {e}"))?,
    };
    client.login(&password)?;
    client.call(request)
}
