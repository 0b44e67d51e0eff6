//! The command-line agents (mysql, oracle, sybase, informix, db2, nfs)
//! against stand-in vendor tools and hasvrd's real agent server: healthy
//! checks send `ok`; a down server is reported (`err`) only after
//! --failures checks in a row; a hung tool is killed at the timeout, with
//! its whole process group, and counts as a failure; SIGTERM closes.

mod support;

use hatests::scratch::ScratchDir;
use nix::sys::signal::Signal;
use support::{Backend as _, Harness, lifecycle};

/// [`lifecycle`] of `exe` against the stand-ins; the harness is
/// returned for a look at the calls.
fn run(tag: &str, exe: &str, args: &[&str], down: &str) -> Harness {
    let mut h = Harness::start(tag);
    let standins = h.standins();
    lifecycle(&mut h, &standins, exe, args, down);
    h
}

#[test]
fn mysql() {
    let h = run(
        "agent-mysql",
        env!("CARGO_BIN_EXE_mysql"),
        &[
            "--defaults-file",
            "/etc/hacluster/mysql-agent.cnf",
            "--host",
            "192.0.2.10",
        ],
        "ERROR 2002",
    );
    // The option file comes first, as the client requires, and no password
    // is on the command line.
    let call = h.standins().calls().into_iter().next().unwrap();
    let args: Vec<&str> = call.split(' ').skip(2).collect();
    assert_eq!(args[0], "--defaults-file=/etc/hacluster/mysql-agent.cnf");
    assert!(args.contains(&"--host=192.0.2.10"), "{call}");
    assert!(args.ends_with(&["--execute", "SELECT", "1"]), "{call}");
    assert!(
        !args
            .iter()
            .any(|a| a.starts_with("-p") || a.starts_with("--password"))
    );
}

#[test]
fn oracle() {
    let h = run(
        "agent-oracle",
        env!("CARGO_BIN_EXE_oracle"),
        &["--sid", "ora1", "--tns", "ora1"],
        "TNS-12541",
    );
    assert!(
        h.standins()
            .calls()
            .iter()
            .any(|c| c.starts_with("sqlplus up -S -L /nolog")),
        "{:?}",
        h.standins().calls()
    );
}

#[test]
fn oracle_without_tnsping_reads_sqlplus_errors() {
    run(
        "agent-oracle-sql",
        env!("CARGO_BIN_EXE_oracle"),
        &["--sid", "ora1"],
        "ORA-01034",
    );
}

#[test]
fn sybase() {
    // isql reads the password on its stdin: the stand-in accepts only
    // "secret", the first line of the file.
    let dir = ScratchDir::new("agent-sybase-password");
    let password = dir.join("password");
    std::fs::write(&password, "secret\nnot this line\n").unwrap();
    let password = password.to_str().unwrap().to_owned();
    let h = run(
        "agent-sybase",
        env!("CARGO_BIN_EXE_sybase"),
        &["--server", "SYB", "--password-file", &password],
        "CT-LIBRARY",
    );
    assert!(
        h.standins()
            .calls()
            .iter()
            .any(|c| c.starts_with("isql up -U sa -S SYB ")),
        "{:?}",
        h.standins().calls()
    );
}

#[test]
fn informix() {
    let h = run(
        "agent-informix",
        env!("CARGO_BIN_EXE_informix"),
        &["--server", "ol_informix1410", "--database", "sysmaster"],
        "Off-Line",
    );
    assert!(
        h.standins()
            .calls()
            .iter()
            .any(|c| c == "dbaccess up sysmaster -"),
        "{:?}",
        h.standins().calls()
    );
}

#[test]
fn db2() {
    let h = run(
        "agent-db2",
        env!("CARGO_BIN_EXE_db2"),
        &["--instance", "db2inst1", "--database", "SAMPLE"],
        "Not Available",
    );
    assert!(
        h.standins()
            .calls()
            .iter()
            .any(|c| c == "db2 up connect to SAMPLE"),
        "{:?}",
        h.standins().calls()
    );
    assert!(h.standins().calls().iter().any(|c| c == "db2-terminate"));
}

#[test]
fn nfs() {
    run(
        "agent-nfs",
        env!("CARGO_BIN_EXE_nfs"),
        &["--host", "192.0.2.10", "--export", "/array"],
        "100003 is not available",
    );
}

#[test]
fn vendor_help_says_not_validated() {
    for exe in [
        env!("CARGO_BIN_EXE_oracle"),
        env!("CARGO_BIN_EXE_sybase"),
        env!("CARGO_BIN_EXE_informix"),
        env!("CARGO_BIN_EXE_db2"),
    ] {
        let out = std::process::Command::new(exe)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{exe}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains(haagents::checks::NOT_VALIDATED),
            "{exe}: {help}"
        );
    }
}

#[test]
fn a_tool_dies_with_its_agent() {
    let h = Harness::start("agent-killed");
    let standins = h.standins();
    standins.set_mode("hang");
    let mut agent = h.agent(env!("CARGO_BIN_EXE_informix"), &["--timeout", "1h"]);
    let pidfile = h.scratch.join("hung-tool.pid");
    let tool = support::poll(|| {
        std::fs::read_to_string(&pidfile)
            .ok()?
            .trim()
            .parse::<i32>()
            .ok()
    })
    .expect("the stand-in never hung");
    // SIGKILL to the agent alone, as when it crashes.
    agent.signal(Signal::SIGKILL);
    assert_eq!(agent.exit_code(), None);
    assert!(
        support::gone(tool),
        "the hung tool {tool} outlived its agent"
    );
    // What the tool left in its process group (its child `sleep`).
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(tool), Signal::SIGKILL);
}
