//! `cargo capsule build` on `fixtures/demo`: every build script runs in the
//! sandbox, and the report says exactly what each one tried.

use std::time::Duration;

use crate::util::{self, World, find, krate, report, run, signals};

fn assert_demo(world: &World) {
    let host_home = util::snapshot(&world.home);
    let out = run({
        let mut c = world.build();
        c.args(["--format", "json"]);
        c
    });
    assert!(out.status.success(), "build failed: {:?}", out.status);
    let report = report(&out);
    assert_eq!(report["schema_version"], 3);
    assert_eq!(report["profile"], "build-script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("s3cr3t-value"), "a withheld value leaked");

    let names = util::crate_names(&report);
    assert_eq!(
        names,
        [
            "benign-out",
            "c-compile",
            "daemon",
            "net-connect",
            "raw-syscall",
            "spawn-shell",
            "ssh-reader",
            "write-outside"
        ]
    );
    for c in report["crates"].as_array().unwrap() {
        assert_eq!(c["build_script"]["status"], "ran", "{}", c["name"]);
        assert_eq!(c["build_script"]["exit_code"], 0, "{}", c["name"]);
        assert_eq!(
            c["source"],
            format!("path+$WORKSPACE/{}", c["name"].as_str().unwrap())
        );
        let withheld = find(c, "env.withheld", "FAKE_DEPLOY_TOKEN");
        assert_eq!(withheld["outcome"], "denied");
    }

    assert_eq!(
        signals(krate(&report, "benign-out")),
        ["fs.write $OUT_DIR/generated.rs allowed"]
    );
    assert_eq!(
        signals(krate(&report, "ssh-reader")),
        ["fs.read $HOME/.ssh/id_rsa denied"]
    );
    assert_eq!(
        signals(krate(&report, "raw-syscall")),
        ["fs.read $HOME/.aws/credentials denied"]
    );
    let port = world.listener.port;
    assert_eq!(
        signals(krate(&report, "net-connect")),
        [format!("net.connect 127.0.0.1:{port} denied")]
    );
    assert_eq!(
        signals(krate(&report, "write-outside")),
        [
            "fs.write $CARGO_MANIFEST_DIR/capsule-was-here.txt denied",
            "fs.write $HOME/capsule-was-here.txt denied"
        ]
    );
    assert_eq!(
        signals(krate(&report, "spawn-shell")),
        [
            "process.exec /usr/bin/sh allowed",
            "process.fork $BUILD_SCRIPT allowed"
        ]
    );
    let sh = find(krate(&report, "spawn-shell"), "process.exec", "/usr/bin/sh");
    assert_eq!(sh["detail"]["argv"][0], "sh -c 'echo capsule-spawn'");

    let daemon = krate(&report, "daemon");
    let d = find(daemon, "process.daemon", "$BUILD_SCRIPT");
    assert_eq!(d["outcome"], "denied");
    assert_eq!(d["detail"]["argv"][0], "$BUILD_SCRIPT --daemon $OUT_DIR");
    assert!(signals(daemon).contains(&"fs.write $OUT_DIR/daemon-ready allowed".to_string()));

    let cc = krate(&report, "c-compile");
    let cc_signals = signals(cc);
    for expected in [
        "fs.read $CARGO_MANIFEST_DIR/src/hello.c allowed",
        "fs.write $OUT_DIR/hello.o allowed",
        "fs.write $OUT_DIR/libhello.a allowed",
        "process.exec /usr/bin/cc allowed",
        "process.exec /usr/bin/ar allowed",
    ] {
        assert!(
            cc_signals.contains(&expected.to_string()),
            "{expected} not in {cc_signals:#?}"
        );
    }
    assert!(
        !cc_signals.iter().any(|s| s.ends_with(" denied")),
        "the benign C build was denied something: {cc_signals:#?}"
    );

    // The daemon would write its marker 3 s after the build script exits.
    std::thread::sleep(Duration::from_secs(4));
    let markers: Vec<_> = util::snapshot(&world.target)
        .into_keys()
        .filter(|p| p.ends_with("daemon-marker"))
        .collect();
    assert!(markers.is_empty(), "the daemon survived: {markers:?}");
    assert_eq!(
        world.listener.hits(),
        0,
        "the 127.0.0.1 listener was reached"
    );
    assert_eq!(
        util::snapshot(&world.home),
        host_home,
        "the host HOME changed"
    );
    assert!(
        !world
            .project
            .join("write-outside/capsule-was-here.txt")
            .exists()
    );
}

#[test]
fn demo_as_current_user_project_in_home() {
    let world = World::new("demo", true, false);
    assert_demo(&world);
}

#[test]
fn demo_as_unprivileged_user() {
    if !util::is_root() {
        // Already unprivileged: the test above covers this user.
        let world = World::new("demo", false, false);
        assert_demo(&world);
        return;
    }
    let probe = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "test",
            "-x",
        ])
        .arg(util::sysroot().join("bin/cargo"))
        .status()
        .expect("setpriv (util-linux) is needed to test as an unprivileged user");
    assert!(
        probe.success(),
        "uid 65534 cannot run {}: make the toolchain reachable (`chmod o+x /root`, as .ci/run does)",
        util::sysroot().display()
    );
    let world = World::new("demo", false, true);
    assert_demo(&world);
}

