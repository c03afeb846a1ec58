//! Path normalisation: machine-specific prefixes become tokens (`$OUT_DIR`,
//! `$CARGO_MANIFEST_DIR`, `$TARGET_DIR`, `$CARGO_HOME`, `$RUSTUP_HOME`,
//! `$HOME`, `$TMP`, ...) and cargo's 16-hex-digit hashes become `*`, so the
//! same build on two machines, or by two users, reads the same.
//!
//! The longest matching prefix wins (`$OUT_DIR` lives inside `$TARGET_DIR`,
//! which may live inside `$HOME`), and a prefix only matches at a path
//! component boundary (`/tmp` does not match `/tmpfoo`).

use std::path::{Path, PathBuf};

/// Replaces known prefixes with tokens.
#[derive(Debug, Clone, Default)]
pub struct Normalizer {
    /// (token, absolute path), longest path first.
    prefixes: Vec<(String, String)>,
}

impl Normalizer {
    /// `prefixes` pairs a token such as `$HOME` with its path. Empty or root
    /// paths are ignored (they would match everything).
    pub fn new(prefixes: Vec<(String, PathBuf)>) -> Normalizer {
        let mut list: Vec<(String, String)> = prefixes
            .into_iter()
            .filter_map(|(token, path)| {
                let text = path.to_str()?.trim_end_matches('/').to_string();
                (!text.is_empty()).then_some((token, text))
            })
            .collect();
        // Longest path first; ties broken by token for a stable order.
        list.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        list.dedup_by(|a, b| a.1 == b.1);
        Normalizer { prefixes: list }
    }

    /// Normalises one path.
    pub fn path(&self, path: &Path) -> String {
        let text = path.to_string_lossy();
        for (token, prefix) in &self.prefixes {
            if let Some(rest) = text.strip_prefix(prefix.as_str())
                && (rest.is_empty() || rest.starts_with('/'))
            {
                return hashes_to_star(&format!("{token}{rest}"));
            }
        }
        hashes_to_star(&text)
    }

    /// Normalises every absolute path inside free text (an argv entry such as
    /// `-I/home/u/.cargo/registry/src/x/include`).
    pub fn text(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        'outer: while !rest.is_empty() {
            for (token, prefix) in &self.prefixes {
                if let Some(after) = rest.strip_prefix(prefix.as_str()) {
                    let boundary = after
                        .chars()
                        .next()
                        .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.'));
                    if boundary && starts_path(&out) {
                        out.push_str(token);
                        rest = after;
                        continue 'outer;
                    }
                }
            }
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                out.push(c);
            }
            rest = chars.as_str();
        }
        hashes_to_star(&out)
    }
}

/// Whether a path may start right after `before`: at the start of a word
/// (after a space, `=`, `:`, `,` or a quote), or after a flag such as `-I`,
/// but not inside a relative path (`foo/tmp`).
fn starts_path(before: &str) -> bool {
    let word_start = before
        .rfind(|c: char| c.is_whitespace() || "=:,'\"".contains(c))
        .map_or(0, |i| {
            i + before[i..].chars().next().map_or(1, char::len_utf8)
        });
    let word = &before[word_start..];
    word.is_empty() || (word.starts_with('-') && !word.contains('/'))
}

/// Replaces runs of 16 or more lowercase hex digits (cargo's metadata hashes,
/// the `cc` crate's object prefixes), and of 16 or more decimal digits, with
/// `*`.
pub fn hashes_to_star(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let is_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        let boundary = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        // A long decimal number (a random u64 such as cc-rs's
        // `<n>detect_compiler_family.c`) is a hash whatever follows it.
        let digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if boundary && digits >= 16 {
            out.push('*');
            i += digits;
            continue;
        }
        if is_hex(bytes[i]) && boundary {
            let mut j = i;
            while j < bytes.len() && is_hex(bytes[j]) {
                j += 1;
            }
            let ends = j == bytes.len() || !bytes[j].is_ascii_alphanumeric();
            if j - i >= 16 && ends {
                out.push('*');
                i = j;
                continue;
            }
            out.push_str(&text[i..j]);
            i = j;
            continue;
        }
        // Copy one whole character.
        let ch_len = text[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&text[i..i + ch_len]);
        i += ch_len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n() -> Normalizer {
        Normalizer::new(vec![
            ("$HOME".into(), "/home/u".into()),
            ("$TARGET_DIR".into(), "/home/u/proj/target".into()),
            ("$CARGO_MANIFEST_DIR".into(), "/home/u/proj/crate".into()),
            ("$TMP".into(), "/tmp".into()),
            ("$ROOT".into(), "/".into()),
        ])
    }

    #[test]
    fn longest_prefix_wins_at_boundaries() {
        let n = n();
        assert_eq!(
            n.path(Path::new("/home/u/.ssh/id_rsa")),
            "$HOME/.ssh/id_rsa"
        );
        assert_eq!(
            n.path(Path::new(
                "/home/u/proj/target/debug/build/x-0123456789abcdef/out"
            )),
            "$TARGET_DIR/debug/build/x-*/out"
        );
        assert_eq!(n.path(Path::new("/home/user2/x")), "/home/user2/x");
        assert_eq!(n.path(Path::new("/tmpfoo")), "/tmpfoo");
        assert_eq!(n.path(Path::new("/tmp")), "$TMP");
    }

    #[test]
    fn text_replaces_embedded_paths() {
        let n = n();
        assert_eq!(
            n.text("-I/home/u/proj/crate/include"),
            "-I$CARGO_MANIFEST_DIR/include"
        );
        assert_eq!(n.text("--out=/tmp/x.o"), "--out=$TMP/x.o");
        assert_eq!(n.text("/tmpx"), "/tmpx");
        assert_eq!(n.text("plain"), "plain");
    }

    #[test]
    fn hashes() {
        assert_eq!(hashes_to_star("0123456789abcdef-foo.o"), "*-foo.o");
        assert_eq!(hashes_to_star("deadbeef"), "deadbeef");
        assert_eq!(hashes_to_star("x0123456789abcdef0"), "x0123456789abcdef0");
        assert_eq!(hashes_to_star("é/0123456789abcdef"), "é/*");
        assert_eq!(
            hashes_to_star("out/3772060930874991858detect_compiler_family.c"),
            "out/*detect_compiler_family.c"
        );
    }
}
