//! `hactl node standby on|off`: this node's standby (hasvrd). On, its
//! services move to able peers and it takes none, until `off`; hasvrd
//! keeps the flag across restarts. `hactl node nics [NODE]`: a node's
//! network interfaces and addresses (hamond's AutoGet). With `--remote`,
//! the node of the admin endpoint.

use clap::{Subcommand, ValueEnum};
use haschema::ctl::Nic;

#[derive(Clone, Debug, PartialEq, Eq, Subcommand)]
pub enum NodeCommand {
    /// Put this node in standby (`on`: its services move away and it takes
    /// none, kept across restarts) or take it out (`off`: it can host
    /// again; services come back only as switchback allows).
    Standby {
        #[arg(value_enum)]
        state: OnOff,
    },
    /// A node's network interfaces and addresses (AutoGet): this node's,
    /// or NODE's as its hamond reads them (asked over the cluster).
    Nics {
        /// The node to ask; this node when left out.
        node: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `NODE`'s interfaces as text: one line each (name, state, MAC,
/// addresses), and a note when the node left some out.
pub fn nics_table(node: &str, nics: &[Nic], truncated: bool) -> String {
    let mut out = format!("{node}:\n");
    if nics.is_empty() {
        out.push_str("  (no network interface besides loopback)\n");
    }
    let width = nics.iter().map(|n| n.name.len()).max().unwrap_or(0);
    for n in nics {
        let addresses = if n.addresses.is_empty() {
            "(no address)".to_owned()
        } else {
            n.addresses.join(" ")
        };
        out.push_str(&format!(
            "  {:width$}  {:4}  {:17}  {addresses}\n",
            n.name,
            if n.up { "up" } else { "down" },
            n.mac.as_deref().unwrap_or("-"),
        ));
    }
    if truncated {
        out.push_str(&format!(
            "  (more interfaces or addresses than one cluster message carries: run `hactl node nics` on {node} for all)\n"
        ));
    }
    out
}

/// `on` or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

impl OnOff {
    /// Whether it is `on`.
    pub fn on(self) -> bool {
        self == OnOff::On
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Args, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("hactl").chain(args.iter().copied()))
    }

    #[test]
    fn node_standby_on_and_off() {
        for (word, on) in [("on", true), ("off", false)] {
            let a = parse(&["node", "standby", word]).unwrap();
            match a.command {
                Command::Node {
                    command: NodeCommand::Standby { state },
                } => assert_eq!(state.on(), on, "{word}"),
                _ => panic!("{word}: not node standby"),
            }
        }
        assert!(parse(&["node", "standby"]).is_err());
        assert!(parse(&["node", "standby", "maybe"]).is_err());
        let a = parse(&["node", "standby", "on", "--remote", "10.0.0.1:7000"]).unwrap();
        assert_eq!(a.remote.as_deref(), Some("10.0.0.1:7000"));
    }

    #[test]
    fn node_nics_takes_an_optional_node() {
        for (args, want, json) in [
            (&["node", "nics"][..], None, false),
            (&["node", "nics", "beta", "--json"][..], Some("beta"), true),
        ] {
            match parse(args).unwrap().command {
                Command::Node {
                    command: NodeCommand::Nics { node, json: j },
                } => {
                    assert_eq!(node.as_deref(), want, "{args:?}");
                    assert_eq!(j, json, "{args:?}");
                }
                _ => panic!("{args:?}: not node nics"),
            }
        }
        assert!(parse(&["node", "nics", "a", "b"]).is_err());
    }

    #[test]
    fn nics_table_lines() {
        let nics = [
            Nic {
                name: "eth0".into(),
                up: true,
                mac: Some("02:00:00:00:00:01".into()),
                addresses: vec!["10.0.0.1/24".into(), "fe80::1/64".into()],
            },
            Nic {
                name: "eth10".into(),
                up: false,
                mac: None,
                addresses: vec![],
            },
        ];
        let text = nics_table("beta", &nics, true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "beta:");
        assert_eq!(
            lines[1],
            "  eth0   up    02:00:00:00:00:01  10.0.0.1/24 fe80::1/64"
        );
        assert_eq!(lines[2], "  eth10  down  -                  (no address)");
        assert!(lines[3].contains("run `hactl node nics` on beta"));
        assert!(nics_table("beta", &[], false).contains("no network interface"));
    }
}
