//! hactl: the administrator's command line. It talks to the local daemons
//! over their control sockets (root or the control group only): hamond for
//! the cluster (status, fence), hasvrd for the services.

mod fence;
mod passwd;
mod remote;
mod services;
mod show;

use clap::{Parser, Subcommand};
use fence::FenceCommand;
use haschema::ctl::{Request, Response};
use services::ServiceCommand;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Exit code when a daemon cannot be reached (Nagios "UNKNOWN").
const UNREACHABLE: u8 = 3;
/// The daemon of the cluster (status, fence).
const HAMOND: &str = "hamond";
/// The daemon of the services.
const HASVRD: &str = "hasvrd";

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
    /// HA_ADMIN_PASSWORD or a prompt) instead of the local socket; `status`
    /// only for now.
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
    /// Fencing by hand (hamond).
    Fence {
        #[command(subcommand)]
        command: FenceCommand,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    match args.command {
        Command::Keygen { file, force } => match haschema::key::generate(&file, force) {
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
        },
        Command::Passwd {
            stdin,
            file,
            config,
        } => match passwd::password_file(file, &config).and_then(|f| {
            passwd::run(&f, stdin)?;
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
        },
        Command::Status { json } => match args.remote.as_deref().map_or_else(
            || call(HAMOND, &args.socket, &Request::Status),
            |server| remote::call(server, &Request::Status),
        ) {
            Ok(Response::Status(report)) => {
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&report).expect("report serialises")
                    );
                } else {
                    print!("{}", show::status(&report));
                }
                ExitCode::from(report.health() as u8)
            }
            Ok(Response::Error { message }) => {
                eprintln!("hactl: hamond refused: {message}");
                ExitCode::from(UNREACHABLE)
            }
            Ok(other) => unexpected(HAMOND, &other),
            Err(e) => {
                eprintln!("hactl: {e}");
                ExitCode::from(UNREACHABLE)
            }
        },
        Command::Service {
            command: ServiceCommand::Status { json },
        } => {
            if let Err(code) = local_only(args.remote.as_deref(), UNREACHABLE) {
                return code;
            }
            match call(HASVRD, &args.service_socket, &Request::Services) {
                Ok(Response::Services { services }) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&services).expect("report serialises")
                        );
                    } else {
                        print!("{}", services::table(&services));
                    }
                    ExitCode::from(services::overall(&services) as u8)
                }
                Ok(Response::Error { message }) => {
                    eprintln!("hactl: hasvrd refused: {message}");
                    ExitCode::from(UNREACHABLE)
                }
                Ok(other) => unexpected(HASVRD, &other),
                Err(e) => {
                    eprintln!("hactl: {e}");
                    ExitCode::from(UNREACHABLE)
                }
            }
        }
        Command::Service {
            command: ServiceCommand::Op { op, service },
        } => match local_only(args.remote.as_deref(), 1) {
            Ok(()) => order(
                HASVRD,
                &args.service_socket,
                &Request::Service { op, service },
            ),
            Err(code) => code,
        },
        Command::Fence {
            command:
                FenceCommand::Confirm {
                    node,
                    yes_i_am_sure,
                },
        } => {
            if let Err(code) = local_only(args.remote.as_deref(), 1) {
                return code;
            }
            if let Err(e) = fence::confirmed(&node, yes_i_am_sure) {
                eprintln!("hactl: {e}");
                return ExitCode::FAILURE;
            }
            order(HAMOND, &args.socket, &Request::FenceConfirm { node })
        }
    }
}

/// Refuses `--remote` for a command the admin endpoint does not serve yet,
/// with exit code `code`.
fn local_only(remote: Option<&str>, code: u8) -> Result<(), ExitCode> {
    match remote {
        None => Ok(()),
        Some(_) => {
            eprintln!(
                "hactl: --remote supports `status` only for now; run this command on the node"
            );
            Err(ExitCode::from(code))
        }
    }
}

/// Sends a command to `daemon`: prints its Done message (exit 0) or its
/// error (exit 1); exit 3 when it cannot be reached.
fn order(daemon: &str, socket: &Path, request: &Request) -> ExitCode {
    match call(daemon, socket, request) {
        Ok(Response::Done { message }) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Ok(Response::Error { message }) => {
            eprintln!("hactl: {daemon} refused: {message}");
            ExitCode::FAILURE
        }
        Ok(other) => unexpected(daemon, &other),
        Err(e) => {
            eprintln!("hactl: {e}");
            ExitCode::from(UNREACHABLE)
        }
    }
}

/// An answer of the wrong kind (a socket of the other daemon?): exit 3.
fn unexpected(daemon: &str, answer: &Response) -> ExitCode {
    let kind = match answer {
        Response::Status(_) => "a status report",
        Response::Services { .. } => "a services report",
        Response::Done { .. } => "a done",
        Response::Error { .. } => "an error",
    };
    eprintln!("hactl: unexpected answer from {daemon}: {kind}; is the socket {daemon}'s?");
    ExitCode::from(UNREACHABLE)
}

/// Sends one request to `daemon` (hamond or hasvrd) on `socket` and reads
/// the answer.
fn call(daemon: &str, socket: &Path, request: &Request) -> Result<Response, String> {
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
        .set_read_timeout(Some(Duration::from_secs(10)))
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
