//! hamond: the cluster daemon of one node. It exchanges authenticated
//! heartbeats with every peer over every private network (RS-232 and UDP),
//! keeps link health and membership, and answers `hactl` on its control
//! socket. Only one runs per state dir ([`instance`]); with `--hasvrd` it
//! runs hasvrd, and each restarts the other when it dies ([`supervise`]).

mod clock;
mod configdb;
mod daemon;
mod fencing;
mod identity;
mod instance;
mod link;
mod metrics;
mod nics;
mod serial;
mod services;
mod supervise;
mod transport;
mod udp;

use clap::Parser;
use haschema::config::ClusterConfig;
use haschema::ctl_server as ctl;
use haschema::logging;
use haschema::process::HamondCommand;
use litecloud::wire::ClusterKey;
use std::path::PathBuf;
use std::process::ExitCode;

/// The cluster daemon of one node.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Cluster config file.
    #[arg(long, default_value = "/etc/hacluster/cluster.toml")]
    config: PathBuf,
    /// This node's name in the config (never taken from the hostname).
    #[arg(long, env = "HA_NODE")]
    node: String,
    /// Where the persisted incarnation is kept, and the audit log of admin
    /// commands and logins (`audit.log`).
    #[arg(long, default_value = "/var/lib/hacluster")]
    state_dir: PathBuf,
    /// Control socket for hactl.
    #[arg(long, default_value = haschema::ctl::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// The socket hasvrd connects to.
    #[arg(long, default_value = haschema::svclink::DEFAULT_LINK)]
    link: PathBuf,
    /// hasvrd's control socket, where the admin endpoint sends service
    /// requests. Default: the `--socket` given to hasvrd with
    /// `--hasvrd-arg`, else the default hasvrd socket.
    #[arg(long, value_name = "PATH")]
    service_socket: Option<PathBuf>,
    /// Start this node's hasvrd (this program) and keep it running (one
    /// that still runs, named in the state dir, is adopted); it is
    /// stopped, with every service, before hamond leaves the cluster.
    #[arg(long, value_name = "PATH")]
    hasvrd: Option<PathBuf>,
    /// One more argument for hasvrd (repeat for several), after the
    /// config, node, link and logging ones hamond gives it.
    #[arg(long = "hasvrd-arg", value_name = "ARG", allow_hyphen_values = true)]
    hasvrd_args: Vec<String>,
    /// How long hasvrd may take to stop every service at shutdown.
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    hasvrd_stop_timeout: std::time::Duration,
    /// Read the boot id (new at every boot: a peer that sees it change
    /// knows nothing this node ran survived) from this file instead of the
    /// kernel's. Meant for nodes that share a kernel, such as containers
    /// and the namespaced tests: give each its own file, in the kernel's
    /// form (a UUID), and write a new one whenever the node "boots".
    #[arg(long, value_name = "PATH", default_value = identity::KERNEL_BOOT_ID)]
    boot_id_file: PathBuf,
    #[command(flatten)]
    log: logging::LogArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let log = args.log.clone();
    logging::run_daemon("hamond", &log, || start(args))
}

/// Where hasvrd answers service requests: `--service-socket`, else the
/// `--socket` hamond gives the hasvrd it runs, else the default.
fn service_socket(args: &Args) -> PathBuf {
    args.service_socket
        .clone()
        .or_else(|| hasvrd_option(args, "--socket"))
        .unwrap_or_else(|| PathBuf::from(haschema::ctl::DEFAULT_SERVICE_SOCKET))
}

/// The path hamond gives the hasvrd it runs with `option` (the last one
/// given, as `--option PATH` or `--option=PATH`); None when hamond runs
/// no hasvrd.
fn hasvrd_option(args: &Args, option: &str) -> Option<PathBuf> {
    let a = &args.hasvrd_args;
    args.hasvrd.as_ref()?;
    a.iter()
        .enumerate()
        .rev()
        .find_map(|(i, arg)| match arg.strip_prefix(option) {
            Some("") => a.get(i + 1).map(PathBuf::from),
            Some(rest) => rest.strip_prefix('=').map(PathBuf::from),
            None => None,
        })
}

