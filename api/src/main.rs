//! `haapi`: the agent API for shell agents. Exit status 0 when the C call
//! would return 0, 1 when it would return -1, 2 on a usage error.
//!
//! ```text
//! haapi open NAME
//! haapi ok NAME
//! haapi err NAME [REASON...]
//! haapi close NAME
//! haapi cmd BRINGIN|BRINGOUT|FAILOVER NAME
//! ```
//!
//! Called through a link named after one of SureHA's commands, it is that
//! command: `APIOPEN.x NAME`, `APIOK.x NAME`, `APIERROR.x NAME [REASON...]`
//! (also `APIERR.x`), `APICLOSE.x NAME`, `APICMD.x CMD NAME` (case and the
//! `.x` suffix do not matter). The manual's shell template runs
//! `$HAHOME/bin/APIOK.x` and `$HAHOME/bin/APIERROR.x`; make those links
//! with `haapi links $HAHOME/bin`.
//!
//! The socket and grace period come from `HA_AGENT_SOCKET` and
//! `HA_AGENT_GRACE`, as for the library.

use haapi::{Client, Error};
use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

/// The link names `haapi links` makes, SureHA's spelling.
const LINKS: [&str; 5] = [
    "APIOPEN.x",
    "APIOK.x",
    "APIERROR.x",
    "APICLOSE.x",
    "APICMD.x",
];

const USAGE: &str = "usage: haapi open|ok|close NAME
       haapi err NAME [REASON...]
       haapi cmd BRINGIN|BRINGOUT|FAILOVER NAME
       haapi links DIR      (makes APIOPEN.x APIOK.x APIERROR.x APICLOSE.x APICMD.x in DIR)
environment: HA_AGENT_SOCKET (default /run/hacluster/agent.sock), HA_AGENT_GRACE (seconds, default 10)";

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    let mut args: Vec<OsString> = args.collect();
    if let Some(request) = linked_as(&argv0) {
        args.insert(0, request.into());
    }
    let args: Vec<String> = match args.into_iter().map(OsString::into_string).collect() {
        Ok(args) => args,
        Err(bad) => {
            eprintln!("haapi: argument {bad:?} is not UTF-8");
            return ExitCode::from(1);
        }
    };
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["-h" | "--help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        ["links", dir] => links(Path::new(dir)),
        [request, rest @ ..] => match call(request, rest) {
            None => usage(),
            Some(Ok(())) => ExitCode::SUCCESS,
            Some(Err(e)) => {
                eprintln!("haapi: {}: {e}", words.join(" "));
                ExitCode::from(1)
            }
        },
        [] => usage(),
    }
}

/// The request a link name stands for.
fn linked_as(argv0: &OsString) -> Option<&'static str> {
    let name = Path::new(argv0).file_name()?.to_str()?.to_ascii_lowercase();
    let name = name.strip_suffix(".x").unwrap_or(&name);
    Some(match name {
        "apiopen" => "open",
        "apiok" => "ok",
        "apierr" | "apierror" => "err",
        "apiclose" => "close",
        "apicmd" => "cmd",
        _ => return None,
    })
}

/// Runs a request; None when the words are not one.
fn call(request: &str, rest: &[&str]) -> Option<Result<(), Error>> {
    let client = match Client::from_env() {
        Ok(client) => client,
        Err(e) => return Some(Err(e)),
    };
    Some(match (request, rest) {
        ("open", [name]) => client.open(name),
        ("ok", [name]) => client.ok(name),
        ("err", [name, reason @ ..]) => client.err(name, &reason.join(" ")),
        ("close", [name]) => client.close(name),
        ("cmd", [command, name]) => client.cmd(command, name),
        _ => return None,
    })
}

/// `haapi links DIR`: SureHA's command names as links to this program.
fn links(dir: &Path) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("haapi: cannot find this program's path: {e}");
            return ExitCode::from(1);
        }
    };
    for name in LINKS {
        let link = dir.join(name);
        // Replace an old link, never a file someone put there.
        if std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()) {
            let _ = std::fs::remove_file(&link);
        }
        if let Err(e) = std::os::unix::fs::symlink(&exe, &link) {
            eprintln!(
                "haapi: cannot link {} to {}: {e}",
                link.display(),
                exe.display()
            );
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}
