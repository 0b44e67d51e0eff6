//! Agent heartbeats: the server side of the agent API (SureHA's
//! `apiopen`/`apiok`/`apierr`/`apiclose`/`apicmd`, spoken by `libhaapi.so`,
//! the `haapi` shell tool, or `socat`), and Skyge's user heartbeat.
//!
//! The line protocol itself is [`haschema::agent`]: `open NAME`, `ok NAME`,
//! `err NAME [reason...]`, `close NAME`, `cmd BRINGIN|BRINGOUT|FAILOVER
//! NAME` on a unix socket (`/run/hacluster/agent.sock`), each answered by
//! `ok` or `error <message>`.
//!
//! * [`watch`]: what the requests mean, as a pure state machine with the
//!   time passed in ([`Watch`]): after `open` (or an `ok`), a service's
//!   agent must send `ok` at least every `check_interval x check_tko`, or
//!   the application counts as failed, "silent (fake alive)"; `err` is a
//!   failure with the agent's reason; an agent hasvrd started that exits
//!   while open is a failure too; `close` ends the watch. The watch also
//!   turns `cmd` into [`Event::Command`]s for the service logic.
//! * [`server`]: the socket ([`Agents`]), with one tokio task owning the
//!   watch and its timer.
//!
//! # Who may send what
//!
//! Each connection's peer is read with SO_PEERCRED. Heartbeats (`open`,
//! `ok`, `err`, `close`) are accepted from **any local process**: the
//! bundled agents, like SureHA's, run as root, but a user heartbeat comes
//! from the application itself, under its own uid, so the socket is mode
//! 0666. `cmd` (bring in, bring out, fail over) is accepted only from root
//! or a member of the admin group hasvrd is given (the cluster's
//! `control_group`), counting supplementary groups: the same check as
//! hamond's control socket ([`haschema::access`]). A local user can
//! therefore report a service as failed (`err`), but cannot move one on
//! purpose. At most [`server::MAX_USER_CLIENTS`] non-root connections are
//! served at once; root's are never refused.
//!
//! # User heartbeat
//!
//! Skyge's user heartbeat (`sk_user_heartbeat`: the application pulses the
//! cluster itself, so that a process that still exists but no longer works
//! is noticed) is the same mechanism: the application opens its service and
//! sends `ok` from its main loop; if the loop hangs, the `ok`s stop and the
//! service fails as silent, exactly as with an agent.

pub mod server;
pub mod watch;

pub use server::Agents;
pub use watch::{Client, Event, FailCause, Time, Watch, WatchParams, WatchState};
