//! A real MariaDB (Debian's mariadb-server) as a protected service on
//! namespaced nodes ([`Mariadb`]): its data directory on the shared ext4
//! volume, started, stopped and probed by a script, watched by the bundled
//! `mysql` agent, and queried by the `mariadb` client in its own namespace
//! through the floating IP. Every poll checks that the floating IP and the
//! volume are on at most one node (safety rule 1).
//!
//! * rows written through the floating IP before the active node is
//!   powered off are read through it from the peer once the peer has
//!   fenced it;
//! * a hung server (SIGSTOP of mariadbd: its process lives, so the status
//!   script still says running) is found by the agent alone; the service
//!   is restarted where it runs, then, hung again with its restart spent,
//!   failed over, and the rows are still there.

use hatests::apps::{AGENT_FAILURE, AGENT_OPENED, Mariadb, wait_log_since};
use hatests::require_root;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::Instant;

/// Rows no other run writes, as the client reads them back.
fn rows(tag: &str) -> Vec<(u32, String)> {
    (1..=3)
        .map(|id| (id, format!("{tag} row {id} of pid {}", std::process::id())))
        .collect()
}

/// Creates the table and writes `rows` through the floating IP.
#[track_caller]
fn write_rows(m: &Mariadb, rows: &[(u32, String)]) {
    let values: Vec<String> = rows
        .iter()
        .map(|(id, note)| format!("({id}, '{note}')"))
        .collect();
    m.must_sql(&format!(
        "CREATE DATABASE IF NOT EXISTS ha; \
         CREATE TABLE ha.notes (id INT PRIMARY KEY, note TEXT) ENGINE=InnoDB; \
         INSERT INTO ha.notes VALUES {}",
        values.join(", ")
    ));
}

/// The rows the client reads back through the floating IP must be `rows`.
#[track_caller]
fn assert_rows(m: &Mariadb, rows: &[(u32, String)]) {
    let want: String = rows
        .iter()
        .map(|(id, note)| format!("{id}\t{note}\n"))
        .collect();
    let got = m.must_sql("SELECT id, note FROM ha.notes ORDER BY id");
    assert_eq!(got, want, "{}", m.web().cluster().log_tails(40));
}

/// SIGSTOP to `node`'s mariadbd; its pid.
#[track_caller]
fn hang_server(m: &Mariadb, node: &str) -> i32 {
    let pid = m
        .server_pid(node)
        .unwrap_or_else(|| panic!("no mariadbd runs on {node}"));
    kill(Pid::from_raw(pid), Signal::SIGSTOP).unwrap_or_else(|e| panic!("SIGSTOP {pid}: {e}"));
    pid
}

#[test]
fn rows_written_before_a_power_off_are_read_through_the_peer_that_fenced_it() {
    if !require_root() {
        return;
    }
    let began = Instant::now();
    let m = Mariadb::start("mdb_crash", 1);
    m.wait_served_by("alpha");
    m.web().wait_state("beta", "STANDBY");
    let rows = rows("before the power-off");
    write_rows(&m, &rows);
    assert_rows(&m, &rows);

    let off = Instant::now();
    m.web().switch().power_off(m.web().cluster().ns("alpha"));
    m.wait_served_by("beta");
    eprintln!(
        "MariaDB answered from beta {:?} after the power-off",
        off.elapsed()
    );
    assert_rows(&m, &rows);
    let log = m.web().cluster().log("beta");
    assert!(log.contains("fenced (powered off by switch)"), "{log}");
    // And it keeps writing there.
    m.must_sql("INSERT INTO ha.notes VALUES (4, 'on beta')");
    assert_eq!(m.must_sql("SELECT COUNT(*) FROM ha.notes").trim(), "4");
    eprintln!("test took {:?}", began.elapsed());
}

#[test]
fn a_hung_server_is_found_by_the_agent_restarted_then_failed_over() {
    if !require_root() {
        return;
    }
    let began = Instant::now();
    let m = Mariadb::start("mdb_hang", 1);
    m.wait_served_by("alpha");
    m.web().wait_state("beta", "STANDBY");
    let rows = rows("before the hang");
    write_rows(&m, &rows);

    // Hung once: the status script still finds the process, the agent's
    // query times out; restarted here (restart_times = 1). The server
    // answers before its start script is done: hung only once the start
    // is over (its agent runs).
    let cluster = m.web().cluster();
    wait_log_since(m.web(), "alpha", 0, AGENT_OPENED);
    let mark = cluster.log_len("alpha");
    let hung = hang_server(&m, "alpha");
    wait_log_since(m.web(), "alpha", mark, AGENT_FAILURE);
    wait_log_since(m.web(), "alpha", mark, "recovering here (1 of 1)");
    wait_log_since(m.web(), "alpha", mark, AGENT_OPENED);
    m.wait_served_by("alpha");
    let restarted = m.server_pid("alpha");
    assert!(
        restarted.is_some_and(|pid| pid != hung),
        "alpha's mariadbd was not restarted: {restarted:?} (hung {hung})"
    );
    assert_rows(&m, &rows);
    let log = cluster.log_since("alpha", mark);
    assert!(
        !log.contains("status probe(s) in a row said"),
        "the status script, not the agent, found the hung server\n{log}"
    );

    // Hung again: the restart is spent, the service fails over to beta.
    let mark = cluster.log_len("alpha");
    hang_server(&m, "alpha");
    wait_log_since(m.web(), "alpha", mark, AGENT_FAILURE);
    wait_log_since(
        m.web(),
        "alpha",
        mark,
        "local attempts used up: failing over to beta",
    );
    m.wait_served_by("beta");
    assert_rows(&m, &rows);
    assert_eq!(m.server_pid("alpha"), None, "alpha's server still runs");
    eprintln!("test took {:?}", began.elapsed());
}
