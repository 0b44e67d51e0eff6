//! `hactl service ...`: the services, through hasvrd's control socket.
//! `status` shows each service's owner and its state on each of its nodes,
//! and sums them up for monitoring; every other subcommand is one
//! [`ServiceOp`], generated from [`ServiceOp::ALL`] so that all of them go
//! through one code path.

use clap::error::{Error, ErrorKind};
use clap::{Arg, ArgAction, ArgMatches, Command, FromArgMatches, Subcommand};
use haschema::ctl::{Health, ServiceOp, ServiceStatus};
use std::fmt::Write;

/// The exit codes of `hactl service status`, shown in its help.
const EXIT_CODES: &str = "\
Exit code (Nagios convention), the worst over every service:
  0  OK: every service has an owner, is ACTIVE or ACTIVESTB there and
     active on no other node; no node shows an error
  1  WARNING: a service is held but degraded: ACTIVEACT (no other node is
     able to take it over), brought out (OUTACT, OUTSTB), or not seen
     active on its owner (yet)
  2  CRITICAL: a service has no owner (it runs nowhere), is active on more
     than one node, or some node shows ERRORACT, ERRORSTB or STALLED
  3  UNKNOWN: hasvrd unreachable or refused";

/// `hactl service` subcommands: `status`, or one per [`ServiceOp`] (named
/// by [`ServiceOp::as_str`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceCommand {
    Status {
        json: bool,
    },
    /// `node`: `cleanup SERVICE NODE` cleans up that node alone.
    Op {
        op: ServiceOp,
        service: String,
        node: Option<String>,
    },
    /// `remove SERVICE`: its file removed on every node (hamond's
    /// configuration replication).
    Remove(crate::config::ServiceRemove),
}

/// The one-line help of an operator's command.
fn about(op: ServiceOp) -> &'static str {
    match op {
        ServiceOp::BringIn => {
            "Bring SERVICE back under cluster control (watched, moved on failure)"
        }
        ServiceOp::BringOut => {
            "Take SERVICE out of cluster control: left as it is, neither watched nor moved"
        }
        ServiceOp::TakeOver => "Move SERVICE to this node",
        ServiceOp::FailOver => "Move SERVICE away from the node that holds it",
        ServiceOp::SwitchbackOn => {
            "Let SERVICE go back by itself to a node it prefers when that node returns"
        }
        ServiceOp::SwitchbackOff => "Keep SERVICE where it is when a node it prefers returns",
        ServiceOp::Cleanup => {
            "Forget SERVICE's failures and clear its error once the cause is fixed, on every \
             node of SERVICE or on NODE alone"
        }
        ServiceOp::Stop => {
            "Stop SERVICE where it runs (proven stopped) and keep it stopped everywhere until \
             bring-in"
        }
    }
}

