//! `cargo capsule build` on `fixtures/macros`: every proc macro expands in
//! the sandbox, and what it did is blamed on the macro crate, not on the
//! crate being compiled.

use serde_json::Value;

use crate::util::{self, World, krate, report, run, signals};

/// Builds the macros workspace (`--keep-going`: `exfil-user` fails, the rest
/// builds) and returns the report and stderr.
fn build(world: &World, format: &str) -> (std::process::Output, Value, String) {
    let out = run({
        let mut c = world.build();
        c.args(["--format", format, "--", "--keep-going"]);
        c
    });
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = if format == "json" {
        report(&out)
    } else {
        Value::Null
    };
    (out, report, stderr)
}

/// Signals of a crate without its `process.fork` entries (their target is
/// the rustc binary, a machine-specific toolchain path).
fn signals_but_forks(k: &Value) -> Vec<String> {
    signals(k)
        .into_iter()
        .filter(|s| !s.starts_with("process.fork "))
        .collect()
}

fn marker(world: &World) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/tmp/capsule-macro-marker-{}", world.listener.port))
}

fn assert_macros(world: &World) -> Value {
    let host_home = util::snapshot(&world.home);
    let (out, report, stderr) = build(world, "json");
    // The exfiltrating macro panics when its theft fails: the compilation of
    // the crate using it fails with rustc's error and one capsule line.
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("custom attribute panicked"), "{stderr}");
    let udp = world.listener.udp_port;
    let line = format!(
        "cargo-capsule: compiling exfil-user@0.1.0 failed (status 1) in the sandbox (rustc profile proc-macro); \
         proc macro exfil-macro@0.1.0 was denied: fs.read $HOME/.ssh/id_ed25519, net.connect 127.0.0.1:{udp}."
    );
    assert!(stderr.contains(&line), "no line {line:?} in:\n{stderr}");
    assert_eq!(report["schema_version"], 3);
    assert_eq!(report["rustc_profile"], "proc-macro");

    let names = util::crate_names(&report);
    assert_eq!(
        names,
        [
            "benign-derive",
            "exfil-macro",
            "include-text",
            "marker-macro",
            "spawn-macro"
        ],
        "only the macro crates appear, never the crates using them"
    );
    for c in report["crates"].as_array().unwrap() {
        assert_eq!(c["proc_macro"]["status"], "ran", "{}", c["name"]);
        assert!(c.get("build_script").is_none(), "{}", c["name"]);
        for o in c["observations"].as_array().unwrap() {
            assert_eq!(o["phase"], "proc-macro", "{o}");
        }
    }

    let benign = krate(&report, "benign-derive");
    assert_eq!(
        benign["proc_macro"]["used_by"],
        serde_json::json!(["derive-user@0.1.0", "two-macros@0.1.0"])
    );
    assert_eq!(
        benign["observations"],
        serde_json::json!([]),
        "the benign derive did nothing, even next to a spawning macro"
    );
    assert_eq!(
        signals(krate(&report, "include-text")),
        ["fs.read $CARGO_MANIFEST_DIR/data/greeting.txt allowed"]
    );
    assert_eq!(
        signals(krate(&report, "exfil-macro")),
        [
            "fs.read $HOME/.ssh/id_ed25519 denied".to_string(),
            format!("net.connect 127.0.0.1:{udp} denied"),
        ]
    );
    assert_eq!(
        signals(krate(&report, "marker-macro")),
        [
            "fs.write $WORKSPACE/MARKER-FROM-MACRO denied",
            // The private /tmp: allowed, and thrown away.
        ]
    );
    let marker_obs = krate(&report, "marker-macro")["observations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{} {} {}", o["capability"], o["target"], o["outcome"]))
        .collect::<Vec<_>>();
    assert!(
        marker_obs.contains(&"\"fs.write\" \"$TMP/**\" \"allowed\"".to_string()),
        "{marker_obs:?}"
    );
    // Two macros in one compilation: the spawn is blamed on the one that did it.
    let spawn = krate(&report, "spawn-macro");
    assert_eq!(
        spawn["proc_macro"]["used_by"],
        serde_json::json!(["two-macros@0.1.0"])
    );
    assert_eq!(
        signals_but_forks(spawn),
        ["process.exec /usr/bin/sh allowed"]
    );
    let forks: Vec<String> = signals(spawn)
        .into_iter()
        .filter(|s| s.starts_with("process.fork "))
        .collect();
    assert_eq!(forks.len(), 1, "{forks:?}");
    assert!(forks[0].ends_with("/bin/rustc allowed"), "{forks:?}");
    for o in spawn["observations"].as_array().unwrap() {
        assert!(o["detail"].get("ambiguous-between").is_none(), "{o}");
        assert_eq!(
            o["detail"]["while-compiling"],
            serde_json::json!(["two-macros"])
        );
    }
    let exec = util::find(spawn, "process.exec", "/usr/bin/sh");
    assert_eq!(
        exec["detail"]["argv"],
        serde_json::json!(["sh -c 'echo spawned-by-a-macro >/dev/null'"])
    );

    // Nothing reached the listener, the host, the project or $HOME.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(world.listener.hits(), 0, "the listener received something");
    assert!(!marker(world).exists(), "marker on the host's /tmp");
    assert!(!world.project.join("MARKER-FROM-MACRO").exists());
    assert_eq!(util::snapshot(&world.home), host_home, "$HOME changed");
    report
}

