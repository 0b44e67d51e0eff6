//! hasvrd: the service daemon of one node. It runs the protected services
//! of this node (volumes, floating IPs, scripts, agents) through their
//! state machines, gets their ownership from hamond's lock service over the
//! link, serves the agent socket, and answers `hactl service ...` on its
//! control socket. SIGHUP rereads the service files (`daemon::reload`). Started by hamond, it restarts hamond when it dies
//! ([`hamond`]).

mod daemon;
mod failures;
mod group;
mod hamond;
mod link;
mod operator;
mod service_lines;
mod standby;
mod status;
mod worker;

use clap::Parser;
use haschema::config::ClusterConfig;
use haschema::logging;
use haschema::process::HamondCommand;
use std::path::PathBuf;
use std::process::ExitCode;

/// How long hasvrd waits at exit for its blocking threads (file system
/// and mount calls) to return.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// The service daemon of one node. SIGHUP rereads the service files
/// (--services) without restarting any running service.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Cluster config file.
    #[arg(long, default_value = "/etc/hacluster/cluster.toml")]
    config: PathBuf,
    /// This node's name in the config (never taken from the hostname).
    #[arg(long, env = "HA_NODE")]
    node: String,
    /// Directory of the service files (default: `services` beside the
    /// cluster config). SIGHUP (or hamond, after configuration replication
    /// wrote them) makes hasvrd reread it: new services are added brought
    /// out, removed and changed ones are dropped or replaced unless they run
    /// here; running services are never restarted by it.
    #[arg(long)]
    services: Option<PathBuf>,
    /// hamond's link socket.
    #[arg(long, default_value = haschema::svclink::DEFAULT_LINK)]
    link: PathBuf,
    /// Control socket for `hactl service`.
    #[arg(long, default_value = haschema::ctl::DEFAULT_SERVICE_SOCKET)]
    socket: PathBuf,
    /// Socket the agents report to (libhaapi, haapi).
    #[arg(long, default_value = haschema::agent::DEFAULT_SOCKET)]
    agent_socket: PathBuf,
    /// Directory of hasvrd's persisted state (node standby,
    /// `standby.NODE`; fail counts, `failures.NODE`; the operator's
    /// bring-out and stop of each service, `operator.NODE`; the control
    /// socket's commands, `audit.log`).
    #[arg(long, default_value = "/var/lib/hacluster")]
    state_dir: PathBuf,
    #[command(flatten)]
    log: logging::LogArgs,
}

fn main() -> ExitCode {
    let hamond = hamond::from_env();
    let args = Args::parse();
    let log = args.log.clone();
    logging::run_daemon("hasvrd", &log, || start(args, hamond?))
}

fn start(args: Args, hamond: Option<HamondCommand>) -> Result<(), String> {
    let cluster = ClusterConfig::load(&args.config).map_err(|e| e.to_string())?;
    if cluster.node(&args.node).is_none() {
        return Err(format!(
            "node {:?} is not in {}; --node must name one of its nodes",
            args.node,
            args.config.display()
        ));
    }
    let dir = args.services.clone().unwrap_or_else(|| {
        args.config
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join("services")
    });
    let services = if dir.is_dir() {
        haschema::service::load_dir(&dir, &cluster).map_err(|e| e.to_string())?
    } else {
        tracing::warn!(
            "no service directory {}: no services run on this node (write service files \
             there, then reload hasvrd with SIGHUP)",
            dir.display()
        );
        Vec::new()
    };
    daemon::reload::warn_short_leases(&services, &cluster);
    let gid = haschema::ctl_server::control_gid(&cluster)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let result = runtime.block_on(async {
        if let Some(hamond) = hamond {
            tokio::spawn(hamond::keep_running(hamond));
        }
        let setup = daemon::Setup {
            standby_file: standby::path(&args.state_dir, &args.node),
            failures_file: failures::path(&args.state_dir, &args.node),
            operator_file: operator::path(&args.state_dir, &args.node),
            services_dir: dir,
            audit: haschema::audit::AuditLog::in_dir(&args.state_dir),
            cluster: cluster.clone(),
            me: args.node,
            fencing: !cluster.fences.is_empty(),
            services,
            link: args.link,
            socket: args.socket.clone(),
            agent_socket: args.agent_socket,
            gid,
        };
        let result = daemon::run(setup).await;
        let _ = std::fs::remove_file(&args.socket);
        result
    });
    // A blocking thread stuck in I/O on a hung storage path never returns:
    // do not wait for it at exit.
    runtime.shutdown_timeout(EXIT_GRACE);
    result
}
