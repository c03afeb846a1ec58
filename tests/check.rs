//! `diff` and `check` on a crate at two versions (fixtures/versions): the
//! app depends on widget 1.0.0; the upgrade to 1.1.0 adds a network
//! connection to its build script and a proc-macro dependency. Outputs are
//! compared with snapshots in tests/snapshots (paths normalised; set
//! `UPDATE_SNAPSHOTS=1` to rewrite them), and the SARIF output is validated
//! against the official SARIF 2.1.0 schema.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::util::{World, copy_dir, repo, report, run};

/// Replaces widget 1.0.0 by 1.1.0 and adds widget-derive.
fn upgrade(world: &World) {
    let upgrade = repo().join("fixtures/versions/upgrade");
    std::fs::remove_dir_all(world.project.join("widget")).unwrap();
    copy_dir(&upgrade.join("widget-1.1.0"), &world.project.join("widget"));
    copy_dir(
        &upgrade.join("widget-derive"),
        &world.project.join("widget-derive"),
    );
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Compares with tests/snapshots/NAME (after replacing the test's temporary
/// directory), or rewrites it under `UPDATE_SNAPSHOTS=1`.
fn snapshot(world: &World, name: &str, text: &str) {
    let text = text.replace(world.tmp.path().to_str().unwrap(), "$TMP");
    let path = repo().join("tests/snapshots").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_SNAPSHOTS=1 writes it)", path.display()));
    assert_eq!(
        text,
        expected,
        "output differs from {} (UPDATE_SNAPSHOTS=1 rewrites it)",
        path.display()
    );
}

/// The official schema, fetched by `.ci/fetch-sarif-schema`.
fn sarif_schema() -> PathBuf {
    let path = std::env::var_os("CAPSULE_SARIF_SCHEMA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/sarif-schema-2.1.0.json"));
    assert!(
        path.is_file(),
        "{} is missing: run `bash .ci/fetch-sarif-schema` (CI does)",
        path.display()
    );
    path
}

/// Validates a SARIF log with Debian's python3-jsonschema.
fn validate_sarif(log: &Path) -> Output {
    std::process::Command::new("/usr/bin/python3")
        .arg(repo().join("tests/sarif/validate.py"))
        .arg(sarif_schema())
        .arg(log)
        .output()
        .expect("run /usr/bin/python3 (install python3-jsonschema)")
}

