//! `hactl node standby on|off`: this node's standby (hasvrd). On, its
//! services move to able peers and it takes none, until `off`; hasvrd
//! keeps the flag across restarts. With `--remote`, the node of the admin
//! endpoint.

use clap::{Subcommand, ValueEnum};

#[derive(Clone, Debug, PartialEq, Eq, Subcommand)]
pub enum NodeCommand {
    /// Put this node in standby (`on`: its services move away and it takes
    /// none, kept across restarts) or take it out (`off`: it can host
    /// again; services come back only as switchback allows).
    Standby {
        #[arg(value_enum)]
        state: OnOff,
    },
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
}