#[test]
fn proc_macros_expand_in_the_sandbox_and_are_blamed_on_the_macro_crate() {
    let world = World::new("macros", true, false);
    let first = assert_macros(&world);

    // Another clean build gives the same bytes.
    let other = world.tmp.path().join("target-2");
    let again = run({
        let mut c = world.build_in(&other);
        c.args(["--format", "json", "--", "--keep-going"]);
        c
    });
    assert_eq!(report(&again), first, "two clean builds differ");

    // Unchanged crates are reused by cargo: their macros are reported from
    // the recorded expansion; the failed one expands (and fails) again.
    let (_, second, _) = build(&world, "json");
    for c in second["crates"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let expected = if name == "exfil-macro" {
            "ran"
        } else {
            "cached"
        };
        assert_eq!(c["proc_macro"]["status"], expected, "{name}");
        assert_eq!(
            c["observations"],
            krate(&first, name)["observations"],
            "{name}"
        );
    }

    // The human summary says what each macro did, denied first.
    let (_, _, _) = build(&world, "human");
    let out = run({
        let mut c = world.build();
        c.args(["--", "--keep-going"]);
        c
    });
    let text = String::from_utf8_lossy(&out.stdout);
    let first_block = text.split("\n\n").nth(1).unwrap_or("");
    assert!(
        first_block.starts_with("exfil-macro@0.1.0"),
        "denied first:\n{text}"
    );
    assert!(
        first_block.contains("denied  macro fs.read"),
        "phase shown:\n{text}"
    );
}

#[test]
fn proc_macros_are_sandboxed_for_an_unprivileged_user() {
    if !util::is_root() {
        eprintln!("skipped: needs root to switch to uid 65534");
        return;
    }
    let world = World::new("macros", false, true);
    assert_macros(&world);
}

/// A compilation that loads no proc macro runs untraced, still in the
/// sandbox and still without network: no socket can even be created. The
/// wrapper role is driven directly with a session captured from a real build
/// (a `cargo` stand-in copies the session directory), and a shell stands in
/// for rustc.
#[test]
fn an_untraced_compilation_gets_no_socket() {
    let world = World::new("macros", false, false);
    let saved = world.tmp.path().join("saved-session");
    let fake_cargo = world.tmp.path().join("fake-cargo");
    std::fs::write(
        &fake_cargo,
        format!(
            "#!/bin/sh\nif [ \"$1\" = build ]; then cp -r \"$CAPSULE_SESSION\" '{}'; exit 0; fi\nexec '{}' \"$@\"\n",
            saved.display(),
            util::sysroot().join("bin/cargo").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake_cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run({
        let mut c = world.build();
        c.env("CARGO", &fake_cargo);
        c
    });
    assert!(
        saved.join("session.json").is_file(),
        "no session captured: {out:?}"
    );

    let out_dir = world.tmp.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let python = std::path::Path::new("/usr/bin/python3");
    if !python.is_file() {
        eprintln!("skipped: needs /usr/bin/python3");
        return;
    }
    // Prints `created` or `refused` per family; any other failure (python
    // missing in the sandbox, ...) shows as a traceback, not as `refused`.
    let script = "for family in AF_INET AF_INET6 AF_UNIX; do /usr/bin/python3 -c \"
import socket
try:
    socket.socket(socket.$family)
    print('$family: created')
except PermissionError:
    print('$family: refused')
\"; done";
    let shell = run({
        let mut c = world.command();
        c.arg("__rustc-wrapper")
            .arg(&saved)
            .args([
                "/bin/sh",
                "-c",
                script,
                "--crate-name",
                "probe",
                "--out-dir",
            ])
            .arg(&out_dir);
        c
    });
    assert!(shell.status.success(), "{shell:?}");
    assert_eq!(
        String::from_utf8_lossy(&shell.stdout),
        "AF_INET: refused\nAF_INET6: refused\nAF_UNIX: refused\n"
    );
    // The same probe outside the sandbox creates them (the test can fail).
    let host = std::process::Command::new("sh")
        .args(["-c", script])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&host.stdout),
        "AF_INET: created\nAF_INET6: created\nAF_UNIX: created\n"
    );
}