#[test]
fn reports_are_identical_across_runs_and_cached_runs_are_listed() {
    let world = World::new("demo", false, false);
    let json = |target: &std::path::Path, extra: &[&str]| {
        let mut c = world.build_in(target);
        c.args(["--format", "json"]).args(extra);
        let out = run(c);
        assert!(out.status.success());
        out.stdout
    };
    let first = json(&world.target, &[]);
    // A second clean build elsewhere gives the same bytes.
    let other_target = world.tmp.path().join("target-2");
    let second = json(&other_target, &[]);
    if first != second {
        let a = String::from_utf8_lossy(&first);
        let b = String::from_utf8_lossy(&second);
        let diff: Vec<_> = a
            .lines()
            .zip(b.lines())
            .filter(|(x, y)| x != y)
            .take(5)
            .collect();
        panic!("two clean sandboxed builds differ: {diff:#?}");
    }
    let on_disk = std::fs::read(other_target.join("capsule/build-report.json")).unwrap();
    assert_eq!(
        on_disk, second,
        "the report file is the --format json output"
    );

    // Warm target dir: nothing re-runs, the recorded observations are kept.
    let cached = json(&world.target, &[]);
    let cached_report: serde_json::Value = serde_json::from_slice(&cached).unwrap();
    let first_report: serde_json::Value = serde_json::from_slice(&first).unwrap();
    for (a, b) in first_report["crates"]
        .as_array()
        .unwrap()
        .iter()
        .zip(cached_report["crates"].as_array().unwrap())
    {
        assert_eq!(b["build_script"]["status"], "cached", "{}", b["name"]);
        assert_eq!(a["observations"], b["observations"], "{}", a["name"]);
    }
    // --fresh re-runs only the build scripts.
    let fresh = json(&world.target, &["--fresh"]);
    let fresh_report: serde_json::Value = serde_json::from_slice(&fresh).unwrap();
    for c in fresh_report["crates"].as_array().unwrap() {
        assert_eq!(c["build_script"]["status"], "ran", "{}", c["name"]);
    }
}

#[test]
fn build_scripts_left_by_a_plain_build_run_again_in_the_sandbox() {
    let world = World::new("demo", false, false);
    // A plain cargo build of one harmless package first.
    let status = world
        .cargo()
        .args(["build", "-q", "-p", "benign-out", "--manifest-path"])
        .arg(world.project.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&world.target)
        .status()
        .unwrap();
    assert!(status.success());
    // The unsandboxed build script is replaced by a shim, which cargo sees
    // as a new build script: it runs again, in the sandbox.
    let mut c = world.build();
    c.args(["-p", "benign-out", "--format", "json"]);
    let out = run(c);
    assert!(out.status.success());
    let r = report(&out);
    let b = krate(&r, "benign-out");
    assert_eq!(b["build_script"]["status"], "ran");
    assert_eq!(signals(b), ["fs.write $OUT_DIR/generated.rs allowed"]);
    // Without a record of that run, a cached build script says so.
    std::fs::remove_dir_all(world.target.join("capsule/runs")).unwrap();
    let mut c = world.build();
    c.args(["-p", "benign-out", "--format", "json"]);
    let out = run(c);
    assert!(out.status.success());
    let r = report(&out);
    assert_eq!(
        krate(&r, "benign-out")["build_script"]["status"],
        "cached-unrecorded"
    );
}

