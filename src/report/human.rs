//! The human summary of a build report: one block per crate@version, denied
//! observations first, then failed, then allowed; long lists are cut with a
//! pointer to the JSON report. Static findings follow as one `could` line
//! per phase (capabilities and how they were found), with shipped binaries,
//! obfuscation signals and unscanned files spelled out.

use std::fmt::Write;

use super::{BuildReport, RunStatus};
use std::collections::BTreeMap;

use crate::observe::{Method, Observation, Outcome, Phase};

/// Invisible characters that reorder or hide text (bidirectional
/// controls, zero-width marks): a path could read as another.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
    )
}

/// Text that came from a crate (paths, literals, messages) with control
/// and invisible characters escaped, so it cannot move the cursor, forge
/// lines or read as something else.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || is_invisible(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Most allowed/failed lines shown per crate.
const MAX_QUIET_LINES: usize = 8;

fn line(out: &mut String, o: &Observation) {
    let count = if o.count > 1 {
        format!(" (x{})", o.count)
    } else {
        String::new()
    };
    let extra = o
        .detail
        .get("argv")
        .and_then(|v| v.first())
        .map(|a| format!("  [{a}]"))
        .or_else(|| {
            o.detail
                .get("errno")
                .map(|e| format!("  [{}]", e.join(",")))
        })
        .unwrap_or_default();
    let ambiguous = o
        .detail
        .get("ambiguous-between")
        .map(|names| format!("  (one of: {})", names.join(", ")))
        .unwrap_or_default();
    let phase = match o.phase {
        Phase::ProcMacro => "macro ",
        _ => "",
    };
    let _ = writeln!(
        out,
        "    {:<7} {phase}{:<15} {}",
        o.outcome.as_str(),
        o.capability,
        clean(&format!("{}{count}{extra}{ambiguous}", o.target))
    );
}

/// The static findings of a crate: per phase, the capabilities with the
/// methods that found them; then each shipped binary and obfuscation signal.
fn static_lines(out: &mut String, found: &[&Observation]) {
    let mut per_phase: BTreeMap<Phase, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
    for o in found {
        let methods = per_phase
            .entry(o.phase)
            .or_default()
            .entry(o.capability.as_str())
            .or_default();
        if !methods.contains(&o.method.as_str()) {
            methods.push(o.method.as_str());
        }
    }
    for (phase, capabilities) in per_phase {
        let list: Vec<String> = capabilities
            .into_iter()
            .map(|(capability, mut methods)| {
                methods.sort();
                format!("{capability} ({})", methods.join(", "))
            })
            .collect();
        let _ = writeln!(out, "    could, {}: {}", phase.as_str(), list.join(", "));
    }
    let first = |o: &Observation, key: &str| {
        o.detail
            .get(key)
            .and_then(|v| v.first())
            .cloned()
            .unwrap_or_default()
    };
    for o in found {
        match o.capability.as_str() {
            "binary.shipped" => {
                let _ = writeln!(
                    out,
                    "    shipped binary {}",
                    clean(&format!(
                        "{} ({}, {} bytes)",
                        o.target,
                        first(o, "kind"),
                        first(o, "size")
                    ))
                );
            }
            "obfuscation" => {
                let _ = writeln!(
                    out,
                    "    obfuscation ({}) {}",
                    o.target,
                    clean(&format!(
                        "{} at {}{}",
                        first(o, "value"),
                        first(o, "location"),
                        if o.count > 1 {
                            format!(" (x{})", o.count)
                        } else {
                            String::new()
                        }
                    ))
                );
            }
            _ => {}
        }
    }
}

