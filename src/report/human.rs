//! The human summary of a build report: one block per crate@version, denied
//! observations first, then failed, then allowed; long lists are cut with a
//! pointer to the JSON report.

use std::fmt::Write;

use super::{BuildReport, RunStatus};
use crate::observe::{Observation, Outcome};

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
        crate::observe::Phase::ProcMacro => "macro ",
        _ => "",
    };
    let _ = writeln!(
        out,
        "    {:<7} {phase}{:<15} {}{count}{extra}{ambiguous}",
        o.outcome.as_str(),
        o.capability,
        o.target
    );
}

/// Renders the summary.
pub fn render(report: &BuildReport, report_path: &str) -> String {
    let mut out = String::new();
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
        let (withheld, rest): (Vec<_>, Vec<_>) = krate
            .observations
            .iter()
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
    }
    let _ = writeln!(out, "\nfull report: {report_path}");
    out
}
