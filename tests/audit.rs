//! `cargo capsule audit` against a real cargo source: fixtures/registry is
//! a `directory` source that replaces crates.io in the test's own
//! CARGO_HOME, holding widget 1.0.0 and 1.0.1 (a patch release that adds
//! the typosquat widgte-build, whose build script reaches for the fake
//! `~/.ssh/id_rsa` and the test's 127.0.0.1 listener).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::util::{World, report as json, run};

/// A world whose crates.io is fixtures/registry, and a private TMPDIR (to
/// check the throwaway project is removed).
struct Registry {
    world: World,
    /// Where the audits run (its `.cargo/config.toml` replaces crates.io).
    work: PathBuf,
    scratch: PathBuf,
    cache: PathBuf,
}

impl Registry {
    fn new(as_nobody: bool) -> Registry {
        let world = World::new("registry", false, as_nobody);
        // The replacement lives in the configuration of the directory the
        // audit runs in, spelled relative to it through `..` (cargo then
        // passes package paths like `.../work/../src/registry/widget-1.0.1`).
        let work = world.tmp.path().join("work");
        std::fs::create_dir_all(work.join(".cargo")).unwrap();
        std::fs::write(
            work.join(".cargo/config.toml"),
            "[source.crates-io]\nreplace-with = \"capsule-fixtures\"\n\n[source.capsule-fixtures]\ndirectory = \"../src/registry\"\n",
        )
        .unwrap();
        assert_eq!(world.project, world.tmp.path().join("src/registry"));
        let scratch = world.tmp.path().join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        let cache = world.tmp.path().join("audit-cache");
        if as_nobody {
            let status = Command::new("chown")
                .args(["-R", "65534:65534"])
                .arg(&scratch)
                .arg(&work)
                .status()
                .unwrap();
            assert!(status.success());
        }
        Registry {
            world,
            work,
            scratch,
            cache,
        }
    }

    fn audit(&self, words: &[&str]) -> Command {
        let mut cmd = self.world.command();
        cmd.args(["capsule", "audit", "--cache-dir"])
            .arg(&self.cache)
            .args(words)
            .env("TMPDIR", &self.scratch)
            .current_dir(&self.work);
        cmd
    }

    /// Nothing left in TMPDIR.
    fn assert_clean(&self) {
        let left: Vec<PathBuf> = std::fs::read_dir(&self.scratch)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `capability target outcomes` of entries.
fn lines(entries: &Value) -> Vec<String> {
    entries
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {}",
                e["phase"].as_str().unwrap(),
                e["capability"].as_str().unwrap(),
                e["target"].as_str().unwrap(),
                e["outcomes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| o.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join("+")
            )
        })
        .collect()
}

fn find<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

