//! A simulated BMC for a namespaced test node ([`Bmc`]), so IPMI fencing
//! (`fence_ipmilan`, which drives `ipmitool`) can be tested end to end.
//!
//! Each BMC is OpenIPMI's `ipmi_sim` (Debian package `openipmi`) in a
//! network namespace of its own, listening on UDP port [`IPMI_PORT`] of one
//! address, 10.95.X.1, set on its loopback interface. It speaks IPMI 2.0
//! (RMCP+, `lanplus`, cipher suite [`CIPHER`]) to one administrator,
//! [`USERNAME`], whose password is random per BMC and kept in a file
//! (mode 0600) for the `password_file` of its `[[fence]]` table
//! ([`Bmc::fence_table`]).
//! [`Bmc::reach_from`] joins a namespace (a node that fences, a client) to
//! the BMC: a veth pair on its own 10.96.Y.0/24 and, in that namespace, a
//! route to the BMC's address through it, so every node reaches every BMC
//! at one address, as on a management LAN.
//!
//! The BMC's chassis is the node: `ipmi_sim` hands every chassis request
//! to a hook (its `chassis_control` program, a bash script written here),
//! which answers with the [`PowerSwitch`] of the BMC, wired to the node
//! with [`Bmc::power`]. `chassis power status` is the switch's status (on
//! while the node has processes or addresses); `power off`, `power cycle`,
//! `power reset` and `power soft` power the node off with the switch
//! (killed processes, flushed addresses, dropped mounts) when it is on;
//! `power on` fails when the node is off, as the switch does: a test node
//! comes back only when the test restarts its daemons. The hook logs each
//! request and each power-off with its time ([`Bmc::calls`],
//! [`Bmc::power_offs`]).
//!
//! The hook runs in the BMC's network namespace but in the test's mount
//! namespace (`ipmi_sim` is started from a thread that joined the network
//! namespace only, not through `ip netns exec`), so the mounts it drops
//! are the ones the test sees. Dropping the BMC stops `ipmi_sim` and
//! deletes its namespace and links, also when the test panics.

use crate::command::{Finished, run_for};
use crate::netns::{Netns, Veth};
use crate::power::PowerSwitch;
use crate::scratch::{ScratchDir, write_script};
use crate::unique;
use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// The simulator (Debian package `openipmi`).
pub const IPMI_SIM: &str = "/usr/bin/ipmi_sim";
/// The IPMI client `fence_ipmilan` runs (Debian package `ipmitool`).
pub const IPMITOOL: &str = "/usr/bin/ipmitool";
/// The fence agent (Debian package `fence-agents`).
pub const FENCE_IPMILAN: &str = "/usr/sbin/fence_ipmilan";
/// The UDP port the BMC listens on (the standard RMCP port).
pub const IPMI_PORT: u16 = 623;
/// The BMC's one user, with administrator rights.
pub const USERNAME: &str = "hafence";
/// The RMCP+ cipher suite clients must ask for: 3 (RAKP-HMAC-SHA1,
/// HMAC-SHA1-96, AES-CBC-128). ipmi_sim does not offer 17 (SHA-256), and
/// ipmitool without `-C` first asks for the channel's cipher suites, which
/// ipmi_sim does not answer: ~15 s of retries on every call.
pub const CIPHER: &str = "3";
/// The plug of the BMC's power switch that [`Bmc::power`] wires.
const PLUG: &str = "chassis";
/// The BMC's IPMB address, which ipmi_sim passes to the hook.
const MC: &str = "0x20";
/// Longest wait for ipmi_sim to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest run of one `ipmitool` or `fence_ipmilan` call.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The hook's two kinds of log lines (after the time, `$EPOCHREALTIME`).
const CALL: &str = "call";
const OFF: &str = "off";

/// One request the hook got ([`Bmc::calls`]).
#[derive(Debug, Clone)]
pub struct HookCall {
    /// When it came (the hook's clock, CLOCK_REALTIME).
    pub at: SystemTime,
    /// What ipmi_sim asked: `get power`, `set power 0`, `set reset 1`, ...
    pub request: String,
}

