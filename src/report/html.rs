//! The HTML rendering of an audit: one self-contained file (inline style,
//! no scripts, no fonts, images or links to fetch) with a badge per crate,
//! the comparison with the earlier version side by side, and the evidence
//! behind every line, all visible without clicking. Every piece of crate
//! text is escaped.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::human::clean;
use crate::audit::AuditReport;
use crate::audit::model::{Badge, Comparison, CrateAudit, Tree};
use crate::manifest::diff::{Change, CrateDiff, Entry};

/// Text for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in clean(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#1b1b1b;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ccc}
.sub{color:#555}.card{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;margin:.8em 0}
.card.alert{border-left:6px solid #b71c1c}.card.notice{border-left:6px solid #e0a100}.card.quiet{border-left:6px solid #2e7d32}
.badge{display:inline-block;border-radius:4px;padding:.15em .5em;margin:.15em 0;font-size:.95em}
.badge.alert{background:#fde0dc;color:#7f0000}.badge.notice{background:#fff4d6;color:#5d4300}.badge.quiet{background:#e3f4e4;color:#1b4d1e}
table{border-collapse:collapse;width:100%;margin:.4em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}code,.mono{font-family:ui-monospace,monospace;font-size:.92em;word-break:break-all}
.gained{color:#7f0000}.lost{color:#1b4d1e}.via{color:#555;font-size:.9em}
";

fn badge(out: &mut String, b: &Badge) {
    let _ = write!(
        out,
        "<div><span class=\"badge {}\">{}</span></div>",
        b.level.as_str(),
        esc(&b.text)
    );
}

fn evidence_text(e: &Entry) -> String {
    e.evidence
        .iter()
        .map(|(k, v)| format!("{k}: {}", v.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

fn entries_table(out: &mut String, entries: &[Entry], class: &str) {
    if entries.is_empty() {
        return;
    }
    out.push_str("<table><tr><th>phase</th><th>capability</th><th>target</th><th>found by</th><th>outcome</th><th>evidence</th></tr>");
    for e in entries {
        let methods: Vec<&str> = e.methods.iter().map(|m| m.as_str()).collect();
        let outcomes: Vec<&str> = e.outcomes.iter().map(|o| o.as_str()).collect();
        let _ = write!(
            out,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
            e.phase.as_str(),
            esc(&e.capability),
            esc(&e.target),
            methods.join(" + "),
            outcomes.join(" + "),
            esc(&evidence_text(e))
        );
    }
    out.push_str("</table>");
}

fn crate_card(out: &mut String, c: &CrateAudit) {
    let _ = write!(
        out,
        "<div class=\"card {}\" id=\"{}\"><h3>{}</h3><div class=\"via\">{} · {}</div>",
        c.level().as_str(),
        esc(&format!("crate-{}-{}", c.name, c.version)),
        esc(&c.title()),
        esc(&c.source),
        match c.brought_in_by() {
            Some(via) => format!("via {}", esc(&via)),
            None => "the audited crate".into(),
        }
    );
    for b in &c.badges {
        badge(out, b);
    }
    entries_table(out, &c.capabilities, "");
    out.push_str("</div>");
}

/// The comparison view: one row per crate name, the old and new version's
/// badges side by side, then the gained and lost capabilities.
fn comparison(out: &mut String, new: &Tree, old: &Tree, chosen: &str, diffs: &[CrateDiff]) {
    let _ = write!(
        out,
        "<h2>Compared with {} ({})</h2>",
        esc(&old.subject.title()),
        esc(chosen)
    );
    let gained: usize = diffs.iter().map(|c| c.gained.len()).sum();
    let lost: usize = diffs.iter().map(|c| c.lost.len()).sum();
    let added: Vec<&CrateDiff> = diffs.iter().filter(|c| c.change == Change::Added).collect();
    let removed = diffs.iter().filter(|c| c.change == Change::Removed).count();
    let _ = write!(
        out,
        "<p id=\"comparison-summary\">{} new crate{}, {removed} removed; {gained} capabilit{} gained, {lost} lost.</p>",
        added.len(),
        if added.len() == 1 { "" } else { "s" },
        if gained == 1 { "y" } else { "ies" },
    );
    for a in &added {
        let _ = write!(
            out,
            "<p class=\"gained\">New dependency: <strong>{} {}</strong>, pulled in by {}</p>",
            esc(&a.name),
            esc(a.new_version.as_deref().unwrap_or("")),
            esc(&a.pulled_in_by.join(", "))
        );
    }
    let mut rows: BTreeMap<&str, (Vec<&CrateAudit>, Vec<&CrateAudit>)> = BTreeMap::new();
    for c in &old.crates {
        rows.entry(&c.name).or_default().0.push(c);
    }
    for c in &new.crates {
        rows.entry(&c.name).or_default().1.push(c);
    }
    let _ = write!(
        out,
        "<table id=\"versions\"><tr><th>crate</th><th>in {}</th><th>in {}</th></tr>",
        esc(&old.subject.title()),
        esc(&new.subject.title())
    );
    let cell = |out: &mut String, list: &[&CrateAudit]| {
        out.push_str("<td>");
        if list.is_empty() {
            out.push_str("<em>not in the tree</em>");
        }
        for c in list {
            let _ = write!(out, "<div><strong>{}</strong></div>", esc(&c.version));
            for b in &c.badges {
                badge(out, b);
            }
        }
        out.push_str("</td>");
    };
    for (name, (old_list, new_list)) in &rows {
        let _ = write!(out, "<tr><td>{}</td>", esc(name));
        cell(out, old_list);
        cell(out, new_list);
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    for c in diffs {
        if c.gained.is_empty() && c.lost.is_empty() && c.notes.is_empty() {
            continue;
        }
        let _ = write!(out, "<h3>{}</h3>", esc(&c.title()));
        if !c.gained.is_empty() {
            out.push_str("<div class=\"gained\">gained:</div>");
            entries_table(out, &c.gained, "gained");
        }
        if !c.lost.is_empty() {
            out.push_str("<div class=\"lost\">lost:</div>");
            entries_table(out, &c.lost, "lost");
        }
        for note in &c.notes {
            let _ = write!(out, "<div>note: {}</div>", esc(&note.line()));
        }
    }
}

/// Renders the report as one HTML document.
pub fn render(report: &AuditReport) -> String {
    let tree = &report.tree;
    let subject = &tree.subject;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>cargo capsule audit: {}</title><style>{STYLE}</style></head><body>",
        esc(&subject.title())
    );
    let _ = write!(
        out,
        "<h1>cargo capsule audit: {}</h1><p class=\"sub\">{} · requested as <code>{}</code>{}<br>{}<br>build scripts sandboxed under profile <code>{}</code>, proc macros under <code>{}</code></p>",
        esc(&subject.title()),
        esc(&subject.source),
        esc(&report.request),
        subject
            .checksum
            .as_deref()
            .map(|c| format!(" · checksum <code>{}</code>", esc(c)))
            .unwrap_or_default(),
        esc(&super::audit::tree_summary(tree)),
        esc(&report.profiles[0]),
        esc(&report.profiles[1])
    );
    match &report.comparison {
        Comparison::Compared { chosen, old, diff } => {
            comparison(&mut out, tree, old, chosen, &diff.crates)
        }
        Comparison::NotCompared { reason } => {
            let _ = write!(out, "<h2>Not compared</h2><p>{}</p>", esc(reason));
        }
        Comparison::Failed { against, reason } => {
            let _ = write!(
                out,
                "<h2>Not compared</h2><p class=\"gained\">Auditing {} failed: {}</p>",
                esc(against),
                esc(reason)
            );
        }
    }
    let _ = write!(
        out,
        "<h2>Crates in the tree of {}</h2>",
        esc(&subject.title())
    );
    for c in &tree.crates {
        crate_card(&mut out, c);
    }
    if !tree.capabilities.is_empty() {
        out.push_str("<h2>Which crate brings which capability</h2><table><tr><th>capability</th><th>crate</th><th>phases</th><th>via</th></tr>");
        for b in &tree.capabilities {
            for c in &b.crates {
                let phases: Vec<&str> = c.phases.iter().map(|p| p.as_str()).collect();
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td></tr>",
                    esc(&b.capability),
                    esc(&c.name),
                    esc(&c.version),
                    phases.join(", "),
                    esc(&c.via.join(" → "))
                );
            }
        }
        out.push_str("</table>");
    }
    out.push_str("<p class=\"sub\">Written by cargo-capsule. Facts, not a verdict: what build-time code did in the sandbox and what the code can do.</p></body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::model::Level;

    #[test]
    fn crate_text_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("a\u{1b}[2Kb"), "a\\u{1b}[2Kb");
    }

    #[test]
    fn levels_map_to_classes() {
        let mut out = String::new();
        badge(
            &mut out,
            &Badge {
                level: Level::Alert,
                text: "build script: tried to connect to 1.2.3.4:443 — denied".into(),
            },
        );
        assert!(out.contains("class=\"badge alert\""), "{out}");
        assert!(out.contains("1.2.3.4:443 — denied"), "{out}");
    }
}
