//! The human rendering of an audit: the audited crate and its tree, one
//! block per crate (badges, then the evidence lines), who brings which
//! capability, and the comparison with the earlier version. Crate text is
//! cleaned of control characters.

use std::fmt::Write;

use super::human::clean;
use crate::audit::AuditReport;
use crate::audit::model::{Comparison, CrateAudit, Level, Tree};
use crate::manifest::diff::{Change, describe};

fn marker(level: Level) -> &'static str {
    match level {
        Level::Alert => "!!",
        Level::Notice => " ~",
        Level::Quiet => "  ",
    }
}

/// The tree's one-line summary: how many crates, build scripts, proc
/// macros, alerts.
pub fn tree_summary(tree: &Tree) -> String {
    let count = |f: &dyn Fn(&CrateAudit) -> bool| tree.crates.iter().filter(|c| f(c)).count();
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{} in its tree: {}, {}; {} to look at",
        plural(tree.crates.len(), "crate", "crates"),
        plural(count(&|c| c.build_script), "build script", "build scripts"),
        plural(count(&|c| c.proc_macro), "proc macro", "proc macros"),
        plural(count(&|c| c.level() == Level::Alert), "alert", "alerts"),
    )
}

fn crate_block(out: &mut String, c: &CrateAudit) {
    let via = c
        .brought_in_by()
        .map(|v| format!("  via {v}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "\n{}  ({}){}",
        clean(&c.title()),
        clean(&c.source),
        clean(&via)
    );
    for badge in &c.badges {
        let _ = writeln!(out, "  {} {}", marker(badge.level), clean(&badge.text));
    }
    for e in &c.capabilities {
        let _ = writeln!(out, "       {}", describe(e));
    }
}

/// Renders the report.
pub fn render(report: &AuditReport) -> String {
    let mut out = String::new();
    let tree = &report.tree;
    let subject = &tree.subject;
    let _ = writeln!(
        out,
        "cargo capsule audit {}: {} from {}{}",
        clean(&report.request),
        clean(&subject.title()),
        clean(&subject.source),
        subject
            .checksum
            .as_deref()
            .map(|c| format!(" (checksum {})", clean(c)))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "{}; build scripts ran under profile {}, proc macros under {}",
        tree_summary(tree),
        report.profiles[0],
        report.profiles[1]
    );
    for c in &tree.crates {
        crate_block(&mut out, c);
    }
    if !tree.capabilities.is_empty() {
        let _ = writeln!(out, "\nwhich crate brings which capability:");
        for b in &tree.capabilities {
            let who: Vec<String> = b
                .crates
                .iter()
                .map(|c| {
                    let phases: Vec<&str> = c.phases.iter().map(|p| p.as_str()).collect();
                    clean(&format!("{} {} ({})", c.name, c.version, phases.join(", ")))
                })
                .collect();
            let _ = writeln!(out, "  {:<16} {}", clean(&b.capability), who.join(", "));
        }
    }
    let _ = writeln!(out);
    match &report.comparison {
        Comparison::NotCompared { reason } => {
            let _ = writeln!(out, "not compared: {}", clean(reason));
        }
        Comparison::Failed { against, reason } => {
            let _ = writeln!(
                out,
                "not compared: auditing {} failed: {}",
                clean(against),
                clean(reason)
            );
        }
        Comparison::Compared { chosen, old, diff } => {
            let _ = writeln!(
                out,
                "compared with {} ({chosen}; {}):",
                clean(&old.subject.title()),
                tree_summary(old)
            );
            for c in &diff.crates {
                // A new crate: show what it does, not only that it came.
                if c.change == Change::Added
                    && let Some(found) = tree
                        .crates
                        .iter()
                        .find(|n| Some(&n.version) == c.new_version.as_ref() && n.name == c.name)
                {
                    let badges: Vec<String> = found
                        .badges
                        .iter()
                        .filter(|b| b.level > Level::Quiet)
                        .map(|b| format!("{} {}", marker(b.level).trim(), clean(&b.text)))
                        .collect();
                    if !badges.is_empty() {
                        let _ = writeln!(out, "  new: {}: {}", found.title(), badges.join("; "));
                    }
                }
            }
            for line in diff.render().lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
    }
    out
}
