//! Test helpers: a scratch world per test (a copy of a fixture workspace, a
//! fake `$HOME` full of fake secrets, a 127.0.0.1 listener that must receive
//! nothing) and a ready `cargo capsule` command that runs there, as the
//! current user or as an unprivileged one.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

pub const CAPSULE: &str = env!("CARGO_BIN_EXE_cargo-capsule");

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The toolchain's sysroot, whose `bin/` has cargo and rustc (no rustup
/// proxy, so tests work with any `$HOME`).
pub fn sysroot() -> PathBuf {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .expect("run rustc --print sysroot");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

/// Every file under `dir` with its content, for before/after comparisons.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    out
}

/// Counts what reaches a 127.0.0.1 TCP and UDP port.
pub struct Listener {
    pub port: u16,
    pub udp_port: u16,
    tcp_hits: Arc<AtomicUsize>,
    udp_hits: Arc<AtomicUsize>,
}

impl Listener {
    pub fn start() -> Listener {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        let tcp_hits = Arc::new(AtomicUsize::new(0));
        let hits = tcp_hits.clone();
        std::thread::spawn(move || {
            for stream in tcp.incoming() {
                hits.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut s) = stream {
                    let mut buf = Vec::new();
                    let _ = s.read_to_end(&mut buf);
                }
            }
        });
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let udp_port = udp.local_addr().unwrap().port();
        let udp_hits = Arc::new(AtomicUsize::new(0));
        let hits = udp_hits.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while udp.recv_from(&mut buf).is_ok() {
                hits.fetch_add(1, Ordering::SeqCst);
            }
        });
        Listener {
            port,
            udp_port,
            tcp_hits,
            udp_hits,
        }
    }

    pub fn hits(&self) -> usize {
        self.tcp_hits.load(Ordering::SeqCst) + self.udp_hits.load(Ordering::SeqCst)
    }
}

