//! Tests of [`ExternalAgent`] with small shell-script agents written to a
//! temporary directory: the stdin format, the password from its file and
//! never in the logs, the reading of exit codes, and the timeout.

use super::*;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

const PASSWORD: &str = "s3cr3t-Pa55";

/// A temporary directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "hamond-fence-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Dir(path)
    }

    /// Writes an executable `/bin/sh` script `name` with `body`.
    fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn agent(program: &Path, password_file: Option<&Path>, timeout: Duration) -> ExternalAgent {
    ExternalAgent::new(&FenceConfig {
        name: "test".into(),
        agent: vec![program.to_string_lossy().into_owned(), "--arg".into()],
        nodes: vec!["beta".into()],
        options: [("ip", "10.0.0.9"), ("username", "admin"), ("lanplus", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        password_file: password_file.map(Path::to_path_buf),
        timeout,
        delay: Duration::ZERO,
    })
}

/// Runs `f` on a current-thread runtime, with every tracing event at DEBUG
/// and above written to the returned text.
fn logged<T>(f: impl std::future::Future<Output = T>) -> (T, String) {
    #[derive(Clone)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf(Arc::default());
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let out = rt.block_on(f);
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    (out, text)
}

#[test]
fn stdin_lines_follow_the_convention() {
    let dir = Dir::new();
    let pw = dir.0.join("ipmi.pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let seen = dir.0.join("stdin");
    let argv = dir.0.join("argv");
    let program = dir.script(
        "agent",
        &format!(
            "cat > {}\necho \"$@\" > {}\nexit 0",
            seen.display(),
            argv.display()
        ),
    );
    let a = agent(&program, Some(&pw), Duration::from_secs(10));
    let (r, _) = logged(a.fence("beta", Action::Off));
    assert_eq!(r, Ok(FenceOutcome::Done));
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        format!(
            "action=off\nplug=beta\nport=beta\nip=10.0.0.9\nlanplus=1\nusername=admin\npassword={PASSWORD}\n"
        )
    );
    assert_eq!(std::fs::read_to_string(&argv).unwrap(), "--arg\n");

    // monitor names no node.
    let (r, _) = logged(a.monitor());
    assert_eq!(r, Ok(()));
    let text = std::fs::read_to_string(&seen).unwrap();
    assert!(text.starts_with("action=monitor\nip="), "{text}");

    // A node the device does not fence is refused without running it.
    std::fs::remove_file(&seen).unwrap();
    let (r, _) = logged(a.fence("alpha", Action::Off));
    assert!(matches!(r, Err(FenceError::NotMine { .. })), "{r:?}");
    assert!(!seen.exists());
}

#[test]
fn password_is_read_at_each_call_and_never_logged() {
    let dir = Dir::new();
    let pw = dir.0.join("pw");
    // The agent prints what it got on both outputs, as a verbose agent might.
    let program = dir.script(
        "agent",
        "input=$(cat)\necho \"got: $input\"\necho \"err: $input\" >&2\nexit 1",
    );
    let a = agent(&program, Some(&pw), Duration::from_secs(10));

    let (r, _) = logged(a.fence("beta", Action::Off));
    match r {
        Err(FenceError::Setup(why)) => assert!(why.contains("password file"), "{why}"),
        other => panic!("{other:?}"),
    }

    std::fs::write(&pw, format!("{PASSWORD}\r\n")).unwrap();
    let (r, logs) = logged(a.fence("beta", Action::Off));
    let e = r.unwrap_err();
    assert!(
        matches!(e, FenceError::Failed { code: Some(1), .. }),
        "{e:?}"
    );
    assert!(!e.to_string().contains(PASSWORD), "{e}");
    assert!(!logs.contains(PASSWORD), "{logs}");
    assert!(logs.contains("password=******"), "{logs}");
    assert!(logs.contains("got: action=off"), "{logs}");

    std::fs::write(&pw, "two\nlines\n").unwrap();
    let (r, _) = logged(a.fence("beta", Action::Off));
    assert!(matches!(r, Err(FenceError::Setup(_))), "{r:?}");
    let _ = std::io::stderr().flush();
}

#[test]
fn exit_codes_follow_fence_agents() {
    let dir = Dir::new();
    let code = dir.0.join("code");
    let program = dir.script(
        "agent",
        &format!("cat > /dev/null\nexit $(cat {})", code.display()),
    );
    let a = agent(&program, None, Duration::from_secs(10));
    let run = |c: i32, action: Action| {
        std::fs::write(&code, c.to_string()).unwrap();
        logged(a.fence("beta", action)).0
    };
    assert_eq!(
        run(0, Action::Status),
        Ok(FenceOutcome::Power(PowerState::On))
    );
    assert_eq!(
        run(2, Action::Status),
        Ok(FenceOutcome::Power(PowerState::Off))
    );
    assert!(matches!(
        run(1, Action::Status),
        Err(FenceError::Failed { code: Some(1), .. })
    ));
    for action in [Action::Off, Action::Reboot, Action::On] {
        assert_eq!(run(0, action), Ok(FenceOutcome::Done), "{action}");
        assert!(matches!(
            run(2, action),
            Err(FenceError::Failed { code: Some(2), .. })
        ));
    }
    assert!(matches!(
        interpret(Action::Off, None, String::new()),
        Err(FenceError::Failed { code: None, .. })
    ));

    // A missing program is a setup error that names it.
    let a = agent(&dir.0.join("nope"), None, Duration::from_secs(10));
    match logged(a.fence("beta", Action::Off)).0 {
        Err(FenceError::Setup(why)) => assert!(why.contains("nope"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn timeout_kills_the_process_group() {
    let dir = Dir::new();
    let pid_file = dir.0.join("pid");
    // A grandchild that would outlive a kill of the agent alone.
    let program = dir.script(
        "agent",
        &format!("sleep 30 &\necho $! > {}\nwait", pid_file.display()),
    );
    let a = agent(&program, None, Duration::from_millis(500));
    let started = std::time::Instant::now();
    let (r, _) = logged(a.fence("beta", Action::Off));
    assert_eq!(r, Err(FenceError::TimedOut(Duration::from_millis(500))));
    assert!(started.elapsed() < Duration::from_secs(5));
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z")
    {
        assert!(std::time::Instant::now() < deadline, "sleep {pid} survived");
        std::thread::sleep(Duration::from_millis(20));
    }
}