/// hasvrd's service directory, whose files hamond replicates: the
/// `--services` hamond gives the hasvrd it runs, else hasvrd's default,
/// `services` beside the cluster config.
fn services_dir(args: &Args) -> PathBuf {
    hasvrd_option(args, "--services").unwrap_or_else(|| {
        args.config
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join("services")
    })
}

/// How hasvrd starts this hamond again if it dies: this program (as
/// resolved now) and these arguments. None under systemd (`INVOCATION_ID`
/// set), which restarts hamond itself, or when the command line cannot be
/// passed on.
fn restart_command() -> Option<HamondCommand> {
    if std::env::var_os("INVOCATION_ID").is_some() {
        tracing::info!("run by systemd: systemd restarts hamond if it dies, not hasvrd");
        return None;
    }
    let program = std::env::current_exe().map_err(|e| e.to_string());
    let argv = program.and_then(|p| {
        std::iter::once(p.into_os_string())
            .chain(std::env::args_os().skip(1))
            .map(|a| a.into_string().map_err(|a| format!("{a:?} is not UTF-8")))
            .collect::<Result<Vec<String>, String>>()
    });
    match argv {
        Ok(argv) => Some(HamondCommand {
            pid: std::process::id() as i32,
            argv,
        }),
        Err(e) => {
            tracing::error!(
                severity = "crit",
                "hasvrd cannot be told how to restart hamond ({e}): a crashed hamond stays \
                 down; use paths and arguments in UTF-8, or run hacluster under systemd"
            );
            None
        }
    }
}

