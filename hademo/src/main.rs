//! hademo: runs a live two-node cluster on this machine (each node a network
//! namespace, joined by a virtual null-modem cable and two veth LANs) and
//! walks through failures, as an administrator would see them:
//!
//! 1. [`heartbeat`]: the failures the heartbeat core handles (link cuts, a
//!    stall, a crash, a restart, a clean leave), `hactl status` after each;
//! 2. [`service`]: a protected web service (a floating IP and an HTTP
//!    server) moved by an operator's fail-over, then taken over after its
//!    node is powered off and fenced, with the client's outage each time.
//!
//! `--keep` leaves the last cluster running until Ctrl-C so that you can
//! explore it with hactl.

mod heartbeat;
mod service;

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
    if !hatests::require_root() {
        eprintln!("hademo needs root (network namespaces): run it with sudo");
        std::process::exit(1);
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