/// A scratch world for one test.
pub struct World {
    pub tmp: tempfile::TempDir,
    pub home: PathBuf,
    pub project: PathBuf,
    pub target: PathBuf,
    pub listener: Listener,
    /// Run as uid/gid 65534 through `setpriv` (only possible as root).
    pub as_nobody: bool,
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

impl World {
    /// `fixture` is a directory under `fixtures/`; `in_home` puts the project
    /// inside the fake `$HOME` (the sandbox hides `$HOME`, so this checks
    /// that the project is shown again).
    pub fn new(fixture: &str, in_home: bool, as_nobody: bool) -> World {
        let tmp = tempfile::Builder::new()
            .prefix("capsule-test-")
            .tempdir()
            .unwrap();
        let home = tmp.path().join("home");
        for (rel, content) in [
            (".ssh/id_rsa", "FAKE-SSH-KEY-capsule-test\n"),
            (".ssh/id_ed25519", "FAKE-ED25519-KEY-capsule-test\n"),
            (
                ".aws/credentials",
                "[default]\naws_secret_access_key=FAKE\n",
            ),
            (".config/gh/hosts.yml", "github.com:\n  oauth_token: FAKE\n"),
            (".netrc", "machine example.invalid password FAKE\n"),
        ] {
            let path = home.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        let project = if in_home {
            home.join("work").join(fixture)
        } else {
            tmp.path().join("src").join(fixture)
        };
        copy_dir(&repo().join("fixtures").join(fixture), &project);
        let target = tmp.path().join("target");
        std::fs::create_dir_all(&target).unwrap();
        let listener = Listener::start();
        // The fixtures learn the listener's ports at compile time. rustc runs
        // in the sandbox, which passes only what cargo sets, so they come
        // from cargo's `[env]` config rather than the test's environment.
        let cargo_home = tmp.path().join("cargo-home");
        std::fs::create_dir_all(&cargo_home).unwrap();
        std::fs::write(
            cargo_home.join("config.toml"),
            format!(
                "[env]\nCAPSULE_FIXTURE_PORT = \"{}\"\nCAPSULE_FIXTURE_UDP_PORT = \"{}\"\n",
                listener.port, listener.udp_port
            ),
        )
        .unwrap();
        if as_nobody {
            chown_tree(tmp.path());
        }
        World {
            tmp,
            home,
            project,
            target,
            listener,
            as_nobody,
        }
    }

    /// A `cargo capsule build --no-scan` command for the world's project.
    pub fn build(&self) -> Command {
        self.build_in(&self.target)
    }

    /// The same, with another target dir.
    pub fn build_in(&self, target: &Path) -> Command {
        // These worlds test the sandbox and the recorder; the static scan
        // has its own tests (tests/scan.rs).
        self.capsule(&["build", "--no-scan"], target)
    }

    /// `cargo capsule <words>` on the world's project and `target`.
    pub fn capsule(&self, words: &[&str], target: &Path) -> Command {
        let mut cmd = self.command();
        cmd.arg("capsule")
            .args(words)
            .arg("--manifest-path")
            .arg(self.project.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target);
        cmd
    }

    /// The bare command, with the test environment.
    pub fn command(&self) -> Command {
        let mut cmd = if self.as_nobody {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", CAPSULE]);
            c
        } else {
            Command::new(CAPSULE)
        };
        self.apply_env(&mut cmd);
        cmd
    }

    /// A plain `cargo` command with the same environment.
    pub fn cargo(&self) -> Command {
        let mut cmd = Command::new(sysroot().join("bin/cargo"));
        self.apply_env(&mut cmd);
        cmd
    }

    fn apply_env(&self, cmd: &mut Command) {
        let sysroot = sysroot();
        cmd.env_clear()
            .env("PATH", format!("{}/bin:/usr/bin:/bin", sysroot.display()))
            .env("HOME", &self.home)
            .env("CARGO_HOME", self.tmp.path().join("cargo-home"))
            .env("CARGO", sysroot.join("bin/cargo"))
            .env("CARGO_NET_OFFLINE", "true")
            .env("FAKE_DEPLOY_TOKEN", "s3cr3t-value-never-in-reports")
            .current_dir(self.tmp.path());
        if let Some(rustup) = std::env::var_os("RUSTUP_HOME") {
            cmd.env("RUSTUP_HOME", rustup);
        }
    }
}

fn chown_tree(dir: &Path) {
    let status = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Runs and returns the output, printing stderr when the test fails later.
pub fn run(mut cmd: Command) -> Output {
    let out = cmd.output().expect("run cargo-capsule");
    eprintln!("--- stderr ---\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Parses a JSON report from stdout.
pub fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not a JSON report ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The names of the report's crates, in report order.
pub fn crate_names(report: &Value) -> Vec<&str> {
    report["crates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

/// The crate entry named `name`.
pub fn krate<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["crates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no crate {name} in the report"))
}

/// `capability target outcome` for every traced observation of a crate that is not
/// noise (folded system reads, /dev/null, withheld variables).
pub fn signals(krate: &Value) -> Vec<String> {
    krate["observations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| {
            // What the sandbox recorded; the static scan is tested apart.
            if o["method"] != "traced" {
                return false;
            }
            let target = o["target"].as_str().unwrap();
            let cap = o["capability"].as_str().unwrap();
            cap != "env.withheld"
                && !target.ends_with("/**")
                && !matches!(
                    target,
                    "/etc/ld.so.cache" | "/dev/null" | "(dynamic loader search)"
                )
        })
        .map(|o| {
            format!(
                "{} {} {}",
                o["capability"].as_str().unwrap(),
                o["target"].as_str().unwrap(),
                o["outcome"].as_str().unwrap()
            )
        })
        .collect()
}

/// The observation with this capability and target.
pub fn find<'a>(krate: &'a Value, capability: &str, target: &str) -> &'a Value {
    krate["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["capability"] == capability && o["target"] == target)
        .unwrap_or_else(|| panic!("no {capability} {target} in {}", krate["name"]))
}