/// A simulated BMC: `ipmi_sim` in its own namespace, with its power switch.
#[derive(Debug)]
pub struct Bmc {
    // Dropped in this order (after Drop stops ipmi_sim): links, namespace,
    // directory.
    child: Child,
    addr: Ipv4Addr,
    password: String,
    password_file: PathBuf,
    hook_log: PathBuf,
    sim_log: PathBuf,
    switch: PowerSwitch,
    links: Vec<Veth>,
    ns: Netns,
    dir: ScratchDir,
}

impl Bmc {
    /// Starts the BMC `tag` (e.g. the node's name) in a new namespace and
    /// waits (10 s at most) until it listens. Its chassis is wired to no
    /// node yet ([`Bmc::power`]): until then every chassis request
    /// fails.
    #[track_caller]
    pub fn start(tag: &str) -> Bmc {
        for program in [IPMI_SIM, IPMITOOL, FENCE_IPMILAN] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: install Debian's openipmi, ipmitool and fence-agents \
                 (scripts/install-deps)"
            );
        }
        let dir = ScratchDir::new(&format!("bmc-{tag}"));
        let switch = PowerSwitch::install(dir.path());
        let ns = Netns::new(&format!("bmc-{tag}"));
        let addr = Ipv4Addr::new(10, 95, unique::subnet_octet(), 1);
        ns.ip(&["addr", "add", &format!("{addr}/32"), "dev", "lo"]);

        let password = random_hex(8);
        let password_file = dir.join("ipmi.pw");
        write_private(&password_file, &format!("{password}\n"));
        let hook_log = dir.join("chassis.log");
        let hook = write_script(
            dir.path(),
            "chassis",
            &hook_script(&hook_log, switch.agent()),
        );
        let lan_conf = dir.join("lan.conf");
        write_private(&lan_conf, &lan_conf_text(addr, &password, &hook));
        let emu = dir.join("bmc.emu");
        write_private(&emu, &format!("mc_setbmc {MC}\n{EMU}"));
        let state = dir.join("state");
        std::fs::create_dir_all(&state).unwrap_or_else(|e| panic!("{}: {e}", state.display()));
        let sim_log = dir.join("ipmi_sim.log");
        let log = File::create(&sim_log).unwrap_or_else(|e| panic!("{}: {e}", sim_log.display()));
        let err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("{}: {e}", sim_log.display()));
        let mut cmd = Command::new(IPMI_SIM);
        cmd.arg("-c")
            .arg(&lan_conf)
            .arg("-f")
            .arg(&emu)
            .arg("-s")
            .arg(&state)
            .arg("-n")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        // Forked from a thread inside the namespace: the child is there too,
        // in the test's mount namespace.
        let child = ns
            .enter(|| cmd.spawn())
            .and_then(|spawned| spawned)
            .unwrap_or_else(|e| panic!("cannot start {IPMI_SIM} in {}: {e}", ns.name()));
        let mut bmc = Bmc {
            child,
            addr,
            password,
            password_file,
            hook_log,
            sim_log,
            switch,
            links: Vec::new(),
            ns,
            dir,
        };
        bmc.wait_listening();
        bmc
    }

    /// Waits until ipmi_sim's UDP socket is bound; panics, with its log,
    /// if it exits or does not bind within [`START_TIMEOUT`].
    #[track_caller]
    fn wait_listening(&mut self) {
        let udp = format!("/proc/{}/net/udp", self.child.id());
        let port = format!(":{IPMI_PORT:04X}");
        let end = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{IPMI_SIM} exited ({status}):\n{}", self.sim_log_text());
            }
            let table = std::fs::read_to_string(&udp).unwrap_or_default();
            let bound = table
                .lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().nth(1))
                .any(|local| local.ends_with(&port));
            if bound {
                return;
            }
            assert!(
                Instant::now() < end,
                "{IPMI_SIM} did not listen on port {IPMI_PORT} within {START_TIMEOUT:?}:\n{}",
                self.sim_log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn sim_log_text(&self) -> String {
        std::fs::read_to_string(&self.sim_log).unwrap_or_default()
    }

    /// Wires the chassis to the node in `node`: the BMC's power requests
    /// now switch it, and `mounts` are unmounted when it is powered off.
    #[track_caller]
    pub fn power(&self, node: &Netns, mounts: &[&Path]) {
        self.switch.connect(PLUG, node, mounts);
    }

    /// Joins `from` to the BMC: a veth pair on a fresh 10.96.Y.0/24 (Y.1
    /// in `from`, Y.2 in the BMC's namespace) and a route to the BMC's
    /// address through it in `from`.
    #[track_caller]
    pub fn reach_from(&mut self, from: &Netns) {
        let octet = unique::subnet_octet();
        let near = Ipv4Addr::new(10, 96, octet, 2);
        let link = Veth::new(
            &self.ns,
            &format!("m{}", self.links.len()),
            near,
            from,
            &format!("bmc{}", unique::next()),
            Ipv4Addr::new(10, 96, octet, 1),
        );
        from.ip(&[
            "route",
            "add",
            &format!("{}/32", self.addr),
            "via",
            &near.to_string(),
        ]);
        self.links.push(link);
    }

    /// The password of [`USERNAME`].
    pub fn password(&self) -> &str {
        &self.password
    }

    /// A `[[fence]]` table named `name` that fences `node` through this
    /// BMC with `fence_ipmilan`: IPMI 2.0 (lanplus, cipher suite
    /// [`CIPHER`]), [`USERNAME`], the password from the BMC's password
    /// file, a 20 s timeout.
    pub fn fence_table(&self, name: &str, node: &str) -> String {
        format!(
            "[[fence]]\nname = \"{name}\"\nagent = [\"{FENCE_IPMILAN}\"]\nnodes = [\"{node}\"]\n\
             options = {{ ip = \"{}\", ipport = \"{IPMI_PORT}\", lanplus = \"1\", \
             cipher = \"{CIPHER}\", username = \"{USERNAME}\", password_file = \"{}\" }}\n\
             timeout = \"20s\"\n",
            self.addr,
            self.password_file.display()
        )
    }

    /// Runs `fence_ipmilan` in `from` by hand, with its command-line
    /// options: `action` (`status`, `off`, `on`, `reboot`, `monitor`) on
    /// this BMC with `password` (60 s at most). For `status` it exits 0
    /// (on), 2 (off) or 1 (failure); else 0 or 1.
    #[track_caller]
    pub fn fence_ipmilan(&self, from: &Netns, action: &str, password: &str) -> Finished {
        let mut cmd = from.command(FENCE_IPMILAN);
        cmd.arg(format!("--ip={}", self.addr))
            .arg(format!("--ipport={IPMI_PORT}"))
            .arg("--lanplus")
            .arg(format!("--cipher={CIPHER}"))
            .arg(format!("--username={USERNAME}"))
            .arg(format!("--password={password}"))
            .arg(format!("--action={action}"));
        run_for(&mut cmd, CALL_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `ipmitool -I lanplus ... ARGS` in `from` against this BMC as
    /// [`USERNAME`] (60 s at most), e.g. `["chassis", "power", "cycle"]`.
    #[track_caller]
    pub fn ipmitool(&self, from: &Netns, args: &[&str]) -> Finished {
        let mut cmd = from.command(IPMITOOL);
        cmd.args(["-I", "lanplus", "-C", CIPHER, "-p"])
            .arg(IPMI_PORT.to_string())
            .arg("-H")
            .arg(self.addr.to_string())
            .args(["-U", USERNAME, "-P", &self.password])
            .args(args);
        run_for(&mut cmd, CALL_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every request the chassis hook got, oldest first.
    pub fn calls(&self) -> Vec<HookCall> {
        self.hook_lines(CALL)
    }

    /// When the hook powered the node off (each time it found it on), with
    /// the request that did it (`power`, `reset`, `shutdown`).
    pub fn power_offs(&self) -> Vec<HookCall> {
        self.hook_lines(OFF)
    }

    /// The hook's log lines of `kind`.
    fn hook_lines(&self, kind: &str) -> Vec<HookCall> {
        std::fs::read_to_string(&self.hook_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let (at, rest) = line.split_once(' ')?;
                let (k, request) = rest.split_once(' ')?;
                let secs: f64 = at.parse().ok()?;
                (k == kind).then(|| HookCall {
                    at: SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs),
                    request: request.to_owned(),
                })
            })
            .collect()
    }

    /// The hook's log and ipmi_sim's output, for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "BMC {} ({}): chassis hook:\n{}\nipmi_sim:\n{}",
            self.addr,
            self.dir.path().display(),
            std::fs::read_to_string(&self.hook_log).unwrap_or_default(),
            self.sim_log_text()
        )
    }
}