/// Renders the summary (`static_only`: the report of `cargo capsule scan`).
pub fn render(report: &BuildReport, report_path: &str, static_only: bool) -> String {
    let mut out = String::new();
    if static_only {
        let unscanned = report
            .crates
            .iter()
            .filter(|c| !c.scan_errors.is_empty())
            .count();
        let _ = writeln!(
            out,
            "cargo-capsule: static scan: {} crates can reach a capability; {unscanned} have unscanned parts",
            report
                .crates
                .iter()
                .filter(|c| !c.observations.is_empty())
                .count()
        );
    } else {
        let scripts: Vec<_> = report
            .crates
            .iter()
            .filter_map(|c| c.build_script.as_ref())
            .collect();
        let ran = scripts
            .iter()
            .filter(|b| b.status == RunStatus::Ran)
            .count();
        let macros = report
            .crates
            .iter()
            .filter(|c| c.proc_macro.is_some())
            .count();
        let _ = writeln!(
            out,
            "cargo-capsule: {} build scripts, {ran} ran in the sandbox (profile {}); {macros} proc macros, expanded in the sandbox (rustc profile {})",
            scripts.len(),
            report.profile,
            report.rustc_profile
        );
    }
    let mut crates: Vec<_> = report.crates.iter().collect();
    // Crates with denied actions first.
    crates.sort_by_key(|c| {
        !c.observations
            .iter()
            .any(|o| o.outcome == Outcome::Denied && o.capability != "env.withheld")
    });
    for krate in crates {
        let mut roles = Vec::new();
        if let Some(script) = &krate.build_script {
            roles.push(match script.exit_code {
                Some(code) if code != 0 => {
                    format!(
                        "build script {}, exit status {code}",
                        script.status.describe()
                    )
                }
                _ => format!("build script {}", script.status.describe()),
            });
        }
        if let Some(used) = &krate.proc_macro {
            let users = used.used_by.len();
            roles.push(format!(
                "proc macro used by {users} crate{} ({})",
                if users == 1 { "" } else { "s" },
                match used.status {
                    RunStatus::Ran => "expanded in the sandbox",
                    _ => "not re-expanded (cached)",
                }
            ));
        }
        let _ = writeln!(
            out,
            "\n{}@{}  ({})  {}",
            krate.name,
            krate.version,
            krate.source,
            roles.join("; ")
        );
        let (traced, found): (Vec<_>, Vec<_>) = krate
            .observations
            .iter()
            .partition(|o| o.method == Method::Traced);
        let (withheld, rest): (Vec<_>, Vec<_>) = traced
            .into_iter()
            .partition(|o| o.capability == "env.withheld");
        let denied: Vec<_> = rest
            .iter()
            .filter(|o| o.outcome == Outcome::Denied)
            .collect();
        for o in &denied {
            line(&mut out, o);
        }
        let quiet: Vec<_> = rest
            .iter()
            .filter(|o| o.outcome != Outcome::Denied)
            .collect();
        for o in quiet.iter().take(MAX_QUIET_LINES) {
            line(&mut out, o);
        }
        if quiet.len() > MAX_QUIET_LINES {
            let _ = writeln!(
                out,
                "    ... {} more in the JSON report",
                quiet.len() - MAX_QUIET_LINES
            );
        }
        if !withheld.is_empty() {
            let names: Vec<&str> = withheld.iter().map(|o| o.target.as_str()).collect();
            let shown = names.iter().take(6).copied().collect::<Vec<_>>().join(", ");
            let more = if names.len() > 6 {
                format!(", +{} more", names.len() - 6)
            } else {
                String::new()
            };
            let _ = writeln!(out, "    withheld env: {shown}{more}");
        }
        static_lines(&mut out, &found);
        for error in &krate.scan_errors {
            let _ = writeln!(
                out,
                "    unscanned ({}): {}",
                error.method.as_str(),
                clean(&error.message)
            );
        }
    }
    let _ = writeln!(out, "\nfull report: {report_path}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_text_cannot_drive_the_terminal() {
        assert_eq!(
            clean("\u{1b}[2K\u{1b}[1Ahttps://x\nclean\tok"),
            "\\u{1b}[2K\\u{1b}[1Ahttps://x\\nclean\\tok"
        );
        assert_eq!(clean("plain/ünïcode"), "plain/ünïcode");
        assert_eq!(clean("a\u{202E}b\u{200B}"), "a\\u{202e}b\\u{200b}");
    }
}
