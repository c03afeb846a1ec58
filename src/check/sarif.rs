//! SARIF 2.1.0 output of `check`, for code-scanning tools.
//!
//! One rule per [`RuleId`] (stable kebab-case ids); one result per finding.
//! Each result points at the crate's entry in `Cargo.lock` and, for static
//! evidence of a workspace package, at the source line. Static evidence in
//! a published package is a related location relative to the base id
//! `CRATE_SOURCES` (the package's own directory is `name-version/`). Paths
//! are relative to the base id `%SRCROOT%`, the workspace root.

use serde_json::{Value, json};

use super::{Finding, Outcome, RuleId};
use crate::manifest::{LockFile, Manifest};

/// The workspace-relative directory of a path package (`path+$WORKSPACE/x`
/// → `x/`), or None for other sources.
fn local_dir(source: &str) -> Option<String> {
    let rest = source.strip_prefix("path+$WORKSPACE")?;
    if rest.is_empty() {
        return Some(String::new());
    }
    let rest = rest.strip_prefix('/')?;
    Some(format!("{rest}/"))
}

/// `src/lib.rs:12` → (`src/lib.rs`, 12).
fn file_line(location: &str) -> Option<(&str, u64)> {
    let (file, line) = location.rsplit_once(':')?;
    let line: u64 = line.parse().ok().filter(|l| *l > 0)?;
    Some((file, line))
}

fn location(uri: &str, base: &str, line: Option<u64>) -> Value {
    let mut physical = json!({
        "artifactLocation": { "uri": uri, "uriBaseId": base },
    });
    if let Some(line) = line {
        physical["region"] = json!({ "startLine": line });
    }
    json!({ "physicalLocation": physical })
}

/// Percent-encodes what may not appear in a URI reference path.
fn uri_path(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn result(f: &Finding, index: usize, current: &Manifest, lock: &LockFile) -> Value {
    let version = f.version();
    let mut text = f.message.clone();
    if let Some(snippet) = &f.snippet {
        text.push_str("\nTo accept it, add to capsule.toml:\n");
        text.push_str(snippet);
    }
    let mut locations = vec![location(
        "Cargo.lock",
        "%SRCROOT%",
        lock.line_of(&f.krate, version).map(|l| l as u64),
    )];
    let mut related = Vec::new();
    let source = current
        .crates
        .iter()
        .find(|c| c.name == f.krate && c.version == version)
        .map(|c| c.source.as_str())
        .unwrap_or("");
    for entry in f.evidence.iter().filter(|e| e.is_static()) {
        for at in entry.evidence.get("location").into_iter().flatten() {
            let Some((file, line)) = file_line(at) else {
                continue;
            };
            if file.starts_with('$') {
                if let Some(rest) = file.strip_prefix("$WORKSPACE/") {
                    locations.push(location(&uri_path(rest), "%SRCROOT%", Some(line)));
                }
                // Generated ($OUT_DIR) or machine paths have no stable place.
                continue;
            }
            match local_dir(source) {
                Some(dir) => locations.push(location(
                    &uri_path(&format!("{dir}{file}")),
                    "%SRCROOT%",
                    Some(line),
                )),
                None => {
                    let mut l = location(
                        &uri_path(&format!("{}-{}/{file}", f.krate, version)),
                        "CRATE_SOURCES",
                        Some(line),
                    );
                    l["message"] =
                        json!({ "text": format!("in the package of {} {version}", f.krate) });
                    related.push(l);
                }
            }
        }
    }
    locations.dedup();
    let fingerprint = blake3::hash(
        format!(
            "{}\0{}\0{}\0{}\0{}\0{}",
            f.rule.as_str(),
            f.krate,
            version,
            f.phase.map(|p| p.as_str()).unwrap_or(""),
            f.capability.as_deref().unwrap_or(""),
            f.message,
        )
        .as_bytes(),
    )
    .to_hex()
    .to_string();
    let mut properties = json!({ "crate": f.krate, "version": version });
    if let Some(old) = &f.old_version {
        properties["oldVersion"] = json!(old);
    }
    if let Some(phase) = f.phase {
        properties["phase"] = json!(phase.as_str());
    }
    if let Some(capability) = &f.capability {
        properties["capability"] = json!(capability);
    }
    if !f.pulled_in_by.is_empty() {
        properties["pulledInBy"] = json!(f.pulled_in_by);
    }
    if let Some(snippet) = &f.snippet {
        properties["acceptSnippet"] = json!(snippet);
    }
    let mut out = json!({
        "ruleId": f.rule.as_str(),
        "ruleIndex": index,
        "level": f.level.as_str(),
        "message": { "text": text },
        "locations": locations,
        "partialFingerprints": { "capsuleFinding/v1": fingerprint },
        "properties": properties,
    });
    if !related.is_empty() {
        out["relatedLocations"] = json!(related);
    }
    out
}

/// The SARIF log of a check.
pub fn render(outcome: &Outcome, current: &Manifest, lock: &LockFile) -> String {
    let rules: Vec<Value> = RuleId::ALL
        .iter()
        .map(|r| {
            json!({
                "id": r.as_str(),
                "shortDescription": { "text": r.description() },
                "defaultConfiguration": { "level": r.level().as_str() },
            })
        })
        .collect();
    let results: Vec<Value> = outcome
        .findings
        .iter()
        .map(|f| {
            let index = RuleId::ALL
                .iter()
                .position(|r| *r == f.rule)
                .expect("every rule is listed");
            result(f, index, current, lock)
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "cargo-capsule",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "originalUriBaseIds": {
                "%SRCROOT%": { "description": { "text": "The workspace root (where Cargo.lock is)." } },
                "CRATE_SOURCES": { "description": { "text": "A directory holding published packages as name-version/ (cargo's registry source directory)." } },
            },
            "results": results,
        }],
    });
    let mut text = serde_json::to_string_pretty(&log).expect("SARIF serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_workspace_relative_uris() {
        assert_eq!(
            local_dir("path+$WORKSPACE/widget").as_deref(),
            Some("widget/")
        );
        assert_eq!(local_dir("path+$WORKSPACE").as_deref(), Some(""));
        assert_eq!(local_dir("registry+https://x"), None);
        assert_eq!(file_line("src/lib.rs:12"), Some(("src/lib.rs", 12)));
        assert_eq!(file_line("src/lib.rs:0"), None);
        assert_eq!(uri_path("a b/%.rs"), "a%20b/%25.rs");
    }
}
