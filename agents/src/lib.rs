//! The monitoring agents hacluster ships: one binary per service type
//! (`generic`, `www`, `mysql`, `oracle`, `sybase`, `informix`, `db2`,
//! `nfs`), installed as `/usr/lib/hacluster/agents/NAME` and named by a
//! service file's `agent = [...]`.
//!
//! Every agent is the same loop ([`watch`]) around its own check
//! ([`checks`]): it opens its service on hasvrd's agent socket (`apiopen`),
//! checks the application every `--interval` with a `--timeout`, sends `ok`
//! (`apiok`) after each check that passes and `err REASON` (`apierr`) once
//! `--failures` checks in a row have failed, and says `close` (`apiclose`)
//! when it gets SIGTERM or SIGINT. Vendor tools are run by [`command`]:
//! argument vectors, in their own process group, killed as a group at the
//! timeout. [`cli`] holds the flags every agent shares and its `main`.

pub mod checks;
pub mod cli;
pub mod command;
pub mod watch;

pub use checks::Check;
pub use cli::main;
