//! hactl: the administrator's command line. It talks to the local hamond
//! over its control socket (root or the control group only).

mod passwd;
mod remote;
mod show;

use clap::{Parser, Subcommand};
use haschema::ctl::{Request, Response};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Exit code when hamond cannot be reached (Nagios "UNKNOWN").
const UNREACHABLE: u8 = 3;

#[derive(Parser)]
#[command(version, about = "Administer the HA cluster")]
struct Args {
    /// hamond's control socket.
    #[arg(long, global = true, default_value = haschema::ctl::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Ask a node's admin endpoint (HOST:PORT, TLS, admin password from
    /// HA_ADMIN_PASSWORD or a prompt) instead of the local socket.
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
            || call(&args.socket, &Request::Status),
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
            Err(e) => {
                eprintln!("hactl: {e}");
                ExitCode::from(UNREACHABLE)
            }
        },
    }
}

/// Sends one request and reads the answer.
fn call(socket: &Path, request: &Request) -> Result<Response, String> {
    let unreachable = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::PermissionDenied => format!(
            "permission denied on {}: run as root or as a member of the cluster's control_group",
            socket.display()
        ),
        _ => format!(
            "cannot reach hamond at {}: {e}; is it running (systemctl status hacluster)?",
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
    serde_json::from_str(&answer).map_err(|e| format!("unexpected answer from hamond: {e}"))
}
