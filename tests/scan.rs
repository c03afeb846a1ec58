//! The static scan on `fixtures/scan`: exact capability sets and evidence
//! per fixture crate, a clean control with nothing, files that do not parse
//! reported as unscanned, the cache, and a corrupt artifact.
//!
//! The fixtures depend on `libc` and `tokio` from crates.io, so these tests
//! use the machine's cargo home (its registry cache; `.ci/run` fetches the
//! fixtures' dependencies first) instead of the world's empty one.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::util::{World, krate, report, run};

/// The machine's cargo home, with its registry cache.
fn real_cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"))
}

/// `cargo capsule <command>` on the scan fixtures, JSON output.
fn capsule(world: &World, command: &str) -> Command {
    let mut cmd = world.capsule(&[command, "--format", "json"], &world.target);
    cmd.env("CARGO_HOME", real_cargo_home())
        .env_remove("CARGO_NET_OFFLINE");
    cmd
}

/// `phase method capability target` of each static observation.
fn static_set(krate: &Value) -> BTreeSet<String> {
    krate["observations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["method"] != "traced")
        .map(|o| {
            assert_eq!(o["outcome"], "possible", "{o}");
            format!(
                "{} {} {} {}",
                o["phase"].as_str().unwrap(),
                o["method"].as_str().unwrap(),
                o["capability"].as_str().unwrap(),
                o["target"].as_str().unwrap()
            )
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The observation with this method, capability and target.
fn evidence<'a>(krate: &'a Value, method: &str, capability: &str, target: &str) -> &'a Value {
    krate["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["method"] == method && o["capability"] == capability && o["target"] == target)
        .unwrap_or_else(|| panic!("no {method} {capability} {target} in {}", krate["name"]))
        .get("detail")
        .unwrap()
}

#[test]
fn the_scan_finds_exactly_each_fixtures_capabilities() {
    let world = World::new("scan", false, false);
    let out = run(capsule(&world, "build"));
    assert_eq!(out.status.code(), Some(0), "build failed");
    let built = report(&out);
    assert_eq!(built["schema_version"], 3);

    let expected: &[(&str, &[&str])] = &[
        (
            "std-fs-read",
            &[
                "runtime source fs.read std::fs::read_to_string",
                "runtime symbol fs.read std::fs::read_to_string",
            ],
        ),
        (
            "std-fs-write",
            &[
                "runtime source fs.write std::fs::write",
                "runtime symbol fs.write std::fs::write",
            ],
        ),
        (
            "std-net-connect",
            &[
                "runtime source net.connect std::net::TcpStream::connect",
                "runtime symbol net.connect std::net::TcpStream::connect",
            ],
        ),
        (
            "std-net-listen",
            &[
                "runtime source net.listen std::net::TcpListener::bind",
                "runtime symbol net.listen std::net::TcpListener::bind",
            ],
        ),
        (
            "std-process",
            &[
                "runtime source process.exec std::process::Command",
                "runtime symbol process.exec std::process::Command",
            ],
        ),
        (
            "std-env",
            &[
                "runtime source env.read CAPSULE_FIXTURE_SETTING",
                "runtime symbol env.read std::env::var",
            ],
        ),
        (
            "ffi-libc",
            &[
                "runtime source net.connect connect",
                "runtime source net.connect socket",
                "runtime source unsafe block",
                "runtime symbol net.connect connect",
                "runtime symbol net.connect socket",
            ],
        ),
        (
            "tokio-net",
            &[
                "runtime source net.connect tokio::net::TcpStream::connect",
                // tokio's generic connect, instantiated in this crate's
                // object file, calls mio's.
                "runtime symbol net.connect mio::net::TcpStream::connect",
                "runtime symbol net.connect tokio::net::TcpStream::connect",
            ],
        ),
        (
            "obfuscated",
            &[
                "runtime source obfuscation base64",
                "runtime source obfuscation hex",
                "runtime source obfuscation ip-address",
                "runtime source obfuscation string-arithmetic",
                "runtime source obfuscation string-from-bytes",
                "runtime source obfuscation url",
            ],
        ),
        (
            "ships-blob",
            &["runtime blob binary.shipped assets/helper.dat"],
        ),
        (
            "odd-sources",
            &[
                "runtime source fs.read blob.rs",
                "runtime source fs.read snippet.rs",
            ],
        ),
        (
            // Its build script is `setup.rs` (`build_script_setup-HASH`).
            "custom-build",
            &[
                "build-script source env.read OUT_DIR",
                "build-script source fs.write std::fs::write",
                "build-script symbol env.read std::env::var_os",
                "build-script symbol fs.write std::fs::write",
                "runtime source fs.read $OUT_DIR/value.txt",
            ],
        ),
        ("clean-control", &[]),
    ];
    for (name, capabilities) in expected {
        let entry = krate(&built, name);
        assert_eq!(static_set(entry), set(capabilities), "{name}");
        if *name != "odd-sources" {
            assert!(entry.get("scan_errors").is_none(), "{name}: {entry}");
        }
    }
    // Nothing of the control at all, traced or static.
    assert_eq!(
        krate(&built, "clean-control")["observations"],
        Value::Array(vec![])
    );
    // Dependencies are scanned too: tokio reaches mio, mio calls connect(2);
    // libc's build script (a linked executable, compared with an empty
    // program) reads the environment and runs rustc.
    assert!(static_set(krate(&built, "mio")).contains("runtime symbol net.connect connect"));
    let libc: BTreeSet<String> = static_set(krate(&built, "libc"))
        .into_iter()
        .filter(|s| s.starts_with("build-script symbol "))
        .collect();
    // Exactly: not the C functions std calls behind `Command` (execvp,
    // posix_spawnp, fork, sendmsg...), which the baseline sets aside.
    assert_eq!(
        libc,
        set(&[
            "build-script symbol env.read std::env::var",
            "build-script symbol env.read std::env::var_os",
            "build-script symbol env.read std::env::vars_os",
            "build-script symbol process.exec std::process::Command",
        ])
    );

    // Evidence: symbols, file:line, names, values.
    let read = krate(&built, "std-fs-read");
    assert!(
        evidence(read, "symbol", "fs.read", "std::fs::read_to_string")["symbol"]
            .as_array()
            .unwrap()
            .contains(&Value::from("std::fs::read_to_string"))
    );
    assert_eq!(
        evidence(read, "source", "fs.read", "std::fs::read_to_string")["location"],
        serde_json::json!(["src/lib.rs:7"])
    );
    assert_eq!(
        evidence(
            krate(&built, "std-env"),
            "source",
            "env.read",
            "CAPSULE_FIXTURE_SETTING"
        )["location"],
        serde_json::json!(["src/lib.rs:5"])
    );
    let obfuscated = krate(&built, "obfuscated");
    assert_eq!(
        evidence(obfuscated, "source", "obfuscation", "url")["value"],
        serde_json::json!(["http://203.0.113.7:8080/collect"])
    );
    assert_eq!(
        evidence(obfuscated, "source", "obfuscation", "ip-address")["value"],
        serde_json::json!(["203.0.113.7"])
    );
    assert_eq!(
        evidence(obfuscated, "source", "obfuscation", "string-from-bytes")["value"],
        serde_json::json!(["127.0.0.1"])
    );
    let blob = evidence(
        krate(&built, "ships-blob"),
        "blob",
        "binary.shipped",
        "assets/helper.dat",
    );
    assert_eq!(blob["format"], serde_json::json!(["elf"]));
    assert_eq!(blob["size"], serde_json::json!(["128"]));
    assert_eq!(blob["kind"], serde_json::json!(["x86_64 executable"]));

    // Files that are not Rust are unscanned, not clean, and the exit
    // status does not change.
    let errors: Vec<String> = krate(&built, "odd-sources")["scan_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["method"].as_str().unwrap(),
                e["message"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("source src/blob.rs: not UTF-8"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("source src/snippet.rs:1:"),
        "{errors:?}"
    );
    assert!(
        errors.iter().all(|e| e.ends_with("the file is unscanned")),
        "{errors:?}"
    );

    // `scan` reports the static part of the same findings, from the cache.
    let out = run(capsule(&world, "scan"));
    assert_eq!(out.status.code(), Some(0));
    let scanned = report(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("cargo-capsule: scanned "))
        .expect("a scan summary line");
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    // crates, jobs, cached: only the workspace's own package walks (local
    // files may change at any time) are redone.
    assert_eq!(numbers[1] - numbers[2], 13, "{line}");
    for entry in scanned["crates"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        assert!(entry.get("build_script").is_none());
        assert_eq!(static_set(entry), static_set(krate(&built, name)), "{name}");
        assert!(
            entry["observations"]
                .as_array()
                .unwrap()
                .iter()
                .all(|o| o["method"] != "traced")
        );
    }
    assert!(
        scanned["crates"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["name"] != "clean-control")
    );

    // A corrupt artifact: cargo still takes the unit as fresh; the scan
    // reports the library unreadable and keeps what the sources show.
    let deps = world.target.join("debug/deps");
    let rlib = std::fs::read_dir(&deps)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("libstd_fs_read-") && n.ends_with(".rlib")
        })
        .unwrap();
    let bytes = std::fs::read(&rlib).unwrap();
    std::fs::write(&rlib, &bytes[..bytes.len().min(300)]).unwrap();
    let out = run(capsule(&world, "scan"));
    assert_eq!(out.status.code(), Some(0));
    let scanned = report(&out);
    let entry = krate(&scanned, "std-fs-read");
    assert_eq!(
        static_set(entry),
        set(&["runtime source fs.read std::fs::read_to_string"])
    );
    let errors = entry["scan_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["method"], "symbol");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(message.starts_with("libstd_fs_read"), "{message}");
    assert!(message.contains(".rlib"), "{message}");

    // The catalogue is the user's to extend: `capsule.toml` at the
    // workspace root is read, and a changed catalogue invalidates the cache.
    std::fs::write(
        world.project.join("capsule.toml"),
        "[api.\"net.connect\"]\ninclude = [\"clean_control::Point::norm\"]\n",
    )
    .unwrap();
    let out = run(capsule(&world, "scan"));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        static_set(krate(&report(&out), "clean-control")),
        set(&["runtime symbol net.connect clean_control::Point::norm"])
    );
    // A malformed catalogue file is a tool error naming the file.
    let bad = world.tmp.path().join("bad-catalogue.toml");
    std::fs::write(&bad, "[api.\"Net Connect\"]\ninclude = [\"x::y\"]\n").unwrap();
    let out = run({
        let mut c = capsule(&world, "scan");
        c.arg("--catalogue").arg(&bad);
        c
    });
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad-catalogue.toml") && stderr.contains("not a capability name"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn proc_macros_are_scanned_in_their_phase_as_an_unprivileged_user() {
    // No crates.io dependencies here: the world's own (empty) cargo home,
    // so this one can run as uid 65534 (when the tests run as root): the
    // scan's cache and baselines must work for an unprivileged user too.
    let world = World::new("macros", false, crate::util::is_root());
    let out = run({
        let mut c = world.capsule(&["scan", "--format", "json"], &world.target);
        c.args(["--", "--keep-going"]);
        c
    });
    // exfil-user fails to compile by design (its macro is denied).
    assert_eq!(out.status.code(), Some(2));
    let scanned = report(&out);
    assert_eq!(
        static_set(krate(&scanned, "exfil-macro")),
        set(&[
            "proc-macro source env.read CAPSULE_FIXTURE_UDP_PORT",
            "proc-macro source env.read HOME",
            "proc-macro source fs.read std::fs::read",
            "proc-macro source net.connect std::net::UdpSocket::bind",
            "proc-macro source obfuscation ip-address",
            "proc-macro symbol env.read std::env::var",
            "proc-macro symbol fs.read std::fs::read",
            "proc-macro symbol net.connect std::net::UdpSocket::bind",
            "proc-macro symbol net.connect std::net::UdpSocket::send_to",
            "proc-macro symbol net.dns std::net::ToSocketAddrs::to_socket_addrs",
            "proc-macro symbol net.dns std::net::lookup_host",
        ])
    );
    assert_eq!(
        static_set(krate(&scanned, "spawn-macro")),
        set(&[
            "proc-macro source process.exec std::process::Command",
            "proc-macro symbol env.read std::env::vars_os",
            "proc-macro symbol process.exec std::process::Command",
        ])
    );
    // The benign derive can do nothing: it is not in the scan report.
    assert!(
        scanned["crates"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["name"] != "benign-derive")
    );
}

#[test]
fn the_manifest_is_deterministic_and_written_atomically() {
    let world = World::new("demo", true, false);
    let manifest = |target: &std::path::Path, output: Option<&str>| {
        let mut c = world.capsule(&["manifest"], target);
        if let Some(o) = output {
            c.args(["-o", o]);
        }
        run(c)
    };
    // Default: capsule.lock at the workspace root.
    let out = manifest(&world.target, None);
    assert_eq!(out.status.code(), Some(0));
    let written = std::fs::read_to_string(world.project.join("capsule.lock")).unwrap();
    let parsed: toml::Value = toml::from_str(&written).unwrap();
    assert_eq!(parsed["schema_version"].as_integer(), Some(1));
    let ssh = parsed["crate"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str() == Some("ssh-reader"))
        .unwrap();
    let script: Vec<String> = ssh["capabilities"]["build-script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {} {} {}",
                c["method"].as_str().unwrap(),
                c["capability"].as_str().unwrap(),
                c["target"].as_str().unwrap(),
                c["outcome"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "traced fs.read $HOME/.ssh/id_rsa denied",
        "symbol fs.read std::fs::read_to_string possible",
        "source fs.read std::fs::read_to_string possible",
    ] {
        assert!(
            script.iter().any(|s| s == expected),
            "{expected}: {script:?}"
        );
    }
    // Nothing of this machine: no withheld variables, no real paths.
    assert!(!written.contains("env.withheld"));
    assert!(!written.contains(world.tmp.path().to_str().unwrap()));
    assert!(!written.contains("count"));
    // A second target dir built from clean gives the same bytes, on stdout.
    let other = world.tmp.path().join("other-target");
    let out = manifest(&other, Some("-"));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), written);
}
