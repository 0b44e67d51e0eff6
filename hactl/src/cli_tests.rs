//! Parsing of hactl's command line: the service and fence subcommands,
//! the global sockets and --remote.

use super::*;
use clap::CommandFactory;
use haschema::ctl::ServiceOp;

fn parse(args: &[&str]) -> Result<Args, clap::Error> {
    Args::try_parse_from(std::iter::once("hactl").chain(args.iter().copied()))
}

#[test]
fn the_command_line_is_consistent() {
    Args::command().debug_assert();
}

#[test]
fn service_status_and_sockets() {
    let a = parse(&["service", "status"]).unwrap();
    assert_eq!(a.socket, Path::new(haschema::ctl::DEFAULT_SOCKET));
    assert_eq!(
        a.service_socket,
        Path::new(haschema::ctl::DEFAULT_SERVICE_SOCKET)
    );
    assert!(matches!(
        a.command,
        Command::Service {
            command: ServiceCommand::Status { json: false }
        }
    ));
    // Global options go before or after the subcommand.
    let a = parse(&["service", "status", "--json", "--service-socket", "/tmp/s"]).unwrap();
    assert_eq!(a.service_socket, Path::new("/tmp/s"));
    assert!(matches!(
        a.command,
        Command::Service {
            command: ServiceCommand::Status { json: true }
        }
    ));
    let a = parse(&["--service-socket", "/tmp/t", "service", "status"]).unwrap();
    assert_eq!(a.service_socket, Path::new("/tmp/t"));
}

#[test]
fn every_service_op_is_a_subcommand() {
    for op in ServiceOp::ALL {
        let a = parse(&["service", op.as_str(), "web"]).unwrap();
        match a.command {
            Command::Service {
                command:
                    ServiceCommand::Op {
                        op: got,
                        service,
                        node,
                    },
            } => {
                assert_eq!((got, service.as_str(), node), (op, "web", None));
            }
            _ => panic!("{}: not a service op", op.as_str()),
        }
        // SERVICE is required.
        let e = parse(&["service", op.as_str()]).err().unwrap();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }
}

#[test]
fn bad_service_commands_are_refused() {
    let kind = |args: &[&str]| parse(args).err().map(|e| e.kind());
    use clap::error::ErrorKind::*;
    assert_eq!(
        kind(&["service", "restart", "web"]),
        Some(InvalidSubcommand)
    );
    assert_eq!(
        kind(&["service"]),
        Some(DisplayHelpOnMissingArgumentOrSubcommand)
    );
    assert_eq!(kind(&["service", "status", "web"]), Some(UnknownArgument));
    // Only cleanup takes a NODE.
    assert_eq!(
        kind(&["service", "take-over", "web", "beta"]),
        Some(UnknownArgument)
    );
    assert_eq!(
        kind(&["service", "cleanup", "web", "beta", "gamma"]),
        Some(UnknownArgument)
    );
}

#[test]
fn cleanup_takes_one_node() {
    let a = parse(&["service", "cleanup", "web", "beta"]).unwrap();
    assert!(matches!(
        a.command,
        Command::Service {
            command: ServiceCommand::Op {
                op: ServiceOp::Cleanup,
                node: Some(ref n),
                ..
            }
        } if n == "beta"
    ));
}

#[test]
fn fence_confirm() {
    let a = parse(&["fence", "confirm", "beta"]).unwrap();
    assert!(matches!(
        a.command,
        Command::Fence {
            command: FenceCommand::Confirm { node, yes_i_am_sure: false }
        } if node == "beta"
    ));
    let a = parse(&[
        "--socket",
        "/tmp/m",
        "fence",
        "confirm",
        "beta",
        "--yes-i-am-sure",
    ])
    .unwrap();
    assert_eq!(a.socket, Path::new("/tmp/m"));
    assert!(matches!(
        a.command,
        Command::Fence {
            command: FenceCommand::Confirm {
                yes_i_am_sure: true,
                ..
            }
        }
    ));
    assert!(parse(&["fence", "confirm"]).is_err());
    assert!(parse(&["fence", "beta"]).is_err());
}

#[test]
fn status_help_documents_the_exit_codes() {
    let mut cmd = Args::command();
    let help = cmd
        .find_subcommand_mut("service")
        .and_then(|s| s.find_subcommand_mut("status"))
        .unwrap()
        .render_help()
        .to_string();
    for code in ["0  OK", "1  WARNING", "2  CRITICAL", "3  UNKNOWN"] {
        assert!(help.contains(code), "{code:?} not in:\n{help}");
    }
}

#[test]
fn remote_goes_with_every_node_command() {
    let server = "10.0.0.1:7405";
    for args in [
        &["status", "--json"][..],
        &["service", "status", "--json"],
        &["service", "bring-out", "www"],
        &["fence", "confirm", "beta", "--yes-i-am-sure"],
        &["node", "nics", "beta", "--json"],
    ] {
        let before = [&["--remote", server][..], args].concat();
        let after = [args, &["--remote", server]].concat();
        for argv in [before, after] {
            let a = parse(&argv).unwrap();
            assert_eq!(a.remote.as_deref(), Some(server), "{argv:?}");
            assert!(local_only(&a, "x").is_err(), "{argv:?}");
        }
    }
    assert!(local_only(&parse(&["status"]).unwrap(), "x").is_ok());
}
