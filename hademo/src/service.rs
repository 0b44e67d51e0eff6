//! Part 2, a protected web service: hasvrd on both nodes runs `www` (a
//! floating IP on a public LAN and a small HTTP server) on alpha, beta
//! standing by, fencing through a power switch. A client on the public LAN
//! fetches the floating IP; the answer is the serving node's own address.
//! The service moves twice: an operator's fail-over, then a node powered
//! off (detected, fenced, taken over); each time the client's outage is
//! measured.

use crate::story::{self, now_utc, secs};
use crate::{print_output, run_hactl, step};
use hatests::web::{NODES, PORT, SERVICE, WebService};
use nix::sys::signal::{SigSet, Signal};
use std::process::Command;

/// Runs the walk-through; with `keep`, then keeps the cluster running
/// until Ctrl-C.
pub fn run(keep: bool) {
    step(
        "Starting alpha and beta again, now with hasvrd and the service www: a floating IP on a \
         public LAN (with a client), an HTTP server on port 8080 started by www's script; alpha \
         active, beta standby; the power switch is the fencing device",
    );
    let w = WebService::start("demo-web", true);
    w.wait_served_by("alpha");
    w.wait_state("alpha", "ACTIVE");
    w.wait_state("beta", "STANDBY");
    println!(
        "floating IP {}; alpha is {} and beta {} on the public LAN",
        w.fip(),
        w.addr("alpha"),
        w.addr("beta")
    );
    for node in NODES {
        println!();
        service_status(&w, node);
    }

    step("The client fetches the floating IP: the server answers with its node's own address");
    client_fetch(&w);

    step(
        "Operator fail-over: `hactl service fail-over www` on alpha moves www to beta (stop on \
         alpha, floating IP released, start on beta); the client polls every 0.1 s meanwhile",
    );
    let mut cmd = hactl(&w, "alpha");
    cmd.args(["service", "fail-over", SERVICE]);
    println!(
        "$ hactl service fail-over {SERVICE}   (on alpha, at {})",
        now_utc()
    );
    let marks = log_marks(&w);
    let (out, outage) = w.outage_during("alpha", "beta", || cmd.output());
    print_output(&out);
    w.wait_state("beta", "ACTIVESTB");
    w.wait_state("alpha", "STANDBY");
    println!(
        "\nthe client is served by beta now; its outage: {} ({} probes unanswered). Most of it is \
         beta's ARP probe (RFC 5227) that the address is free before taking it:\n",
        secs(outage.gap),
        outage.failed_probes
    );
    print_story(&w, &marks);
    println!();
    service_status(&w, "beta");

    step(
        "Powering beta off through the switch (a node crash): alpha notices the loss after the \
         deadtime, fences beta through the switch (proof that it is off), then starts www",
    );
    let marks = log_marks(&w);
    println!("(the switch powers beta off at {})", now_utc());
    let ((), outage) = w.outage_during("beta", "alpha", || {
        w.switch().power_off(w.cluster().ns("beta"))
    });
    // Alone, alpha holds www with no node able to take it over.
    w.wait_state("alpha", "ACTIVEACT");
    println!(
        "the client is served by alpha now; its outage (detection + fencing + start): {} \
         ({} probes unanswered). What alpha logged:\n",
        secs(outage.gap),
        outage.failed_probes
    );
    print_story(&w, &marks);
    println!();
    service_status(&w, "alpha");
    println!(
        "exit code 1 is WARNING: www runs on alpha, but no other node could take it over now\n"
    );
    client_fetch(&w);

    if keep {
        keep_running(&w);
    }
}

/// Where each node's log ends now.
fn log_marks(w: &WebService) -> [(&'static str, u64); 2] {
    NODES.map(|node| (node, w.cluster().log_len(node)))
}

/// The lines both nodes logged since `marks` that tell how the service
/// moved, in time order.
fn print_story(w: &WebService, marks: &[(&str, u64)]) {
    let logs: Vec<(&str, String)> = marks
        .iter()
        .map(|&(node, from)| (node, w.cluster().log_since(node, from)))
        .collect();
    story::print_story(&logs);
}

/// `hactl` aimed at `node`'s daemons (hamond and hasvrd).
fn hactl(w: &WebService, node: &str) -> Command {
    let c = w.cluster();
    let mut cmd = Command::new(hatests::bins::hactl());
    cmd.arg("--socket")
        .arg(c.socket(node))
        .arg("--service-socket")
        .arg(c.service_socket(node));
    cmd
}

/// `hactl service status` on `node`.
fn service_status(w: &WebService, node: &str) {
    let mut cmd = hactl(w, node);
    cmd.args(["service", "status"]);
    run_hactl(&format!("hactl service status   (on {node})"), &mut cmd);
}

/// One request of the client, and which node answered.
fn client_fetch(w: &WebService) {
    println!("$ curl {}   (on the client)", w.url());
    match w.fetch() {
        Ok(body) => {
            print!("{body}");
            match w.node_of(&body) {
                Some(node) => println!("-> served by {node}"),
                None => println!("-> served by no node of the cluster?"),
            }
        }
        Err(e) => println!("no answer: {e}"),
    }
}

/// Leaves the cluster (alpha serving, beta powered off) running until
/// Ctrl-C (or SIGTERM, SIGHUP); then returns, and the caller tears it down.
fn keep_running(w: &WebService) {
    let c = w.cluster();
    let hactl = hatests::bins::hactl();
    step("The cluster keeps running (beta stays powered off); press Ctrl-C to tear it down. Try:");
    println!(
        "  {} --socket {} status",
        hactl.display(),
        c.socket("alpha").display()
    );
    println!(
        "  {} --service-socket {} service status",
        hactl.display(),
        c.service_socket("alpha").display()
    );
    println!(
        "  ip netns exec {} curl http://{}:{PORT}/",
        w.lan().client().name(),
        w.fip()
    );
    println!("  logs: {}", c.dir().display());
    // Every daemon is started: from now on this (single) thread takes the
    // signals itself instead of dying of them, so the cluster's drop runs.
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(signal);
    }
    if let Err(e) = signals.thread_block() {
        println!("cannot wait for Ctrl-C ({e}): tearing down now");
        return;
    }
    match signals.wait() {
        Ok(signal) => println!("\n({signal} received)"),
        Err(e) => println!("\nwaiting for Ctrl-C failed ({e})"),
    }
}
