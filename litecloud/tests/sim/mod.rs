//! A deterministic simulator for the heartbeat engine ([`litecloud::node`]):
//! a virtual clock, N engines driven like the daemon drives them, a network
//! of P paths with seeded faults, and a checker that asserts the
//! invariants on every step. Every run is a pure function of its seed.
//!
//! - [`config`]: the cluster, the fault rates and the fault plan.
//! - [`net`]: the network model.
//! - [`world`]: the event loop and the drivers.
//! - [`check`]: ground truth and the invariants.
//! - [`mail`]: reliable messages sent at random, checked exactly once and in order.
//! - [`views`]: membership agreement, checked on every install and after the heal.
//! - [`locks`]: the lock service with services that outlive a daemon
//!   restart, clean stops, a fencer and operators' false fence
//!   confirmations, checked never twice on every step.
//!
//! Environment: `SIM_SEED=n` runs only seed n of a random test,
//! `SIM_SEEDS=k` runs k seeds instead of the default count, `SIM_TRACE=1`
//! prints every event and fault as it happens.

pub mod check;
pub mod config;
pub mod locks;
pub mod mail;
pub mod net;
pub mod views;
pub mod world;

pub use check::Checker;
pub use config::{Action, Config, MS, PathSpec};
pub use world::World;

use std::time::Instant;

/// Runs one configuration and returns its checker (violation and stats).
pub fn run(cfg: Config, test: &str) -> Checker {
    World::new(cfg, test).run()
}

/// Runs one configuration and panics with the checker's report on a
/// violation.
pub fn run_ok(cfg: Config, test: &str) -> Checker {
    let c = run(cfg, test);
    if let Some(v) = c.violation() {
        panic!("{v}");
    }
    c
}

/// Runs `count` random seeds from `first` (or only `SIM_SEED`), and fails
/// listing every failing seed with the first violation in full.
pub fn run_seeds(test: &str, first: u64, count: u64, make: impl Fn(u64) -> Config) {
    let seeds: Vec<u64> = match std::env::var("SIM_SEED") {
        Ok(s) => vec![s.trim().parse().expect("SIM_SEED is a number")],
        Err(_) => {
            let count = std::env::var("SIM_SEEDS")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(count);
            (first..first + count).collect()
        }
    };
    let started = Instant::now();
    let mut failures: Vec<(u64, String)> = Vec::new();
    let mut stats = check::Stats::default();
    for &seed in &seeds {
        let cfg = make(seed);
        let attacker = cfg.rates.replay > 0.0;
        let c = run(cfg, test);
        let s = &c.stats;
        stats.steps += s.steps;
        stats.deliveries += s.deliveries;
        stats.repeats += s.repeats;
        stats.attacker_replays += s.attacker_replays;
        stats.false_replays += s.false_replays;
        stats.node_downs += s.node_downs;
        stats.node_ups += s.node_ups;
        stats.stalls += s.stalls;
        stats.incarnations += s.incarnations;
        stats.crashes += s.crashes;
        stats.lock_grants += s.lock_grants;
        stats.fences += s.fences;
        stats.leaves_heard += s.leaves_heard;
        stats.grants_after_leave += s.grants_after_leave;
        stats.locks_kept += s.locks_kept;
        stats.never_lost_checks += s.never_lost_checks;
        stats.false_confirms += c.false_confirms.len() as u64;
        stats.false_fences_found += c.false_fences.len() as u64;
        if let Some(v) = c.violation() {
            let mut lines = v.lines();
            let what = lines.next().unwrap_or("");
            let detail = lines.next().unwrap_or("").trim();
            let who = if attacker { " [attacker on]" } else { "" };
            eprintln!("{test}: {what}{who}\n    {detail}");
            failures.push((seed, v.to_string()));
        }
    }
    eprintln!(
        "{test}: {} seeds in {:.1?}, {} failed; {stats:?}",
        seeds.len(),
        started.elapsed(),
        failures.len()
    );
    if let Some((_, first)) = failures.first() {
        let list: Vec<String> = failures
            .iter()
            .map(|(s, v)| format!("  seed {s}: {}", v.lines().next().unwrap_or("")))
            .collect();
        panic!(
            "{} of {} seeds failed:\n{}\n\nfirst failure in full:\n{first}",
            failures.len(),
            seeds.len(),
            list.join("\n")
        );
    }
}
