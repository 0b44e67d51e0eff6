//! The walk-through without root: two nodes as plain processes of the
//! invoking user ([`pair::LocalPair`]), heartbeats over UDP on 127.0.0.1,
//! and the web service `www` with no floating IP and no volume (both need
//! root), on each node's own loopback port. The client
//! ([`client::Client`]) tries both ports. alpha, the active node, crashes;
//! with no fencing device beta holds www STALLED until the operator
//! confirms alpha dead (safety rule 1), then takes it over; the client's
//! outage is measured. Ctrl-C at any point tears everything down
//! ([`interrupt`]).

mod client;
mod interrupt;
mod pair;

use crate::story::{self, now_utc, secs};
use crate::{part, run_hactl, step};
use pair::{LocalPair, NODES, SERVICE};
use std::process::Command;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

/// Longest wait for the service to settle (start, detection, take-over).
const WAIT: Duration = Duration::from_secs(40);

/// Runs the walk-through; with `keep`, then keeps both nodes (alpha
/// crashed) running until Ctrl-C. Everything is torn down when it returns.
pub fn run(keep: bool) -> Result<(), String> {
    check_socat()?;
    part("Two nodes without root: plain processes on this machine, no namespaces");
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map_or_else(|| nix::unistd::getuid().to_string(), |u| u.name);
    // Watched from before the daemons start: a Ctrl-C now stops them.
    let watched = Arc::new(OnceLock::<Weak<LocalPair>>::new());
    let signals = interrupt::on_signal({
        let watched = watched.clone();
        move |signal| {
            println!("\n({signal} received: stopping both nodes and removing their files)");
            if let Some(pair) = watched.get().and_then(Weak::upgrade) {
                pair.teardown();
                let _ = std::fs::remove_dir_all(pair.dir());
            }
        }
    })?;
    let pair = Arc::new(LocalPair::start()?);
    // Weak: the pair is still dropped (and torn down) when this returns.
    let _ = watched.set(Arc::downgrade(&pair));
    let [a, b] = NODES.map(|n| pair.web_port(n));
    step(&format!(
        "Starting alpha and beta as processes of {user} (hamond and hasvrd each), every socket, \
         state file and log in {}; heartbeats over two UDP paths on 127.0.0.1 (lan1, lan2), one \
         port per node. The service www is an HTTP server (socat) started by www's script on the \
         node's own port: alpha 127.0.0.1:{a}, beta 127.0.0.1:{b}. alpha active, beta standby.\n\
         Without root there is no floating IP (adding an address needs CAP_NET_ADMIN) and no \
         volume (mounting needs CAP_SYS_ADMIN): the client tries both ports and takes whichever \
         answers.",
        pair.dir().display()
    ));
    if let Err(e) = walk(&pair) {
        print_tails(&pair);
        return Err(format!(
            "{e}\n(HA_KEEP_TMP=1 keeps {} with the logs)",
            pair.dir().display()
        ));
    }
    if keep {
        keep_running(&pair, signals);
    }
    step("Done: stopping both nodes and removing their files");
    Ok(())
}