impl Drop for Bmc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The BMC's management controller, enabled (after `mc_setbmc`): the
/// emulator's command file, see ipmi_sim_cmd(5).
const EMU: &str = "\
# IPMB DevID SDRs DevRev FwMajor FwMinor Support Manufacturer Product
mc_add 0x20 0 no-device-sdrs 0x23 0x09 0x08 0x9f 0x1291 0xf02
mc_enable 0x20
";

/// ipmi_sim's LAN config (ipmi_lan(5)): channel 1 on `addr`, one admin
/// user, the chassis hook.
fn lan_conf_text(addr: Ipv4Addr, password: &str, hook: &str) -> String {
    format!(
        r#"name "hatbmc"
set_working_mc {MC}
startlan 1
  addr {addr} {IPMI_PORT}
  priv_limit admin
  allowed_auths_callback md5
  allowed_auths_user md5
  allowed_auths_operator md5
  allowed_auths_admin md5
  guid {guid}
endlan
chassis_control "{hook} {MC}"
# user 1, the anonymous user, is left out: no access without a password.
user 2 true "{USERNAME}" "{password}" admin 10 md5
"#,
        guid = random_hex(16)
    )
}

/// The chassis hook, `chassis MC get PARM...` (prints `PARM:VALUE` lines)
/// and `chassis MC set PARM VALUE...`; errors go to stdout with a nonzero
/// exit, as ipmi_sim expects. `agent` is the power switch's.
fn hook_script(log: &Path, agent: &Path) -> String {
    format!(
        r#"# ipmi_sim's chassis_control hook: the node's power through its switch.
export LC_ALL=C # $EPOCHREALTIME with a decimal point
log='{log}'
echo "$EPOCHREALTIME {CALL} ${{*:2}}" >> "$log"
switch() {{ printf 'action=%s\nplug={PLUG}\n' "$1" | '{agent}'; }}
# Prints 1 (on) or 0 (off).
power() {{
    switch status > /dev/null 2>&1
    case $? in
        0) echo 1 ;;
        2) echo 0 ;;
        *) echo "no power state: the chassis is wired to no node"; return 1 ;;
    esac
}}
op=$2
shift 2
case "$op" in
get)
    for parm in "$@"; do
        case "$parm" in
            power) on=$(power) || {{ echo "$on"; exit 1; }}; echo "power:$on" ;;
            boot) echo "boot:default" ;;
            *) echo "cannot get $parm"; exit 1 ;;
        esac
    done ;;
set)
    while [ $# -ge 2 ]; do
        parm=$1 value=$2
        shift 2
        case "$parm:$value" in
            power:0 | reset:1 | shutdown:1)
                on=$(power) || {{ echo "$on"; exit 1; }}
                if [ "$on" = 1 ]; then
                    out=$(switch off 2>&1) || {{ echo "$out"; exit 1; }}
                    echo "$EPOCHREALTIME {OFF} $parm" >> "$log"
                fi ;;
            power:1)
                on=$(power) || {{ echo "$on"; exit 1; }}
                [ "$on" = 1 ] || {{ echo "cannot power on: the test restarts the node's daemons"; exit 1; }} ;;
            boot:* | identify:*) ;;
            *) echo "cannot set $parm to $value"; exit 1 ;;
        esac
    done ;;
*) echo "unknown operation '$op'"; exit 1 ;;
esac
exit 0"#,
        log = log.display(),
        agent = agent.display()
    )
}

/// `bytes` random bytes as lowercase hex.
fn random_hex(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw).expect("getrandom");
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `text` to `path`, readable by root only (it holds a password).
#[track_caller]
fn write_private(path: &Path, text: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