#[test]
fn a_patch_release_that_adds_a_typosquat_is_shown_with_what_its_build_script_did() {
    let r = Registry::new(false);
    let port = r.world.listener.port;
    let out = run(r.audit(&["widget@1.0.1", "--format", "json"]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["request"], "widget@1.0.1");
    assert_eq!(report["subject"]["name"], "widget");
    assert_eq!(report["subject"]["version"], "1.0.1");
    // The tree: the crate, its proc macro and the typosquat (not the
    // throwaway project).
    let names: Vec<&str> = report["crates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["widget", "widget-derive", "widgte-build"]);
    let squat = find(&report["crates"], "widgte-build");
    assert_eq!(
        squat["via"],
        serde_json::json!(["widget 1.0.1", "widgte-build 0.1.0"])
    );
    assert_eq!(squat["build_script"], true);
    assert_eq!(squat["badges"][0]["level"], "alert");
    assert_eq!(
        squat["badges"][0]["text"],
        format!(
            "build script: tried to connect to 127.0.0.1:{port} — denied; tried to read $HOME/.ssh/id_rsa — denied"
        )
    );
    let derive = find(&report["crates"], "widget-derive");
    assert_eq!(derive["proc_macro"], true);
    assert_eq!(derive["used_by"], serde_json::json!(["widget 1.0.1"]));
    assert_eq!(
        derive["badges"][0]["text"],
        "proc macro (expanded for widget 1.0.1): nothing outside its own files; no network, no programs"
    );
    assert_eq!(
        find(&report["crates"], "widget")["badges"][0]["level"],
        "quiet"
    );
    // Which crate brings net.connect: only the typosquat, through widget.
    let bringers = report["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["capability"] == "net.connect")
        .unwrap();
    assert_eq!(bringers["crates"].as_array().unwrap().len(), 1);
    assert_eq!(bringers["crates"][0]["name"], "widgte-build");

    // The comparison: with 1.0.0, the previous published version.
    let comparison = &report["comparison"];
    assert_eq!(comparison["status"], "compared", "{comparison}");
    assert_eq!(comparison["chosen"], "previous published version");
    assert_eq!(comparison["old"]["subject"]["version"], "1.0.0");
    let diff = comparison["diff"]["crates"].as_array().unwrap();
    let widget = diff.iter().find(|c| c["name"] == "widget").unwrap();
    assert_eq!(widget["change"], "updated");
    assert!(widget.get("gained").is_none(), "{widget}");
    let added = diff.iter().find(|c| c["name"] == "widgte-build").unwrap();
    assert_eq!(added["change"], "added");
    assert_eq!(added["pulled_in_by"], serde_json::json!(["widget 1.0.1"]));
    let gained = lines(&added["gained"]);
    for expected in [
        format!("build-script net.connect 127.0.0.1:{port} denied"),
        "build-script fs.read $HOME/.ssh/id_rsa denied".to_string(),
        "build-script net.connect std::net::TcpStream::connect_timeout possible".to_string(),
    ] {
        assert!(gained.contains(&expected), "{expected} not in {gained:#?}");
    }
    assert_eq!(
        diff.len(),
        2,
        "only widget and widgte-build differ: {diff:#?}"
    );
    assert_eq!(
        r.world.listener.hits(),
        0,
        "the build script reached the listener"
    );
    r.assert_clean();

    // Again, in human form: both versions come from the cache.
    let out = run(r.audit(&["widget@1.0.1"]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.matches("is from the cache").count(), 2, "{err}");
    assert!(!err.contains("Compiling"), "{err}");
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "cargo capsule audit widget@1.0.1: widget 1.0.1 from registry+",
        "3 crates in its tree: 2 build scripts, 1 proc macro; 1 alert to look at",
        "widgte-build 0.1.0  (registry+https://github.com/rust-lang/crates.io-index)  via widget 1.0.1",
        "compared with widget 1.0.0 (previous published version",
        "widgte-build 0.1.0 (new), pulled in by widget 1.0.1",
        &format!("!! build script: tried to connect to 127.0.0.1:{port} — denied"),
    ] {
        assert!(text.contains(needle), "`{needle}` not in:\n{text}");
    }
    r.assert_clean();

    // The first release has nothing to compare with; --against picks one.
    let out = run(r.audit(&["widget@1.0.0", "--format", "json"]));
    assert_eq!(out.status.code(), Some(0));
    let report = json(&out);
    assert_eq!(report["comparison"]["status"], "not-compared");
    assert_eq!(
        report["comparison"]["reason"],
        "no earlier version of widget to compare with"
    );
    let out = run(r.audit(&["widget", "--against", "1.0.0", "--format", "json"]));
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(
        report["subject"]["version"], "1.0.1",
        "the newest by default"
    );
    assert_eq!(report["comparison"]["chosen"], "--against");

    // A package directory, compared with a registry version.
    let dir = r.world.project.join("widget-1.0.1");
    let mut cmd = r.audit(&["widget", "--against", "1.0.0", "--format", "json", "--path"]);
    cmd.arg(&dir);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    assert!(
        report["subject"]["source"]
            .as_str()
            .unwrap()
            .starts_with("path+/"),
        "{}",
        report["subject"]
    );
    assert_eq!(report["comparison"]["old"]["subject"]["version"], "1.0.0");
    r.assert_clean();
    assert_eq!(r.world.listener.hits(), 0);
}

/// The visible text of a page, as Chromium lays it out (hidden and
/// collapsed elements are not in it).
fn visible_text(html: &Path, work: &Path) -> String {
    let page = std::fs::read_to_string(html).unwrap();
    // A copy with one script that writes `innerText` into an attribute
    // that --dump-dom prints.
    let probe = page.replace(
        "</body>",
        "<script>document.body.setAttribute('data-visible-text', document.body.innerText)</script></body>",
    );
    let copy = work.join("probe.html");
    std::fs::write(&copy, probe).unwrap();
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("the HTML test needs Chromium: `apt-get install chromium` (.ci/run installs it)");
    let out = Command::new("timeout")
        .arg("120")
        .arg(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            // Nothing may be fetched: any host name fails to resolve.
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ])
        .arg(format!(
            "--user-data-dir={}",
            work.join("chromium").display()
        ))
        .arg("--dump-dom")
        .arg(format!("file://{}", copy.display()))
        .env("HOME", work)
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium: {}", stderr(&out));
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom
        .find("data-visible-text=\"")
        .unwrap_or_else(|| panic!("chromium did not run the page: {dom}"))
        + "data-visible-text=\"".len();
    let end = start + dom[start..].find('"').unwrap();
    dom[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

#[test]
fn the_html_report_is_one_self_contained_file_that_chromium_renders() {
    // The audit runs as an unprivileged user when the tests run as root.
    let r = Registry::new(crate::util::is_root());
    let port = r.world.listener.port;
    let html = r.world.tmp.path().join("report.html");
    let mut cmd = r.audit(&["widget@1.0.1", "--format", "html", "-o"]);
    cmd.arg(&html);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "-o writes the file, not stdout");
    let page = std::fs::read_to_string(&html).unwrap();
    // Self-contained: nothing to load.
    for outside in [
        "<link", "<script", "<img", "<iframe", "src=", "href=", "@import", "url(",
    ] {
        assert!(!page.contains(outside), "`{outside}` in the report");
    }
    let text = visible_text(&html, r.world.tmp.path());
    for needle in [
        "cargo capsule audit: widget 1.0.1",
        "3 crates in its tree: 2 build scripts, 1 proc macro; 1 alert to look at",
        "Compared with widget 1.0.0 (previous published version)",
        "1 new crate, 0 removed;",
        "New dependency: widgte-build 0.1.0, pulled in by widget 1.0.1",
        &format!(
            "build script: tried to connect to 127.0.0.1:{port} — denied; tried to read $HOME/.ssh/id_rsa — denied"
        ),
        "proc macro (expanded for widget 1.0.0): nothing outside its own files; no network, no programs",
        "not in the tree",
        "widgte-build 0.1.0 (new)",
        "errno: ENETUNREACH; protocol: tcp",
        "location: build.rs:26",
        "Which crate brings which capability",
        "widget 1.0.1 → widgte-build 0.1.0",
    ] {
        assert!(text.contains(needle), "`{needle}` not visible in:\n{text}");
    }
    // Both versions side by side: widget's row shows 1.0.0 and 1.0.1.
    let start = text
        .find("\nwidget\t")
        .unwrap_or_else(|| panic!("no widget row in:\n{text}"));
    let end = start + text[start..].find("\nwidget-derive\t").unwrap();
    let row = &text[start..end];
    assert!(row.contains("1.0.0") && row.contains("1.0.1"), "{row}");
    r.assert_clean();
}

fn assert_error(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("cargo-capsule: error: "), "{err}");
    for needle in needles {
        assert!(last.contains(needle), "`{needle}` not in: {last}");
    }
    assert!(out.stdout.is_empty(), "nothing on stdout for an error");
}

#[test]
fn bad_input_is_a_tool_error_and_leaves_nothing_behind() {
    // As an unprivileged user when the tests run as root.
    let r = Registry::new(crate::util::is_root());
    assert_error(
        &run(r.audit(&["widgit"])),
        &[
            "could not resolve widgit from the default registry",
            "no matching package",
            "perhaps you meant: widget",
            "check the name",
        ],
    );
    assert_error(
        &run(r.audit(&["widget@9.9.9"])),
        &[
            "could not resolve widget@=9.9.9",
            "candidate versions found which didn't match: 1.0.1, 1.0.0",
            "pick a published version",
        ],
    );
    assert_error(
        &run(r.audit(&["widget@one"])),
        &["`one` is neither a version"],
    );
    assert_error(
        &run(r.audit(&["../etc"])),
        &["`../etc` is not a crate name"],
    );
    assert_error(
        &run(r.audit(&["widget", "--registry", "undefined"])),
        &[
            "registry index was not found",
            "`undefined`",
            "[registries.NAME]",
        ],
    );
    assert_error(
        &run(r.audit(&["widget@1.0.1", "-F", "nope"])),
        &[
            "the audit depends on `widget` with feature `nope`",
            "check --features",
        ],
    );
    assert_error(
        &run(r.audit(&["binonly"])),
        &["binonly 1.0.0 has no library target"],
    );
    assert_error(
        &run(r.audit(&["widget@1.0.1", "--against", "7"])),
        &["could not resolve widget@7", "pick a published version"],
    );
    // The previous version cannot be audited the same way (1.0.0 has no
    // feature `extra`): the report comes without a comparison, exit 2.
    let out = run(r.audit(&["widget@1.0.1", "-F", "extra", "--format", "json"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["comparison"]["status"], "failed");
    assert!(
        report["comparison"]["reason"]
            .as_str()
            .unwrap()
            .contains("check --features"),
        "{}",
        report["comparison"]
    );
    let last = stderr(&out);
    assert!(
        last.lines().last().unwrap().starts_with(
            "cargo-capsule: error: the report has no comparison: auditing widget@<1.0.1"
        ),
        "{last}"
    );
    // The same with --against: the version exists, so the report comes.
    let out = run(r.audit(&[
        "widget@1.0.1",
        "-F",
        "extra",
        "--against",
        "1.0.0",
        "--format",
        "json",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(json(&out)["comparison"]["status"], "failed");
    assert!(stderr(&out).contains("auditing widget@=1.0.0"));
    let out = run(r.audit(&["broken"]));
    assert_error(&out, &["broken 1.0.0 failed to build"]);
    assert!(stderr(&out).contains("broken 1.0.0 does not build"));
    r.assert_clean();

    // An unreachable registry: a listener of the test's that closes every
    // connection at once.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    let config = r.world.tmp.path().join("cargo-home/config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[registries.nowhere]\nindex = \"sparse+http://127.0.0.1:{port}/index/\"\n"
    ));
    std::fs::write(&config, text).unwrap();
    let mut cmd = r.audit(&["widget", "--registry", "nowhere"]);
    cmd.env("CARGO_NET_OFFLINE", "false")
        .env("CARGO_NET_RETRY", "0");
    assert_error(
        &run(cmd),
        &[
            "could not resolve widget from registry `nowhere`",
            &format!("127.0.0.1:{port}"),
            "check the network",
        ],
    );
    let mut cmd = r.audit(&["widget", "--registry", "nowhere", "--offline"]);
    cmd.env("CARGO_NET_OFFLINE", "false");
    assert_error(&run(cmd), &["cargo was offline", "let cargo go online"]);
    r.assert_clean();

    // --keep keeps the project, even when the audit fails.
    let out = run(r.audit(&["broken", "--keep"]));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let kept = err
        .lines()
        .find_map(|l| l.strip_prefix("cargo-capsule: kept the audit project at "))
        .unwrap_or_else(|| panic!("no kept path in: {err}"));
    let kept = PathBuf::from(kept);
    assert!(kept.starts_with(&r.scratch), "{}", kept.display());
    assert!(kept.join("new/Cargo.toml").is_file());
    assert_eq!(r.world.listener.hits(), 0);
}