/// The walk-through proper: status, crash, STALLED, confirm, take-over.
fn walk(pair: &LocalPair) -> Result<(), String> {
    pair.wait_state("alpha", "ACTIVE", WAIT)?;
    pair.wait_state("beta", "STANDBY", WAIT)?;
    show(pair, "alpha", &["status"]);
    for node in NODES {
        println!();
        show(pair, node, &["service", "status"]);
    }
    step("The client asks both ports: alpha's answers with its name, beta's is closed");
    client_fetch(pair);

    step(
        "Crashing alpha: SIGKILL of its hamond and its hasvrd, and of the web server's process \
         group (everything alpha ran dies, as when a machine dies). There is no fencing device \
         here (nothing can cut alpha's power without root), so beta cannot prove alpha is off: \
         it shows www STALLED rather than risk running it twice (safety rule 1: fencing \
         required). The operator, who knows alpha is dead, confirms it with `hactl fence \
         confirm`; only then does beta start www. The client polls both ports every 0.1 s \
         throughout.",
    );
    let marks = NODES.map(|n| (n, pair.log_len(n)));
    let client = client::Client::start(NODES.map(|n| pair.web_port(n)).to_vec());
    client.wait_answer_from("alpha", WAIT)?;
    let crashed = Instant::now();
    println!(
        "killed at {}: {}",
        now_utc(),
        pair.crash("alpha").join(", ")
    );
    pair.wait_state("beta", "STALLED", WAIT)?;
    println!(
        "after {}, beta has declared alpha lost and holds www back:\n",
        secs(crashed.elapsed())
    );
    show(pair, "beta", &["service", "status"]);
    println!("exit code 2 is CRITICAL: www runs nowhere");
    println!("\nThe operator's step (alpha is dead: the demo killed every process of it):\n");
    show(
        pair,
        "beta",
        &["fence", "confirm", "alpha", "--yes-i-am-sure"],
    );
    // Alone, beta holds www with no node able to take it over.
    pair.wait_state("beta", "ACTIVEACT", WAIT)?;
    client.wait_answer_from("beta", WAIT)?;
    let outage = client
        .stop("alpha", "beta")
        .ok_or("the client never saw alpha then beta answer")?;
    println!(
        "\nbeta serves www now. The client went unanswered for {} ({} requests): detection \
         (deadtime 1 s), STALLED, the operator's confirmation (immediate here, minutes in real \
         life) and www's start. Answered by both nodes at once: {} times. What the nodes \
         logged:\n",
        secs(outage.gap),
        outage.failed_probes,
        outage.twice
    );
    let logs: Vec<(&str, String)> = marks
        .iter()
        .map(|&(node, from)| (node, pair.log_since(node, from)))
        .collect();
    story::print_story(&logs);
    println!();
    show(pair, "beta", &["service", "status"]);
    println!(
        "exit code 1 is WARNING: www runs on beta, but no other node could take it over now\n"
    );
    client_fetch(pair);
    Ok(())
}

/// Runs `hactl ARGS` on `node` and shows it as the operator types it.
fn show(pair: &LocalPair, node: &str, args: &[&str]) {
    let mut cmd = pair.hactl(node);
    cmd.args(args);
    run_hactl(&format!("hactl {}   (on {node})", args.join(" ")), &mut cmd);
}

/// One request of the client to each node's port.
fn client_fetch(pair: &LocalPair) {
    for node in NODES {
        let port = pair.web_port(node);
        println!("$ curl http://127.0.0.1:{port}/   ({node}'s port)");
        match client::fetch(port) {
            Ok(body) => println!("{body}"),
            Err(e) => println!("no answer: {e}"),
        }
    }
}

/// The demo needs socat for the web server (Debian package `socat`).
fn check_socat() -> Result<(), String> {
    let mut cmd = Command::new("socat");
    cmd.arg("-V");
    hatests::command::run_ok(&mut cmd).map(drop).map_err(|e| {
        format!("{e}\nthe demo's web server is socat: install it (apt-get install socat)")
    })
}

/// Both nodes' last log lines, after a failed step.
fn print_tails(pair: &LocalPair) {
    for node in NODES {
        let log = pair.log_since(node, 0);
        let lines: Vec<&str> = log.lines().collect();
        println!("\n--- {node}'s log, last lines ---");
        for line in &lines[lines.len().saturating_sub(20)..] {
            println!("{line}");
        }
    }
}

/// Leaves beta serving until Ctrl-C (or SIGTERM, SIGHUP), whose handler
/// tears everything down and exits.
fn keep_running(pair: &LocalPair, signals: std::thread::JoinHandle<()>) {
    let hactl = hatests::bins::hactl();
    step(&format!(
        "Both nodes' files stay in {} while this runs (alpha stays crashed); press Ctrl-C to tear \
         everything down. Try:",
        pair.dir().display()
    ));
    for args in [
        "status".to_owned(),
        format!("service status   (or bring-out {SERVICE}, bring-in {SERVICE}, ...)"),
    ] {
        let cmd = pair.hactl("beta");
        let shown: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        println!("  {} {} {args}", hactl.display(), shown.join(" "));
    }
    println!("  curl http://127.0.0.1:{}/", pair.web_port("beta"));
    let _ = signals.join();
}
