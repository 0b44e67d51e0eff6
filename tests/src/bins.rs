//! Where the daemon and tool binaries under test are.
//!
//! `HA_BIN_DIR` names a directory holding `hamond`, `hasvrd` and `hactl` (used as is;
//! a relative path is read from the workspace root).
//! Otherwise the binaries are the workspace's own, in the cargo target
//! directory of the running test or demo (`target/<profile>/deps/TEST` or
//! `target/<profile>/hademo` -> `target/<profile>`). `cargo test` does not build other packages'
//! binaries, so the first test that needs them runs
//! `cargo build -p hamond -p hasvrd -p hactl --bins` once per test process with the
//! same profile and target directory: never stale, no extra step.
//! `HA_NO_BUILD=1` skips that build.

use crate::command::describe;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The packages whose binaries the tests run.
const PACKAGES: [&str; 3] = ["hamond", "hasvrd", "hactl"];

static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The directory with `hamond` and `hactl`; panics with the reason if they
/// cannot be found or built.
#[track_caller]
pub fn bin_dir() -> PathBuf {
    match DIR.get_or_init(locate) {
        Ok(dir) => dir.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// Path of the `hamond` daemon.
#[track_caller]
pub fn hamond() -> PathBuf {
    existing(bin_dir().join("hamond"))
}

/// Path of the `hasvrd` daemon.
#[track_caller]
pub fn hasvrd() -> PathBuf {
    existing(bin_dir().join("hasvrd"))
}

/// Path of the `hactl` tool.
#[track_caller]
pub fn hactl() -> PathBuf {
    existing(bin_dir().join("hactl"))
}

#[track_caller]
fn existing(path: PathBuf) -> PathBuf {
    assert!(
        path.is_file(),
        "{} not found (set HA_BIN_DIR, or let the harness build it)",
        path.display()
    );
    path
}

fn locate() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("HA_BIN_DIR") {
        // Tests run in the package dir: read a relative path from the
        // workspace root, where `cargo test` is typed.
        return Ok(workspace_root().join(dir));
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // target/<profile>/deps/<test binary>, or target/<profile>/<binary>
    // (the demo, run by `cargo run`).
    let parent = exe
        .parent()
        .ok_or_else(|| format!("unexpected binary path {}", exe.display()))?;
    let profile_dir = if parent.file_name().is_some_and(|n| n == "deps") {
        parent.parent().unwrap_or(parent)
    } else {
        parent
    }
    .to_path_buf();
    if std::env::var_os("HA_NO_BUILD").is_none() {
        build(&profile_dir, &PACKAGES, &["--bins"])?;
    }
    Ok(profile_dir)
}

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `cargo build` of `packages` (their `targets`: `--bins`, `--lib`) into
/// the profile directory `profile_dir` (`target/<profile>`), with the
/// profile and target directory it names.
pub fn build(profile_dir: &Path, packages: &[&str], targets: &[&str]) -> Result<(), String> {
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| format!("no target dir above {}", profile_dir.display()))?;
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(other) => other.to_owned(),
    };
    let cargo = std::env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(Into::into))
        .unwrap_or_else(|| "cargo".into());
    let manifest = workspace_root().join("Cargo.toml");
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .args(["--profile", &profile])
        .args(targets);
    for p in packages {
        cmd.args(["-p", p]);
    }
    // Cargo's own progress goes to the test's stderr, uncaptured.
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run `{}`: {e}", describe(&cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", describe(&cmd)))
    }
}