impl FromArgMatches for ServiceCommand {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, Error> {
        match matches.subcommand() {
            Some(("status", sub)) => Ok(ServiceCommand::Status {
                json: sub.get_flag("json"),
            }),
            Some(("remove", sub)) => {
                crate::config::ServiceRemove::from_arg_matches(sub).map(ServiceCommand::Remove)
            }
            Some((name, sub)) => {
                let op = ServiceOp::ALL
                    .into_iter()
                    .find(|op| op.as_str() == name)
                    .ok_or_else(|| {
                        Error::raw(
                            ErrorKind::InvalidSubcommand,
                            format!("unknown service command {name}"),
                        )
                    })?;
                let service = sub
                    .get_one::<String>("service")
                    .ok_or_else(|| Error::raw(ErrorKind::MissingRequiredArgument, "no SERVICE"))?
                    .clone();
                let node = sub.try_get_one::<String>("node").ok().flatten().cloned();
                Ok(ServiceCommand::Op { op, service, node })
            }
            None => Err(Error::raw(
                ErrorKind::MissingSubcommand,
                "a service command is required",
            )),
        }
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Subcommand for ServiceCommand {
    fn augment_subcommands(cmd: Command) -> Command {
        let status = Command::new("status")
            .about("Show every service of this node: owner, state on each node, failures, fault")
            .after_help(EXIT_CODES)
            .arg(
                Arg::new("json")
                    .long("json")
                    .action(ArgAction::SetTrue)
                    .help("Print the report as JSON (same exit code)"),
            );
        let remove = <crate::config::ServiceRemove as clap::Args>::augment_args(
            Command::new("remove").about(
                "Remove SERVICE from every node (its file included); stop it first (hactl \
                 service stop SERVICE)",
            ),
        );
        ServiceOp::ALL
            .into_iter()
            .fold(cmd.subcommand(status).subcommand(remove), |cmd, op| {
                let sub = Command::new(op.as_str()).about(about(op)).arg(
                    Arg::new("service")
                        .value_name("SERVICE")
                        .required(true)
                        .help("The service's name, as in `hactl service status`"),
                );
                cmd.subcommand(match op {
                    ServiceOp::Cleanup => sub.arg(
                        Arg::new("node")
                            .value_name("NODE")
                            .help("Clean up on this node only (default: every node of SERVICE)"),
                    ),
                    _ => sub,
                })
            })
    }

    fn augment_subcommands_for_update(cmd: Command) -> Command {
        Self::augment_subcommands(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        name == "status"
            || name == "remove"
            || ServiceOp::ALL.into_iter().any(|op| op.as_str() == name)
    }
}

fn is_active(state: &str) -> bool {
    matches!(state, "ACTIVE" | "ACTIVEACT" | "ACTIVESTB")
}

/// One service's health (see [`EXIT_CODES`]).
pub fn health(s: &ServiceStatus) -> Health {
    let shows = |states: &[&str]| s.nodes.iter().any(|n| states.contains(&n.state.as_str()));
    let active = s.nodes.iter().filter(|n| is_active(&n.state)).count();
    let Some(owner) = &s.owner else {
        return Health::Critical;
    };
    if active > 1 || shows(&["ERRORACT", "ERRORSTB", "STALLED"]) {
        return Health::Critical;
    }
    let on_owner = s.nodes.iter().find(|n| &n.node == owner);
    if on_owner.is_some_and(|n| matches!(n.state.as_str(), "ACTIVE" | "ACTIVESTB"))
        && !shows(&["OUTACT", "OUTSTB"])
    {
        Health::Ok
    } else {
        Health::Degraded
    }
}

/// The worst health over every service (Ok without any).
pub fn overall(services: &[ServiceStatus]) -> Health {
    services.iter().map(health).max().unwrap_or(Health::Ok)
}

/// `alpha=ACTIVE beta=STANDBY(unable)`.
fn nodes(s: &ServiceStatus) -> String {
    let node = |n: &haschema::ctl::ServiceNode| {
        // A node not heard from is unable anyway: say it once.
        let unable = if n.can_host || n.state == "unknown" {
            ""
        } else {
            "(unable)"
        };
        format!("{}={}{unable}", n.node, n.state)
    };
    s.nodes.iter().map(node).collect::<Vec<_>>().join(" ")
}

/// `alpha=2 beta=0`: the fail count on each node (`-` for a node not
/// heard from).
fn failures(s: &ServiceStatus) -> String {
    let node = |n: &haschema::ctl::ServiceNode| match n.state.as_str() {
        "unknown" => format!("{}=-", n.node),
        _ => format!("{}={}", n.node, n.failures),
    };
    s.nodes.iter().map(node).collect::<Vec<_>>().join(" ")
}

/// `hactl service status` as a table, one line per service.
pub fn table(services: &[ServiceStatus]) -> String {
    if services.is_empty() {
        return "no services on this node\n".into();
    }
    let mut rows = vec![["SERVICE", "OWNER", "NODES", "FAILURES", "FAULT"].map(String::from)];
    rows.extend(services.iter().map(|s| {
        [
            s.name.clone(),
            s.owner.clone().unwrap_or_else(|| "-".into()),
            nodes(s),
            failures(s),
            s.fault.clone().unwrap_or_default(),
        ]
    }));
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2), width(3)];
    let mut out = String::new();
    for r in &rows {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use haschema::ctl::ServiceNode;

    /// A service owned by `owner`, with `(node, state, can_host)` rows.
    fn svc(owner: Option<&str>, nodes: &[(&str, &str, bool)]) -> ServiceStatus {
        ServiceStatus {
            name: "web".into(),
            owner: owner.map(Into::into),
            nodes: nodes
                .iter()
                .map(|&(node, state, can_host)| ServiceNode {
                    node: node.into(),
                    state: state.into(),
                    can_host,
                    failures: 0,
                })
                .collect(),
            failures: 0,
            fault: None,
        }
    }

    #[test]
    fn health_of_one_service() {
        let a = Some("alpha");
        let cases = [
            (a, "ACTIVE", "STANDBY", Health::Ok),
            (a, "ACTIVESTB", "STANDBY", Health::Ok),
            // No standby able to take it over.
            (a, "ACTIVEACT", "unknown", Health::Degraded),
            // Brought out, on the holder or elsewhere.
            (a, "OUTACT", "OUTSTB", Health::Degraded),
            (a, "ACTIVE", "OUTSTB", Health::Degraded),
            // Held, but not seen active on its owner.
            (a, "STANDBY", "STANDBY", Health::Degraded),
            (a, "unknown", "STANDBY", Health::Degraded),
            (Some("beta"), "ACTIVE", "STANDBY", Health::Degraded),
            // Runs nowhere, or twice, or in error, or stalled.
            (None, "STANDBY", "STANDBY", Health::Critical),
            (None, "OUTSTB", "OUTSTB", Health::Critical),
            (None, "ACTIVE", "STANDBY", Health::Critical),
            (a, "ACTIVE", "ACTIVE", Health::Critical),
            (a, "ERRORACT", "STANDBY", Health::Critical),
            (a, "ACTIVE", "ERRORSTB", Health::Critical),
            (a, "ACTIVEACT", "STALLED", Health::Critical),
        ];
        for (owner, alpha, beta, want) in cases {
            let s = svc(owner, &[("alpha", alpha, true), ("beta", beta, true)]);
            assert_eq!(
                health(&s),
                want,
                "owner {owner:?} alpha={alpha} beta={beta}"
            );
        }
    }

    #[test]
    fn overall_health_is_the_worst() {
        let ok = svc(
            Some("alpha"),
            &[("alpha", "ACTIVE", true), ("beta", "STANDBY", true)],
        );
        let degraded = svc(
            Some("alpha"),
            &[("alpha", "ACTIVEACT", true), ("beta", "STANDBY", false)],
        );
        let critical = svc(
            None,
            &[("alpha", "STANDBY", true), ("beta", "STANDBY", true)],
        );
        assert_eq!(overall(&[]), Health::Ok);
        assert_eq!(overall(&[ok.clone(), ok.clone()]), Health::Ok);
        assert_eq!(overall(&[ok.clone(), degraded.clone()]), Health::Degraded);
        assert_eq!(overall(&[critical, degraded, ok]), Health::Critical);
    }

    #[test]
    fn table_lines_up_and_marks_unable_nodes() {
        let mut db = svc(
            None,
            &[
                ("alpha", "ERRORACT", false),
                ("beta", "STANDBY", false),
                ("gamma", "unknown", false),
            ],
        );
        db.name = "database".into();
        db.failures = 2;
        db.nodes[0].failures = 2;
        db.nodes[1].failures = 1;
        db.fault = Some("stop (active) of application failed: timeout".into());
        let web = svc(
            Some("alpha"),
            &[("alpha", "ACTIVE", true), ("beta", "STANDBY", true)],
        );
        let want = "\
SERVICE   OWNER  NODES                                                      FAILURES                FAULT
database  -      alpha=ERRORACT(unable) beta=STANDBY(unable) gamma=unknown  alpha=2 beta=1 gamma=-  stop (active) of application failed: timeout
web       alpha  alpha=ACTIVE beta=STANDBY                                  alpha=0 beta=0
";
        assert_eq!(table(&[db, web]), want);
    }

    #[test]
    fn table_without_services() {
        assert_eq!(table(&[]), "no services on this node\n");
    }
}
