//! Bad input ends with exit status 2 and one clear line, never a panic.

use std::process::Output;

use crate::util::{World, run};

fn assert_tool_error(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    for needle in needles {
        assert!(lines[0].contains(needle), "`{needle}` not in: {stderr}");
    }
    assert!(out.stdout.is_empty(), "nothing on stdout for an error");
}

#[test]
fn missing_manifest() {
    let world = World::new("demo", false, false);
    let mut c = world.command();
    c.args(["capsule", "build", "--manifest-path"])
        .arg(world.tmp.path().join("nowhere/Cargo.toml"));
    assert_tool_error(&run(c), &["nowhere/Cargo.toml", "does not exist"]);
}

#[test]
fn no_manifest_in_cwd() {
    let world = World::new("demo", false, false);
    let empty = world.tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let mut c = world.command();
    c.args(["capsule", "build"]).current_dir(&empty);
    assert_tool_error(&run(c), &["Cargo.toml"]);
}

#[test]
fn broken_manifest() {
    let world = World::new("demo", false, false);
    std::fs::write(world.project.join("Cargo.toml"), "[workspace\nmembers = [").unwrap();
    assert_tool_error(&run(world.build()), &["demo/Cargo.toml", "cargo metadata"]);
}

#[test]
fn unknown_profile() {
    let world = World::new("demo", false, false);
    let mut c = world.build();
    c.args(["--profile", "nope"]);
    assert_tool_error(&run(c), &["unknown sandbox profile `nope`", "build-script"]);
}

#[test]
fn profile_with_unknown_key() {
    let world = World::new("demo", false, false);
    let path = world.tmp.path().join("mine.toml");
    let text =
        std::fs::read_to_string(crate::util::repo().join("sandbox-profiles/build-script.toml"))
            .unwrap()
            .replace("[limits]", "[limits]\nmax_coffee = 3");
    std::fs::write(&path, text).unwrap();
    let mut c = world.build();
    c.arg("--profile").arg(&path);
    assert_tool_error(&run(c), &["mine.toml", "max_coffee"]);
}

#[test]
fn profile_with_bad_value() {
    let world = World::new("demo", false, false);
    let path = world.tmp.path().join("bad.toml");
    let text =
        std::fs::read_to_string(crate::util::repo().join("sandbox-profiles/build-script.toml"))
            .unwrap()
            .replace("\"bpf\"", "\"no_such_call\"");
    std::fs::write(&path, text).unwrap();
    let mut c = world.build();
    c.arg("--profile").arg(&path);
    assert_tool_error(&run(c), &["bad.toml", "seccomp.deny", "no_such_call"]);
}

/// A machine without user namespaces: simulated for real, by lowering
/// `user.max_user_namespaces` to 0 inside a user namespace of our own
/// (which limits the namespaces nested in it).
#[test]
fn namespaces_unavailable() {
    let world = World::new("demo", false, false);
    let inner = world.build();
    let program = inner.get_program().to_owned();
    let mut c = std::process::Command::new("unshare");
    c.args(["--user", "--map-current-user", "sh", "-c"])
        .arg("echo 0 > /proc/sys/user/max_user_namespaces && exec \"$@\"")
        .arg("sh")
        .arg(program)
        .args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.current_dir(world.tmp.path());
    assert_tool_error(&run(c), &["user namespace", "max_user_namespaces"]);
}
