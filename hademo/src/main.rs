//! hademo: runs a live two-node cluster on this machine and walks through
//! failures, as an administrator would see them.
//!
//! As root, each node is a network namespace, joined by a virtual
//! null-modem cable and two veth LANs:
//!
//! 1. [`heartbeat`]: the failures the heartbeat core handles (link cuts, a
//!    stall, a crash, a restart, a clean leave), `hactl status` after each;
//! 2. [`service`]: a protected web service (a floating IP and an HTTP
//!    server) moved by an operator's fail-over, then taken over after its
//!    node is powered off and fenced, with the client's outage each time.
//!
//! Without root, [`local`]: both nodes are plain processes of the user,
//! with heartbeats on 127.0.0.1 and the web service on each node's own
//! port (no floating IP): the active node crashes, the operator confirms
//! it dead, the standby takes over, with the client's outage.
//!
//! `--keep` leaves the last cluster running until Ctrl-C so that you can
//! explore it with hactl.

mod heartbeat;
mod local;
mod service;
mod story;

use clap::Parser;
use std::process::{Command, Output};

/// Live two-node cluster demo.
#[derive(Parser)]
struct Args {
    /// After the walk-through, keep the cluster running until Ctrl-C.
    #[arg(long)]
    keep: bool,
}

fn main() {
    let args = Args::parse();
    if !nix::unistd::geteuid().is_root() {
        if let Err(e) = local::run(args.keep) {
            eprintln!("hademo: {e}");
            std::process::exit(1);
        }
        return;
    }
    part("Part 1: the heartbeat core");
    heartbeat::run();
    part("Part 2: a protected web service");
    service::run(args.keep);
    step("Done: tearing the cluster down");
}

/// The title of a part of the walk-through.
fn part(title: &str) {
    let rule = "=".repeat(title.len());
    println!("\n{rule}\n{title}\n{rule}");
}

/// The header of one stage.
fn step(text: &str) {
    println!("\n==> {text}\n");
}

/// Runs `cmd` (a hactl command, bounded by hactl's own timeouts) and shows
/// it as `$ shown`, then its output and exit code.
fn run_hactl(shown: &str, cmd: &mut Command) {
    println!("$ {shown}");
    print_output(&cmd.output());
}

/// What a hactl run printed, and its exit code.
fn print_output(out: &std::io::Result<Output>) {
    match out {
        Ok(out) => {
            print!("{}", String::from_utf8_lossy(&out.stdout));
            print!("{}", String::from_utf8_lossy(&out.stderr));
            println!("(exit code {})", out.status.code().unwrap_or(-1));
        }
        Err(e) => println!("cannot run hactl: {e}"),
    }
}