#[test]
fn human_output_lists_denied_first() {
    let world = World::new("demo", false, false);
    let out = run(world.build());
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("cargo-capsule: 8 build scripts, 8 ran in the sandbox"),
        "{text}"
    );
    let ssh = text.find("ssh-reader@0.1.0").unwrap();
    let benign = text.find("benign-out@0.1.0").unwrap();
    assert!(
        ssh < benign,
        "crates with denied actions come first:\n{text}"
    );
    assert!(
        text.contains("denied  fs.read         $HOME/.ssh/id_rsa"),
        "{text}"
    );
    assert!(text.contains("full report: "), "{text}");
}

#[test]
fn a_build_script_that_needs_the_network_fails_with_one_line() {
    let world = World::new("exfil", false, false);
    let mut c = world.build();
    c.args(["--format", "json"]);
    let out = run(c);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("cargo-capsule: build script of exfil-dns@0.1.0"))
        .collect();
    // Once from the shim (among cargo's output), once at the end.
    assert!(!lines.is_empty(), "{stderr}");
    assert!(
        lines[0].contains("exited with status 101")
            && lines[0].contains("denied: net.dns stolen-token.exfil.invalid"),
        "{}",
        lines[0]
    );
    assert!(
        stderr.trim_end().ends_with(lines[0]),
        "the last line explains the failure"
    );
    let r = report(&out);
    let k = krate(&r, "exfil-dns");
    assert_eq!(k["build_script"]["exit_code"], 101);
    assert_eq!(signals(k), ["net.dns stolen-token.exfil.invalid denied"]);
    let dns = find(k, "net.dns", "stolen-token.exfil.invalid");
    assert_eq!(
        dns["detail"]["server"][0],
        format!("127.0.0.1:{}", world.listener.udp_port)
    );
    assert_eq!(world.listener.hits(), 0);
}

#[test]
fn the_walls_hold_symlinks_devices_and_host_sockets() {
    let world = World::new("escape", false, false);
    let mut c = world.build();
    c.args(["--format", "json"]);
    let out = run(c);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = |prefix: &str| {
        stderr
            .lines()
            .find_map(|l| {
                l.split_once(prefix)
                    .map(|(_, rest)| rest.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no `{prefix}` in {stderr}"))
    };
    assert!(
        line("escape: symlink read").starts_with("failed"),
        "{stderr}"
    );
    assert_eq!(
        line("escape: dev entries:"),
        "fd,full,null,random,shm,stderr,stdin,stdout,tty,urandom,zero"
    );
    assert_eq!(line("escape: run entries:"), "");
    let r = report(&out);
    let k = krate(&r, "escape-attempts");
    // The read through the planted symlink is reported at its target.
    let read = find(k, "fs.read", "$HOME/.ssh/id_rsa");
    assert_eq!(read["outcome"], "denied");
    // mknodat is a write, though no file is opened.
    let fifo = find(k, "fs.write", "$OUT_DIR/fifo");
    assert_eq!(fifo["outcome"], "allowed");
    assert_eq!(fifo["detail"]["op"][0], "mknod");
    if cfg!(target_arch = "x86_64") {
        // A denied syscall is recorded, and fails with EPERM.
        assert_eq!(line("escape: unshare returned"), "-1");
        let denied = find(k, "sys.privileged", "unshare");
        assert_eq!(denied["outcome"], "denied");
    }
}

#[test]
fn the_permissive_profile_allows_and_still_records() {
    let world = World::new("demo", false, false);
    let mut c = world.build();
    c.args(["--profile", "permissive", "--format", "json"])
        .args(["-p", "ssh-reader", "-p", "write-outside"]);
    let out = run(c);
    assert!(out.status.success());
    let r = report(&out);
    assert_eq!(r["profile"], "permissive");
    assert_eq!(
        signals(krate(&r, "ssh-reader")),
        ["fs.read $HOME/.ssh/id_rsa allowed"]
    );
    assert_eq!(
        signals(krate(&r, "write-outside")),
        [
            "fs.write $CARGO_MANIFEST_DIR/capsule-was-here.txt allowed",
            "fs.write $HOME/capsule-was-here.txt allowed"
        ]
    );
    assert!(world.home.join("capsule-was-here.txt").exists());
}
