//! hactl: the administrator's command line. It talks to the local daemons
//! over their control sockets (root or the control group only): hamond for
//! the cluster (status, fence, event history, alerts, the replicated
//! configuration), hasvrd for the
//! services and node standby; or, with
//! `--remote HOST:PORT`, to a node's admin endpoint, which passes each
//! request to the same daemon there.

mod config;
mod fence;
mod history;
mod node;
mod passwd;
mod remote;
mod services;
mod show;

use clap::{Parser, Subcommand};
use config::ConfigCommand;
use fence::FenceCommand;
use haschema::ctl::{Request, Response};
use history::{AlertCommand, HistoryArgs};
use node::NodeCommand;
use services::ServiceCommand;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Exit code when a daemon cannot be reached (Nagios "UNKNOWN").
const UNREACHABLE: u8 = 3;
/// The daemon that answers a request.
#[derive(Clone, Copy)]
enum Daemon {
    /// The cluster (status, fence).
    Hamond,
    /// The services.
    Hasvrd,
}

impl Daemon {
    fn name(self) -> &'static str {
        match self {
            Daemon::Hamond => "hamond",
            Daemon::Hasvrd => "hasvrd",
        }
    }
}

#[derive(Parser)]
#[command(version, about = "Administer the HA cluster")]
struct Args {
    /// hamond's control socket.
    #[arg(long, global = true, default_value = haschema::ctl::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// hasvrd's control socket.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        default_value = haschema::ctl::DEFAULT_SERVICE_SOCKET
    )]
    service_socket: PathBuf,
    /// Ask a node's admin endpoint (HOST:PORT, TLS, admin password from
    /// HA_ADMIN_PASSWORD or a prompt) instead of the local sockets; every
    /// command but `keygen` and `passwd`, which act on this machine.
    #[arg(long, global = true, value_name = "HOST:PORT")]
    remote: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show nodes, paths and counters. Exit code: 0 all up, 1 a path down,
    /// 2 a peer down, 3 hamond unreachable.
    Status {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a new random cluster key (mode 0600); copy it to every node.
    Keygen {
        /// Where to write the key.
        file: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Set or change the admin password of the remote admin endpoint
    /// (root; prompts twice without echo).
    Passwd {
        /// Read the password from one line of stdin (for scripts).
        #[arg(long)]
        stdin: bool,
        /// The password file (default: `[admin] password_file` of --config).
        #[arg(long)]
        file: Option<PathBuf>,
        /// The cluster config.
        #[arg(long, default_value = "/etc/hacluster/cluster.toml")]
        config: PathBuf,
    },
    /// The services (hasvrd): their status, or an operator's command on one.
    Service {
        #[command(subcommand)]
        command: ServiceCommand,
    },
    /// A node: this node's standby (hasvrd), a node's NICs (hamond).
    Node {
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// Fencing by hand (hamond).
    Fence {
        #[command(subcommand)]
        command: FenceCommand,
    },
    /// The event history (hamond): state changes, failovers with their
    /// phases, fences, stalls and operator commands, oldest first.
    History(HistoryArgs),
    /// The alert hooks and mail of `[alerts]` (hamond).
    Alert {
        #[command(subcommand)]
        command: AlertCommand,
    },
    /// The configuration replicated to every node (hamond): cluster.toml,
    /// services/NAME.toml, admin/password.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    match &args.command {
        Command::Keygen { file, force } => {
            if let Err(code) = local_only(&args, "keygen") {
                return code;
            }
            match haschema::key::generate(file, *force) {
                Ok(()) => {
                    println!(
                        "wrote {}; copy it to the same path on every node (mode 0600)",
                        file.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hactl: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Passwd {
            stdin,
            file,
            config,
        } => {
            if let Err(code) = local_only(&args, "passwd") {
                return code;
            }
            match passwd::password_file(file.clone(), config).and_then(|f| {
                passwd::run(&f, *stdin)?;
                Ok(f)
            }) {
                Ok(f) => {
                    println!("admin password set in {}", f.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hactl: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Status { json } => match ask(&args, Daemon::Hamond, &Request::Status) {
            Ok(Response::Status(report)) => {
                if *json {
                    print_json(serde_json::to_string_pretty(&report));
                } else {
                    print!("{}", show::status(&report));
                }
                ExitCode::from(report.health() as u8)
            }
            other => failed(Daemon::Hamond, other),
        },
        Command::Service {
            command: ServiceCommand::Status { json },
        } => match ask(&args, Daemon::Hasvrd, &Request::Services) {
            Ok(Response::Services { services }) => {
                if *json {
                    print_json(serde_json::to_string_pretty(&services));
                } else {
                    print!("{}", services::table(&services));
                }
                ExitCode::from(services::overall(&services) as u8)
            }
            other => failed(Daemon::Hasvrd, other),
        },
        Command::Service {
            command: ServiceCommand::Remove(remove),
        } => config::remove_service(&args, remove),
        Command::Config { command } => config::run(&args, command),
        Command::Service {
            command: ServiceCommand::Op { op, service, node },
        } => order(
            &args,
            Daemon::Hasvrd,
            &Request::Service {
                op: *op,
                service: service.clone(),
                node: node.clone(),
            },
        ),
        Command::Node {
            command: NodeCommand::Standby { state },
        } => order(
            &args,
            Daemon::Hasvrd,
            &Request::NodeStandby { on: state.on() },
        ),
        Command::Node {
            command: NodeCommand::Nics { node, json },
        } => {
            let request = Request::Nics { node: node.clone() };
            match ask(&args, Daemon::Hamond, &request) {
                Ok(Response::Nics {
                    node,
                    nics,
                    truncated,
                }) => {
                    if *json {
                        let report = serde_json::json!({
                            "node": node, "nics": nics, "truncated": truncated,
                        });
                        print_json(serde_json::to_string_pretty(&report));
                    } else {
                        print!("{}", node::nics_table(&node, &nics, truncated));
                    }
                    ExitCode::SUCCESS
                }
                Ok(Response::Error { message }) => {
                    eprintln!("hactl: {message}");
                    ExitCode::FAILURE
                }
                other => failed(Daemon::Hamond, other),
            }
        }
        Command::Fence {
            command:
                FenceCommand::Confirm {
                    node,
                    yes_i_am_sure,
                },
        } => {
            if let Err(e) = fence::confirmed(node, *yes_i_am_sure) {
                eprintln!("hactl: {e}");
                return ExitCode::FAILURE;
            }
            order(
                &args,
                Daemon::Hamond,
                &Request::FenceConfirm { node: node.clone() },
            )
        }
        Command::Fence {
            command: FenceCommand::Test { device },
        } => {
            let request = Request::FenceTest {
                device: device.clone(),
            };
            match ask(&args, Daemon::Hamond, &request) {
                Ok(Response::FenceTest { checks }) => {
                    print!("{}", show::device_checks(&checks));
                    if checks.iter().all(|c| c.error.is_none()) {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Ok(Response::Error { message }) => {
                    eprintln!("hactl: hamond refused: {message}");
                    ExitCode::FAILURE
                }
                other => failed(Daemon::Hamond, other),
            }
        }
        Command::History(h) => {
            let request = match h.request(std::time::SystemTime::now()) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("hactl: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match ask(&args, Daemon::Hamond, &request) {
                Ok(Response::History { events }) => {
                    if h.json {
                        print_json(serde_json::to_string_pretty(&events));
                    } else {
                        print!("{}", history::lines(&events));
                    }
                    ExitCode::SUCCESS
                }
                other => failed(Daemon::Hamond, other),
            }
        }
        Command::Alert {
            command: AlertCommand::Test,
        } => match ask(&args, Daemon::Hamond, &Request::AlertTest) {
            Ok(Response::AlertTest { deliveries }) => {
                let (text, all_ok) = history::deliveries(&deliveries);
                print!("{text}");
                if all_ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            other => failed(Daemon::Hamond, other),
        },
    }
}

/// Refuses `--remote` for a command that acts on this machine (exit 1).
fn local_only(args: &Args, command: &str) -> Result<(), ExitCode> {
    match args.remote {
        None => Ok(()),
        Some(_) => {
            eprintln!(
                "hactl: `{command}` acts on this machine and takes no --remote; run it on the node"
            );
            Err(ExitCode::FAILURE)
        }
    }
}

/// Sends `request` to `daemon`: on its local socket, or through the admin
/// endpoint of `--remote`.
fn ask(args: &Args, daemon: Daemon, request: &Request) -> Result<Response, String> {
    match (&args.remote, daemon) {
        (Some(server), _) => remote::call(server, request),
        (None, Daemon::Hamond) => call(daemon, &args.socket, request),
        (None, Daemon::Hasvrd) => call(daemon, &args.service_socket, request),
    }
}

/// Prints a report made pretty JSON by `serde_json::to_string_pretty`.
fn print_json(json: serde_json::Result<String>) {
    println!("{}", json.expect("report serialises"));
}

/// A report request that got no report: an error (exit 3, UNKNOWN).
fn failed(daemon: Daemon, answer: Result<Response, String>) -> ExitCode {
    match answer {
        Ok(Response::Error { message }) => {
            eprintln!("hactl: {} refused: {message}", daemon.name());
            ExitCode::from(UNREACHABLE)
        }
        Ok(other) => unexpected(daemon, &other),
        Err(e) => {
            eprintln!("hactl: {e}");
            ExitCode::from(UNREACHABLE)
        }
    }
}

/// Sends a command to `daemon`: prints its Done message (exit 0) or its
/// error (exit 1); exit 3 when it cannot be reached.
fn order(args: &Args, daemon: Daemon, request: &Request) -> ExitCode {
    match ask(args, daemon, request) {
        Ok(Response::Done { message }) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Ok(Response::Error { message }) => {
            eprintln!("hactl: {} refused: {message}", daemon.name());
            ExitCode::FAILURE
        }
        other => failed(daemon, other),
    }
}

/// An answer of the wrong kind (a socket of the other daemon?): exit 3.
fn unexpected(daemon: Daemon, answer: &Response) -> ExitCode {
    let daemon = daemon.name();
    let kind = match answer {
        Response::Status(_) => "a status report",
        Response::Services { .. } => "a services report",
        Response::History { .. } => "an event history",
        Response::AlertTest { .. } => "alert test results",
        Response::FenceTest { .. } => "fence test results",
        Response::ConfigList { .. } => "a configuration list",
        Response::ConfigDoc { .. } => "a configuration document",
        Response::ConfigCommitted { .. } => "a configuration commit",
        Response::Nics { .. } => "a NIC list",
        Response::Done { .. } => "a done",
        Response::Error { .. } => "an error",
    };
    eprintln!("hactl: unexpected answer from {daemon}: {kind}; is the socket {daemon}'s?");
    ExitCode::from(UNREACHABLE)
}

/// The longest wait for the answer to `request`: a fence test waits for
/// its devices, which may each take their timeout (checked at once).
fn answer_within(request: &Request) -> Duration {
    match request {
        Request::FenceTest { .. } => haschema::config::MAX_FENCE_TIMEOUT + Duration::from_secs(10),
        // Answered once every node committed it (or refused).
        Request::ConfigPut { .. } => Duration::from_secs(30),
        _ => Duration::from_secs(10),
    }
}

/// Sends one request to `daemon` on its local `socket` and reads the
/// answer.
fn call(daemon: Daemon, socket: &Path, request: &Request) -> Result<Response, String> {
    let daemon = daemon.name();
    let unreachable = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::PermissionDenied => format!(
            "permission denied on {}: run as root or as a member of the cluster's control_group",
            socket.display()
        ),
        _ => format!(
            "cannot reach {daemon} at {}: {e}; is it running (systemctl status hacluster)?",
            socket.display()
        ),
    };
    let mut stream = UnixStream::connect(socket).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(answer_within(request)))
        .map_err(unreachable)?;
    let mut line = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    line.push(b'\n');
    stream.write_all(&line).map_err(unreachable)?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(unreachable)?;
    serde_json::from_str(&answer).map_err(|e| format!("unexpected answer from {daemon}: {e}"))
}

#[cfg(test)]
mod cli_tests;