fn start(args: Args) -> Result<(), String> {
    // First: a second hamond must not touch the sockets or the state.
    let _instance = instance::lock(&args.state_dir)?;
    let config = ClusterConfig::load(&args.config).map_err(|e| e.to_string())?;
    let me = config
        .node(&args.node)
        .ok_or_else(|| {
            let names: Vec<&str> = config.nodes.iter().map(|n| n.name.as_str()).collect();
            format!(
                "node {:?} is not in {}; --node must be one of: {}",
                args.node,
                args.config.display(),
                names.join(", ")
            )
        })?
        .domain;
    let secret = haschema::key::load(&config.key_file).map_err(|e| e.to_string())?;
    let key =
        ClusterKey::new(&secret).map_err(|e| format!("{}: {e}", config.key_file.display()))?;
    let boot = identity::boot_id(&args.boot_id_file).map_err(|e| {
        format!(
            "cannot read the boot id from {}: {e}; give --boot-id-file a file holding a UUID",
            args.boot_id_file.display()
        )
    })?;
    let incarnation = identity::next_incarnation(&args.state_dir).map_err(|e| {
        format!(
            "cannot persist the incarnation in {}: {e}",
            args.state_dir.display()
        )
    })?;
    let gid = haschema::ctl_server::control_gid(&config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let listener = ctl::bind(&args.socket, gid).map_err(|e| {
            format!(
                "cannot create control socket {}: {e}",
                args.socket.display()
            )
        })?;
        let (calls_tx, calls) = tokio::sync::mpsc::channel(16);
        if let Some(m) = &config.metrics {
            // Scrapes ask the daemon loop over the control socket's channel.
            tokio::spawn(metrics::serve(m.listen, calls_tx.clone()));
        }
        if let Some(a) = &config.admin {
            let setup = hamond::admin::Setup {
                listen: a.listen,
                password_file: a.password_file.clone(),
                state_dir: args.state_dir.clone(),
                service_socket: service_socket(&args),
            };
            // Logged-in requests go to the daemon loop like the socket's,
            // service requests to hasvrd.
            tokio::spawn(hamond::admin::serve(setup, calls_tx.clone()));
        }
        let audit = haschema::audit::AuditLog::in_dir(&args.state_dir);
        tokio::spawn(ctl::serve(listener, gid, calls_tx, audit));
        let link_listener = link::bind(&args.link).map_err(|e| {
            format!(
                "cannot create the hasvrd link socket {}: {e}",
                args.link.display()
            )
        })?;
        let (link_tx, link_rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(link::serve(link_listener, link_tx));
        let setup = daemon::Setup {
            services_dir: services_dir(&args),
            config,
            state_dir: args.state_dir.clone(),
            me,
            boot,
            incarnation,
            key,
        };
        let hasvrd = args.hasvrd.clone().map(|program| {
            let mut hasvrd_args = vec![
                "--config".to_owned(),
                args.config.display().to_string(),
                "--node".to_owned(),
                args.node.clone(),
                "--link".to_owned(),
                args.link.display().to_string(),
                "--log-level".to_owned(),
                args.log.log_level.to_string(),
                // Its Debug form is the LOG_* name, which the option reads.
                "--log-facility".to_owned(),
                format!("{:?}", args.log.log_facility),
            ];
            if args.log.no_syslog {
                hasvrd_args.push("--no-syslog".to_owned());
            }
            hasvrd_args.extend(args.hasvrd_args.iter().cloned());
            supervise::HasvrdCommand {
                program,
                args: hasvrd_args,
                stop_timeout: args.hasvrd_stop_timeout,
                pid_file: args.state_dir.join(supervise::HASVRD_PID_FILE),
                boot,
                hamond: restart_command(),
            }
        });
        let result = daemon::run(setup, calls, link_rx, hasvrd)
            .await
            .map_err(|e| e.to_string());
        let _ = std::fs::remove_file(&args.socket);
        let _ = std::fs::remove_file(&args.link);
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socket_of(args: &[&str]) -> PathBuf {
        let argv = ["hamond", "--node", "alpha"].iter().chain(args);
        service_socket(&Args::try_parse_from(argv).unwrap())
    }

    #[test]
    fn the_service_socket_follows_what_hasvrd_is_given() {
        let default = PathBuf::from(haschema::ctl::DEFAULT_SERVICE_SOCKET);
        assert_eq!(socket_of(&[]), default);
        assert_eq!(socket_of(&["--service-socket", "/x"]), PathBuf::from("/x"));
        let run = ["--hasvrd", "/bin/hasvrd"];
        let split = [&run[..], &["--hasvrd-arg=--socket", "--hasvrd-arg=/s"]].concat();
        assert_eq!(socket_of(&split), PathBuf::from("/s"));
        let joined = [&run[..], &["--hasvrd-arg=--socket=/j"]].concat();
        assert_eq!(socket_of(&joined), PathBuf::from("/j"));
        // Not hasvrd's own option, or hamond does not run hasvrd.
        let other = [&run[..], &["--hasvrd-arg=--socketx=/o"]].concat();
        assert_eq!(socket_of(&other), default);
        assert_eq!(socket_of(&["--hasvrd-arg=--socket=/j"]), default);
        // The explicit flag wins.
        let both = [&joined[..], &["--service-socket", "/x"]].concat();
        assert_eq!(socket_of(&both), PathBuf::from("/x"));
    }

    #[test]
    fn the_replicated_services_are_hasvrds() {
        let dir_of = |args: &[&str]| {
            let argv = ["hamond", "--node", "alpha", "--config", "/etc/ha/c.toml"];
            services_dir(&Args::try_parse_from(argv.iter().chain(args)).unwrap())
        };
        assert_eq!(dir_of(&[]), PathBuf::from("/etc/ha/services"));
        let run = ["--hasvrd", "/bin/hasvrd", "--hasvrd-arg=--services=/s"];
        assert_eq!(dir_of(&run), PathBuf::from("/s"));
        assert_eq!(dir_of(&run[2..]), PathBuf::from("/etc/ha/services"));
    }
}