#[test]
fn an_upgrade_that_adds_a_connection_and_a_proc_macro_is_reported_exactly() {
    // widget 1.1.0's build script dials 127.0.0.1:47999. Listen there when
    // the port is free: the sandbox must keep the connection from arriving.
    let guard = TcpListener::bind("127.0.0.1:47999").ok();
    if let Some(l) = &guard {
        l.set_nonblocking(true).unwrap();
    }
    let world = World::new("versions/app", true, false);
    let target = world.target.clone();
    let check = |words: &[&str]| run(world.capsule(&[&["check"], words].concat(), &target));

    // No baseline yet: a tool error that says what to do.
    let out = check(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("check --bless"), "{}", stderr(&out));

    // Bless, then check: unchanged, from the cache (nothing built).
    let out = check(&["--bless"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let baseline = world.project.join("capsule.lock");
    let old = world.tmp.path().join("old.lock");
    std::fs::copy(&baseline, &old).unwrap();
    let out = check(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("from the cache"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("Compiling"), "{}", stderr(&out));

    upgrade(&world);
    let out = check(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let human = stdout(&out);
    snapshot(&world, "check.human", &human);
    let out = check(&["--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let json = report(&out);
    let findings: Vec<String> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {} {}",
                f["rule"].as_str().unwrap(),
                f["crate"].as_str().unwrap(),
                f["capability"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        findings,
        [
            "capability-gained widget net.connect",
            "crate-added widget-derive -"
        ]
    );
    snapshot(&world, "check.json", &stdout(&out));
    let out = check(&["--format", "sarif"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    snapshot(&world, "check.sarif", &stdout(&out));
    let log = world.tmp.path().join("check.sarif");
    std::fs::write(&log, &out.stdout).unwrap();
    let valid = validate_sarif(&log);
    assert!(
        valid.status.success(),
        "SARIF does not validate:\n{}{}",
        stdout(&valid),
        stderr(&valid)
    );

    // The same through two manifest files.
    let new = world.tmp.path().join("new.lock");
    let out = run(world.capsule(&["manifest", "-o", new.to_str().unwrap()], &target));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let diff = |format: &str| {
        let mut c = world.command();
        c.args(["capsule", "diff", "--format", format])
            .arg(&old)
            .arg(&new);
        run(c)
    };
    let out = diff("human");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    snapshot(&world, "diff.human", &stdout(&out));
    let out = diff("json");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    snapshot(&world, "diff.json", &stdout(&out));

    // The snippet check prints, added to capsule.toml, accepts the change.
    let snippet: String = human
        .lines()
        .skip_while(|l| !l.contains("add to capsule.toml"))
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .map(|l| format!("{}\n", l.trim_start()))
        .collect();
    std::fs::write(world.project.join("capsule.toml"), &snippet).unwrap();
    let out = check(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("note[capability-allowed]: widget 1.0.0 → 1.1.0 gained net.connect"),
        "{}",
        stdout(&out)
    );

    // A deny rule holds even after blessing.
    std::fs::write(
        world.project.join("capsule.toml"),
        "[[policy.deny]]\nphase = [\"build-script\", \"proc-macro\"]\ncapability = \"net.*\"\nreason = \"no network at build time\"\n",
    )
    .unwrap();
    let out = check(&["--bless"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("error[capability-denied]: widget 1.1.0 has net.connect in its build-script, which the policy denies"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("policy reason: no network at build time"));

    // Without the deny rule, check after --bless passes.
    std::fs::remove_file(world.project.join("capsule.toml")).unwrap();
    let out = check(&["--bless"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = check(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("check passed"), "{}", stdout(&out));

    if let Some(l) = guard {
        assert!(
            l.accept().is_err(),
            "widget's build script reached the host's 127.0.0.1:47999"
        );
    }
}

#[test]
fn malformed_manifests_and_policies_are_tool_errors_naming_file_and_key() {
    let world = World::new("versions/app", false, false);
    let dir = world.tmp.path();
    let good = dir.join("good.lock");
    std::fs::write(&good, "schema_version = 1\n").unwrap();
    let bad = dir.join("bad.lock");
    std::fs::write(
        &bad,
        "schema_version = 1\n\n[[crate]]\nname = \"x\"\nversion = 1\nsource = \"s\"\n",
    )
    .unwrap();
    let mut c = world.command();
    c.args(["capsule", "diff"]).arg(&bad).arg(&good);
    let out = run(c);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("bad.lock:5: at `crate[0].version`: invalid type"),
        "{err}"
    );
    let future = dir.join("future.lock");
    std::fs::write(&future, "schema_version = 9\n").unwrap();
    let mut c = world.command();
    c.args(["capsule", "diff"]).arg(&good).arg(&future);
    let out = run(c);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("future.lock: schema_version 9"),
        "{}",
        stderr(&out)
    );
    let mut c = world.command();
    c.args(["capsule", "diff"])
        .arg(&good)
        .arg(dir.join("missing.lock"));
    assert_eq!(run(c).status.code(), Some(2));

    // A bad policy stops check before anything is built.
    std::fs::write(
        world.project.join("capsule.toml"),
        "[[policy.allow]]\ncrate = \"widget@one\"\ncapability = \"net.connect\"\n",
    )
    .unwrap();
    let out = run(world.capsule(&["check", "--bless"], &world.target));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("capsule.toml: at `policy.allow[0].crate`"),
        "{err}"
    );
    assert!(!err.contains("Compiling"), "{err}");
    assert!(!world.project.join("capsule.lock").exists());
}
