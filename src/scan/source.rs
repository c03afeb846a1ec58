//! The source scanner: parses one Rust file with `syn` and reports the sites
//! where it could touch the outside world, without running anything.
//!
//! Paths in expressions are resolved through the file's `use` declarations
//! (flattened over all its modules) and classified by the API catalogue;
//! `env!`, `include_*!`, extern blocks, `unsafe`, inline assembly and link
//! attributes are recognised from the syntax; string literals and byte
//! arrays are checked for signs of obfuscation. Macro bodies are parsed as
//! expressions or statements when they can be, and otherwise their groups
//! and literal tokens still are. Input is untrusted: every failure is an
//! error value; nesting is bounded on the tokens before `syn` (which
//! recurses) parses them, on a thread with a stack sized for that bound.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use proc_macro2::{Delimiter, LexError, Spacing, Span, TokenStream, TokenTree};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::visit::{self, Visit};
use syn::{Attribute, BinOp, Expr, Ident, Item, Lit, Macro, Meta, Token, UseTree};

use super::Finding;
use super::catalogue::Catalogue;
use crate::observe::{Method, Phase};

/// Deepest group nesting accepted before parsing.
const MAX_NESTING: usize = 256;
/// Most tokens on one path into the syntax tree (see `check_shape`).
/// Real crates stay under 400; syn needs up to about 30 KiB of stack per
/// token of a nested type in a debug build.
const MAX_COST: usize = 2048;
/// Deepest syntax-tree nesting the scanner descends into (a backstop).
const MAX_VISIT_DEPTH: usize = MAX_COST;
const STACK_SIZE: usize = 256 << 20;
const DYNAMIC: &str = "<dynamic>";
/// Levels of a macro body that does not parse at which groups are tried
/// as statements (deeper ones are only read for literals).
const MAX_REPARSE_DEPTH: usize = 3;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SourceError {
    #[error("{file}: not UTF-8")]
    NotUtf8 { file: String },
    #[error("{file}:{line}:{column}: does not parse: {message}")]
    Parse {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
}

/// Where a file sits: `display` is the path shown in evidence (e.g.
/// "src/lib.rs" or "$OUT_DIR/gen.rs"), `path` the real file, `package_root`
/// the package directory (for resolving include paths).
#[derive(Debug, Clone, Copy)]
pub struct SourceFile<'a> {
    pub display: &'a str,
    pub path: &'a Path,
    pub package_root: &'a Path,
    pub phase: Phase,
}

/// Scans one file's bytes. Never panics on any input.
pub fn scan_source(
    file: &SourceFile,
    bytes: &[u8],
    catalogue: &Catalogue,
) -> Result<Vec<Finding>, SourceError> {
    let text = std::str::from_utf8(bytes).map_err(|_| SourceError::NotUtf8 {
        file: file.display.to_string(),
    })?;
    // syn recurses about once per nested token, and proc-macro2 keeps every
    // file lexed on a thread in a thread-local source map: a thread of its
    // own, with a stack sized for `MAX_COST`, bounds both.
    let error = |line, column, message| SourceError::Parse {
        file: file.display.to_string(),
        line,
        column,
        message,
    };
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("source-scan".to_string())
            .stack_size(STACK_SIZE)
            .spawn_scoped(scope, || scan_text(file, text, catalogue))
            .map_err(|e| error(0, 0, format!("cannot start the scanner thread: {e}")))?
            .join()
            .unwrap_or_else(|_| Err(error(0, 0, "the scanner failed".to_string())))
    })
}

fn scan_text(
    file: &SourceFile,
    text: &str,
    catalogue: &Catalogue,
) -> Result<Vec<Finding>, SourceError> {
    let error = |span: Span, message: String| SourceError::Parse {
        file: file.display.to_string(),
        line: span.start().line,
        column: span.start().column + 1,
        message,
    };
    // A byte-order mark and a shebang line are not tokens (as in
    // `syn::parse_file`; the line break stays, and so do line numbers).
    let mut text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // As rustc: `#!` followed (past whitespace and comments) by `[` is an
    // inner attribute, not a shebang.
    if let Some(rest) = text.strip_prefix("#!")
        && !skip_trivia(rest).starts_with('[')
    {
        text = &text[text.find('\n').unwrap_or(text.len())..];
    }
    let tokens: TokenStream = text
        .parse()
        .map_err(|e: LexError| error(e.span(), e.to_string()))?;
    check_shape(&tokens).map_err(|(span, message)| error(span, message.to_string()))?;
    let ast: syn::File = match syn::parse2(tokens.clone()) {
        Ok(ast) => ast,
        // A file `include!`d into a function body or an expression is not a
        // whole file: read it as the body of a function (same lines).
        Err(e) => match fragment(text) {
            Some(ast) => ast,
            None => return Err(error(e.span(), e.to_string())),
        },
    };
    let mut uses = Uses::default();
    uses.visit_file(&ast);
    let mut scanner = Scanner {
        file,
        catalogue,
        uses,
        depth: 0,
        scopes: Vec::new(),
        obfuscation: BTreeSet::new(),
        findings: Vec::new(),
    };
    scanner.visit_file(&ast);
    let mut findings = scanner.findings;
    findings.sort();
    findings.dedup();
    Ok(findings)
}

/// `text` as the body of a function, when it parses that way (a file made
/// for `include!` in expression or statement position).
fn fragment(text: &str) -> Option<syn::File> {
    let wrapped = format!("fn __capsule_included() {{{text}\n}}");
    let tokens: TokenStream = wrapped.parse().ok()?;
    check_shape(&tokens).ok()?;
    syn::parse2(tokens).ok()
}

/// `text` past leading whitespace and comments (nested block comments
/// included); unterminated comments leave nothing.
fn skip_trivia(mut text: &str) -> &str {
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix("//") {
            text = rest.find('\n').map_or("", |at| &rest[at..]);
        } else if text.starts_with("/*") {
            let mut depth = 0usize;
            let mut end = None;
            let bytes = text.as_bytes();
            let mut i = 0;
            while i + 1 < bytes.len() {
                match (bytes[i], bytes[i + 1]) {
                    (b'/', b'*') => {
                        depth += 1;
                        i += 2;
                    }
                    (b'*', b'/') => {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            end = Some(i);
                            break;
                        }
                    }
                    _ => i += 1,
                }
            }
            match end {
                Some(at) => text = &text[at..],
                None => return "",
            }
        } else {
            return text;
        }
    }
}

/// One open group in `check_shape`.
struct Level {
    tokens: std::iter::Peekable<proc_macro2::token_stream::IntoIter>,
    brace: bool,
    /// Tokens since the last separator.
    run: usize,
    /// `<` not closed yet (a `,` inside does not separate).
    angle: usize,
    /// A `{...}` just closed: a following item or statement separates.
    after_brace: bool,
    /// Inside `#` or `#!` of an attribute that does not count.
    attribute: bool,
}

/// Checks the token tree's shape before `syn`, which recurses once or more
/// per token of a nested construct, sees it: group nesting of at most
/// `MAX_NESTING`, and at most `MAX_COST` tokens on any path into the tree,
/// where a path counts, in each enclosing group, the tokens since the last
/// separator (`;`, `=>`, `,` outside `<...>`, an item after `}`). Iterative.
fn check_shape(tokens: &TokenStream) -> Result<(), (Span, &'static str)> {
    let level = |tokens: TokenStream, brace| Level {
        tokens: tokens.into_iter().peekable(),
        brace,
        run: 0,
        angle: 0,
        after_brace: false,
        attribute: false,
    };
    let mut stack = vec![level(tokens.clone(), false)];
    let (mut outer, mut joint) = (0usize, None);
    while let Some(top) = stack.last_mut() {
        let Some(tree) = top.tokens.next() else {
            let brace = top.brace;
            stack.pop();
            if let Some(parent) = stack.last_mut() {
                outer -= parent.run;
                parent.after_brace = brace;
            }
            continue;
        };
        let separates = match &tree {
            TokenTree::Ident(i) => i != "else" && i != "as",
            TokenTree::Punct(p) => p.as_char() == '#',
            _ => false,
        };
        if std::mem::take(&mut top.after_brace) && separates {
            (top.run, top.angle) = (0, 0);
        }
        // Attributes where an item, statement or element starts are free
        // (pages of doc comments), since syn reads them in a loop.
        let attribute = match &tree {
            TokenTree::Punct(p) => {
                (p.as_char() == '#' && top.run == 0) || (top.attribute && p.as_char() == '!')
            }
            TokenTree::Group(g) => top.attribute && g.delimiter() == Delimiter::Bracket,
            _ => false,
        };
        top.attribute = attribute && !matches!(tree, TokenTree::Group(_));
        top.run += usize::from(!attribute);
        let prev = joint.take();
        match &tree {
            TokenTree::Punct(p) => {
                let c = p.as_char();
                let joined = p.spacing() == Spacing::Joint;
                joint = joined.then_some(c);
                let next_eq = joined
                    && matches!(top.tokens.peek(), Some(TokenTree::Punct(n)) if n.as_char() == '=');
                match c {
                    ';' => (top.run, top.angle) = (0, 0),
                    ',' if top.angle == 0 => top.run = 0,
                    '>' if prev == Some('=') => top.run = 0,
                    '>' if prev == Some('-') || next_eq => {}
                    '>' => top.angle = top.angle.saturating_sub(1),
                    '<' if !next_eq => top.angle += 1,
                    _ => {}
                }
            }
            TokenTree::Group(g) => {
                outer += top.run;
                let brace = g.delimiter() == Delimiter::Brace;
                stack.push(level(g.stream(), brace));
            }
            _ => {}
        }
        let cost = outer + stack.last().map_or(0, |top| top.run) + stack.len();
        if stack.len() > MAX_NESTING + 1 {
            return Err((tree.span(), "nesting deeper than 256"));
        } else if cost > MAX_COST {
            return Err((
                tree.span(),
                "nesting too deep (more than 2048 tokens on one path)",
            ));
        }
    }
    Ok(())
}

/// The file's `use` declarations, flattened over all its modules.
#[derive(Default)]
struct Uses {
    /// Imported name → full paths.
    names: BTreeMap<String, Vec<String>>,
    /// Prefixes imported with `*`.
    globs: Vec<String>,
}

impl Uses {
    fn collect(&mut self, tree: &UseTree, prefix: &str) {
        let join = |name: &Ident| match prefix {
            "" => name.to_string(),
            _ => format!("{prefix}::{name}"),
        };
        let last = prefix.rsplit("::").next().unwrap_or_default().to_string();
        match tree {
            UseTree::Path(p) => self.collect(&p.tree, &join(&p.ident)),
            UseTree::Name(n) if n.ident == "self" => self.add(last, prefix.to_string()),
            UseTree::Name(n) => self.add(n.ident.to_string(), join(&n.ident)),
            UseTree::Rename(r) if r.ident == "self" => {
                self.add(r.rename.to_string(), prefix.to_string())
            }
            UseTree::Rename(r) => self.add(r.rename.to_string(), join(&r.ident)),
            UseTree::Glob(_) if !prefix.is_empty() && !self.globs.iter().any(|g| g == prefix) => {
                self.globs.push(prefix.to_string())
            }
            UseTree::Glob(_) => {}
            UseTree::Group(g) => g.items.iter().for_each(|t| self.collect(t, prefix)),
        }
    }

    fn add(&mut self, name: String, full: String) {
        let paths = self.names.entry(name).or_default();
        if !paths.contains(&full) {
            paths.push(full);
        }
    }
}

impl<'ast> Visit<'ast> for Uses {
    fn visit_item_use(&mut self, node: &'ast syn::ItemUse) {
        self.collect(&node.tree, "");
    }

    fn visit_item_extern_crate(&mut self, node: &'ast syn::ItemExternCrate) {
        if let Some((_, rename)) = &node.rename {
            self.add(rename.to_string(), node.ident.to_string());
        }
    }
}

/// Expressions of one statement (or item): an XOR with a literal and a
/// decoding to text in the same statement are string arithmetic.
#[derive(Default)]
struct Scope {
    xor_line: Option<usize>,
    decodes: bool,
}

struct Scanner<'a> {
    file: &'a SourceFile<'a>,
    catalogue: &'a Catalogue,
    uses: Uses,
    depth: usize,
    scopes: Vec<Scope>,
    /// (line, reason) of obfuscation findings already made.
    obfuscation: BTreeSet<(usize, &'static str)>,
    findings: Vec<Finding>,
}

type Args = Punctuated<Expr, Token![,]>;

fn line(span: Span) -> usize {
    span.start().line
}

fn segments(path: &syn::Path) -> Vec<String> {
    path.segments.iter().map(|s| s.ident.to_string()).collect()
}

fn args(mac: &Macro) -> Option<Args> {
    mac.parse_body_with(Args::parse_terminated).ok()
}

fn lit_str(e: Option<&Expr>) -> Option<String> {
    match e {
        Some(Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        })) => Some(s.value()),
        _ => None,
    }
}

/// An integer literal, possibly in parentheses or cast (`(0x5a as u8)`).
fn int_literal(mut e: &Expr) -> bool {
    loop {
        match e {
            Expr::Lit(l) => return matches!(l.lit, Lit::Int(_)),
            Expr::Paren(syn::ExprParen { expr, .. })
            | Expr::Group(syn::ExprGroup { expr, .. })
            | Expr::Cast(syn::ExprCast { expr, .. }) => e = expr,
            _ => return false,
        }
    }
}

/// `^`, `+` or `-` with an integer literal operand somewhere in `e`.
fn arithmetic(e: &Expr, depth: u8) -> Option<&'static str> {
    let depth = depth.checked_sub(1)?;
    match e {
        Expr::Binary(b) => {
            let kind = match b.op {
                BinOp::BitXor(_) => Some("xor"),
                BinOp::Add(_) | BinOp::Sub(_) => Some("arithmetic"),
                _ => None,
            };
            kind.filter(|_| int_literal(&b.left) || int_literal(&b.right))
                .or_else(|| arithmetic(&b.left, depth))
                .or_else(|| arithmetic(&b.right, depth))
        }
        Expr::Paren(syn::ExprParen { expr, .. })
        | Expr::Group(syn::ExprGroup { expr, .. })
        | Expr::Cast(syn::ExprCast { expr, .. })
        | Expr::Unary(syn::ExprUnary { expr, .. })
        | Expr::MethodCall(syn::ExprMethodCall { receiver: expr, .. }) => arithmetic(expr, depth),
        _ => None,
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &s[..at]),
        None => s.to_string(),
    }
}

fn excerpt(s: &str, n: usize) -> String {
    format!("{}... ({n} chars)", s.chars().take(24).collect::<String>())
}

/// Each obfuscation signal in a literal's text: reason and value.
fn obfuscation_signals(s: &str) -> Vec<(&'static str, String)> {
    let mut found = Vec::new();
    if ["http://", "https://", "ftp://", "ws://", "wss://"]
        .iter()
        .any(|scheme| s.contains(scheme))
    {
        found.push(("url", truncate(s, 120)));
    }
    if let Some(address) = ip_address(s) {
        found.push(("ip-address", address));
    }
    let n = s.chars().count();
    let has = |f: fn(&char) -> bool| s.chars().any(|c| f(&c));
    if n >= 32 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        found.push(("hex", excerpt(s, n)));
    } else if n >= 40
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=_-".contains(c))
        && has(char::is_ascii_digit)
        && has(char::is_ascii_lowercase)
        && has(char::is_ascii_uppercase)
    {
        found.push(("base64", excerpt(s, n)));
    } else if n > 512 {
        found.push(("long-string", excerpt(s, n)));
    }
    found
}

fn ip_address(s: &str) -> Option<String> {
    let t = s.trim();
    // `::` and `a::b` parse as IPv6 addresses but are mostly Rust paths.
    if t.parse::<std::net::SocketAddr>().is_ok()
        || t.parse::<std::net::Ipv4Addr>().is_ok()
        || (t.parse::<std::net::Ipv6Addr>().is_ok() && t.contains(|c: char| c.is_ascii_digit()))
    {
        return Some(t.to_string());
    }
    s.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|token| {
            let parts: Vec<&str> = token.split('.').collect();
            parts.len() == 4
                && parts
                    .iter()
                    .all(|p| (1..=3).contains(&p.len()) && p.parse::<u8>().is_ok())
        })
        .map(str::to_string)
}

/// `..` and `.` removed without touching the file system.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => _ = out.pop(),
            other => out.push(other),
        }
    }
    out
}

fn item_attributes(item: &Item) -> (&[Attribute], Option<&Ident>) {
    match item {
        Item::Const(i) => (&i.attrs, Some(&i.ident)),
        Item::Enum(i) => (&i.attrs, Some(&i.ident)),
        Item::Fn(i) => (&i.attrs, Some(&i.sig.ident)),
        Item::ForeignMod(i) => (&i.attrs, None),
        Item::Impl(i) => (&i.attrs, None),
        Item::Mod(i) => (&i.attrs, Some(&i.ident)),
        Item::Static(i) => (&i.attrs, Some(&i.ident)),
        Item::Struct(i) => (&i.attrs, Some(&i.ident)),
        Item::Trait(i) => (&i.attrs, Some(&i.ident)),
        Item::Union(i) => (&i.attrs, Some(&i.ident)),
        _ => (&[], None),
    }
}

/// The name of a foreign function or static, also of forms syn keeps as
/// tokens (`safe fn f();`).
fn foreign_name(item: &syn::ForeignItem) -> Option<Ident> {
    match item {
        syn::ForeignItem::Fn(f) => Some(f.sig.ident.clone()),
        syn::ForeignItem::Static(s) => Some(s.ident.clone()),
        syn::ForeignItem::Verbatim(tokens) => {
            let idents: Vec<Ident> = (tokens.clone().into_iter())
                .filter_map(|t| match t {
                    TokenTree::Ident(i) if i != "mut" => Some(i),
                    _ => None,
                })
                .collect();
            let found = idents.windows(2).find(|w| w[0] == "fn" || w[0] == "static");
            found.map(|w| w[1].clone())
        }
        _ => None,
    }
}

/// `concat!(env!("OUT_DIR"), "/x.rs")` → `$OUT_DIR/x.rs`.
fn concat_target(mac: &Macro) -> Option<String> {
    let mut target = String::new();
    for part in &args(mac)? {
        match part {
            Expr::Macro(m) if m.mac.path.is_ident("env") => {
                target.push('$');
                target.push_str(&lit_str(args(&m.mac)?.first())?);
            }
            part => target.push_str(&lit_str(Some(part))?),
        }
    }
    Some(target)
}

impl Scanner<'_> {
    fn push(&mut self, capability: &str, target: String, at: usize, extra: Vec<(&str, String)>) {
        let location = ("location", format!("{}:{at}", self.file.display));
        self.findings.push(Finding {
            phase: self.file.phase,
            capability: capability.to_string(),
            target,
            method: Method::Source,
            evidence: (std::iter::once(location).chain(extra))
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        });
    }

    fn obfuscated(&mut self, reason: &'static str, value: String, at: usize) {
        if self.obfuscation.insert((at, reason)) {
            let extra = vec![("value", value)];
            self.push("obfuscation", reason.to_string(), at, extra);
        }
    }

    fn check_lit(&mut self, lit: &Lit) {
        let text = match lit {
            Lit::Str(s) => s.value(),
            Lit::ByteStr(s) => String::from_utf8_lossy(&s.value()).into_owned(),
            Lit::CStr(s) => String::from_utf8_lossy(s.value().to_bytes()).into_owned(),
            _ => return,
        };
        for (reason, value) in obfuscation_signals(&text) {
            self.obfuscated(reason, value, line(lit.span()));
        }
    }

    /// Eight or more integer literals that all are printable ASCII.
    fn check_bytes<'e>(&mut self, elems: impl Iterator<Item = &'e Expr>, at: usize) {
        let mut text = String::new();
        for e in elems {
            let Expr::Lit(syn::ExprLit {
                lit: Lit::Int(i), ..
            }) = e
            else {
                return;
            };
            match i.base10_parse::<u8>() {
                Ok(b @ (0x20..=0x7e | 9 | 10 | 13)) => text.push(char::from(b)),
                _ => return,
            }
        }
        if text.len() >= 8 {
            self.obfuscated("string-from-bytes", truncate(&text, 120), at);
        }
    }

    /// The resolved path and the catalogue's capability and entry for it.
    fn classify(&self, path: &[String], absolute: bool, glob: bool) -> Option<[String; 3]> {
        let written = path.join("::");
        let mut candidates = Vec::new();
        match path.split_first() {
            Some((first, rest)) if !absolute && self.uses.names.contains_key(first) => {
                for full in &self.uses.names[first] {
                    candidates.push(match rest {
                        [] => full.clone(),
                        _ => format!("{full}::{}", rest.join("::")),
                    });
                }
            }
            _ => candidates.push(written.clone()),
        }
        if glob && !absolute {
            candidates.extend(self.uses.globs.iter().map(|g| format!("{g}::{written}")));
        }
        candidates.into_iter().find_map(|resolved| {
            let m = self.catalogue.classify_path(&resolved)?;
            let (capability, api) = (m.capability.to_string(), m.api.to_string());
            Some([resolved, capability, api])
        })
    }

    /// A path in an expression (`args` when it is called); true on a match.
    fn expr_path(
        &mut self,
        qself: Option<&syn::QSelf>,
        path: &syn::Path,
        args: Option<&Args>,
    ) -> bool {
        let mut written = segments(path);
        if let Some(q) = qself
            && q.position == 0
            && let syn::Type::Path(ty) = &*q.ty
        {
            written.splice(0..0, segments(&ty.path));
        }
        let decodes = match written.as_slice() {
            [.., last] if last.starts_with("from_utf8") || last == "from_u32" => true,
            [.., ty, f] => ty == "char" && f == "from",
            _ => false,
        };
        if decodes {
            self.mark(|s| s.decodes = true);
        }
        let glob = args.is_some() || written.len() > 1;
        let absolute = path.leading_colon.is_some();
        let Some([resolved, capability, api]) = self.classify(&written, absolute, glob) else {
            return false;
        };
        let at = path.segments.first().map_or(0, |s| line(s.ident.span()));
        let target = match (capability.as_str(), args.map(|a| a.first())) {
            ("env.read", Some(None)) => api,
            ("env.read", arg) => lit_str(arg.flatten()).unwrap_or_else(|| DYNAMIC.to_string()),
            _ => api,
        };
        self.push(&capability, target, at, vec![("api", resolved)]);
        true
    }

    fn mark(&mut self, f: impl FnOnce(&mut Scope)) {
        if let Some(scope) = self.scopes.last_mut() {
            f(scope);
        }
    }

    fn attributes(&mut self, attrs: &[Attribute], name: Option<&Ident>) {
        for attr in attrs {
            let at = line(attr.pound_token.span);
            self.meta(&attr.meta, name, at, 0);
        }
    }

    /// One attribute's meta: `unsafe(...)` and `cfg_attr(pred, ...)` are
    /// unwrapped (whichever way the predicate goes: either may be built);
    /// a macro in a value (`doc = include_str!(...)`) is visited.
    fn meta(&mut self, meta: &Meta, name: Option<&Ident>, at: usize, depth: usize) {
        if depth > 8 {
            return;
        }
        match meta {
            Meta::List(list) if list.path.is_ident("unsafe") => {
                if let Ok(inner) = list.parse_args::<Meta>() {
                    self.meta(&inner, name, at, depth + 1);
                }
            }
            Meta::List(list) if list.path.is_ident("cfg_attr") => {
                if let Ok(args) =
                    list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
                {
                    for inner in args.iter().skip(1) {
                        self.meta(inner, name, at, depth + 1);
                    }
                }
            }
            Meta::NameValue(nv) if matches!(nv.value, Expr::Macro(_)) => {
                self.visit_expr(&nv.value);
                self.attribute(meta, name, at);
            }
            meta => self.attribute(meta, name, at),
        }
    }

    fn attribute(&mut self, meta: &Meta, name: Option<&Ident>, at: usize) {
        let item = || name.map_or_else(|| "<unnamed>".to_string(), Ident::to_string);
        let string = |meta: &Meta| match meta {
            Meta::NameValue(nv) => lit_str(Some(&nv.value)),
            _ => None,
        };
        let path = meta.path();
        let (capability, target) = if path.is_ident("no_mangle") {
            ("link.export", item())
        } else if path.is_ident("used") {
            ("link.used", item())
        } else if path.is_ident("export_name") {
            ("link.export", string(meta).unwrap_or_else(item))
        } else if path.is_ident("link_section") {
            let section = string(meta);
            (
                "link.section",
                section.unwrap_or_else(|| DYNAMIC.to_string()),
            )
        } else {
            if path.is_ident("link")
                && let Meta::List(list) = meta
                && let Ok(args) =
                    list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
            {
                let value = |key| {
                    args.iter()
                        .find(|m| m.path().is_ident(key))
                        .and_then(string)
                };
                if let Some(lib) = value("name") {
                    let kind = value("kind").map(|k| ("kind", k));
                    self.push("link.native", lib, at, kind.into_iter().collect());
                }
            }
            return;
        };
        self.push(capability, target, at, vec![]);
    }

    fn include(&mut self, mac: &Macro, api: String, at: usize) {
        let first = args(mac).and_then(|a| a.into_iter().next());
        let (target, leaves) = match &first {
            Some(Expr::Macro(m)) if m.mac.path.is_ident("concat") => match concat_target(&m.mac) {
                Some(target) => {
                    let leaves = self.concat_leaves(&target);
                    (target, leaves)
                }
                None => (DYNAMIC.to_string(), false),
            },
            first => match lit_str(first.as_ref()) {
                Some(written) => {
                    let dir = self.file.path.parent().unwrap_or(Path::new(""));
                    let inside = normalise(&dir.join(&written))
                        .starts_with(normalise(self.file.package_root));
                    let leaves = Path::new(&written).is_absolute() || !inside;
                    (written, leaves)
                }
                None => (DYNAMIC.to_string(), false),
            },
        };
        let mut extra = vec![("api", api)];
        if leaves {
            extra.push(("leaves-package", "true".to_string()));
        }
        self.push("fs.read", target, at, extra);
    }

    /// Whether an include path built by `concat!` (`$VAR/...` for `env!`)
    /// points outside the package: relative to `$CARGO_MANIFEST_DIR`, the
    /// check is the literal one; `$OUT_DIR` is the crate's own unless it
    /// climbs out with `..`; any other variable or an absolute path leaves.
    fn concat_leaves(&self, target: &str) -> bool {
        let climbs = |rest: &str| rest.split('/').any(|c| c == "..");
        if let Some(rest) = target.strip_prefix("$CARGO_MANIFEST_DIR") {
            let inside = normalise(&self.file.package_root.join(rest.trim_start_matches('/')))
                .starts_with(normalise(self.file.package_root));
            !inside
        } else if let Some(rest) = target.strip_prefix("$OUT_DIR") {
            climbs(rest)
        } else if target.starts_with('$') || Path::new(target).is_absolute() {
            true
        } else {
            let dir = self.file.path.parent().unwrap_or(Path::new(""));
            !normalise(&dir.join(target)).starts_with(normalise(self.file.package_root))
        }
    }

    /// A macro body that is neither expressions nor statements (a
    /// `macro_rules!` body): its groups that are statements are visited,
    /// and the literals of the rest are checked.
    fn macro_tokens(&mut self, tokens: TokenStream) {
        let mut stack = vec![tokens.into_iter()];
        while let Some(iter) = stack.last_mut() {
            match iter.next() {
                Some(TokenTree::Group(g)) if is_doc_attribute(&g) => {
                    // `#[doc = "..."]`: a doc comment inside a macro body.
                }
                Some(TokenTree::Group(g)) => {
                    // Parsing again at every level of a body that does not
                    // parse would cost depth x size: only the outer levels
                    // are tried, deeper ones are read for literals.
                    let parsed = if stack.len() <= MAX_REPARSE_DEPTH {
                        syn::Block::parse_within.parse2(g.stream()).ok()
                    } else {
                        None
                    };
                    if let Some(stmts) = parsed {
                        self.deeper(|s| stmts.iter().for_each(|stmt| s.visit_stmt(stmt)));
                    } else if stack.len() < MAX_NESTING {
                        stack.push(g.stream().into_iter());
                    }
                }
                Some(TokenTree::Literal(l)) => self.check_lit(&Lit::new(l)),
                Some(_) => {}
                None => _ = stack.pop(),
            }
        }
    }

    /// Runs `f` one level deeper, unless that is too deep.
    fn deeper(&mut self, f: impl FnOnce(&mut Self)) {
        if self.depth < MAX_VISIT_DEPTH {
            self.depth += 1;
            f(self);
            self.depth -= 1;
        }
    }
}

/// `[doc = ...]`: the bracketed part of a doc comment in a token stream.
fn is_doc_attribute(group: &proc_macro2::Group) -> bool {
    group.delimiter() == Delimiter::Bracket
        && matches!(group.stream().into_iter().next(), Some(TokenTree::Ident(i)) if i == "doc")
}

impl<'ast> Visit<'ast> for Scanner<'_> {
    fn visit_expr(&mut self, node: &'ast Expr) {
        self.deeper(|s| visit::visit_expr(s, node));
    }

    fn visit_type(&mut self, node: &'ast syn::Type) {
        self.deeper(|s| visit::visit_type(s, node));
    }

    fn visit_pat(&mut self, node: &'ast syn::Pat) {
        self.deeper(|s| visit::visit_pat(s, node));
    }

    fn visit_item(&mut self, node: &'ast Item) {
        let (attrs, name) = item_attributes(node);
        self.attributes(attrs, name);
        self.scopes.push(Scope::default());
        self.deeper(|s| visit::visit_item(s, node));
        self.scopes.pop();
    }

    fn visit_impl_item_fn(&mut self, node: &'ast syn::ImplItemFn) {
        self.attributes(&node.attrs, Some(&node.sig.ident));
        visit::visit_impl_item_fn(self, node);
    }

    // Attributes are read with their items (and doc comments are not code).
    fn visit_attribute(&mut self, _: &'ast Attribute) {}

    fn visit_stmt(&mut self, node: &'ast syn::Stmt) {
        self.scopes.push(Scope::default());
        self.deeper(|s| visit::visit_stmt(s, node));
        let scope = self.scopes.pop().unwrap_or_default();
        if let Some(at) = scope.xor_line
            && scope.decodes
        {
            self.obfuscated("string-arithmetic", "xor".to_string(), at);
        }
        self.mark(|parent| {
            parent.xor_line = parent.xor_line.or(scope.xor_line);
            parent.decodes |= scope.decodes;
        });
    }

    fn visit_expr_call(&mut self, node: &'ast syn::ExprCall) {
        if let Expr::Path(p) = &*node.func
            && self.expr_path(p.qself.as_ref(), &p.path, Some(&node.args))
        {
            node.args.iter().for_each(|arg| self.visit_expr(arg));
        } else {
            visit::visit_expr_call(self, node);
        }
    }

    fn visit_expr_path(&mut self, node: &'ast syn::ExprPath) {
        self.expr_path(node.qself.as_ref(), &node.path, None);
        visit::visit_expr_path(self, node);
    }

    fn visit_expr_struct(&mut self, node: &'ast syn::ExprStruct) {
        self.expr_path(node.qself.as_ref(), &node.path, None);
        visit::visit_expr_struct(self, node);
    }

    fn visit_expr_method_call(&mut self, node: &'ast syn::ExprMethodCall) {
        let api = "std::net::ToSocketAddrs::to_socket_addrs";
        if node.method == "to_socket_addrs"
            && let Some(m) = self.catalogue.classify_path(api)
        {
            let (capability, target) = (m.capability.to_string(), m.api.to_string());
            let at = line(node.method.span());
            self.push(&capability, target, at, vec![("api", api.to_string())]);
        }
        visit::visit_expr_method_call(self, node);
    }

    fn visit_expr_cast(&mut self, node: &'ast syn::ExprCast) {
        if matches!(&*node.ty, syn::Type::Path(p) if p.qself.is_none() && p.path.is_ident("char")) {
            self.mark(|s| s.decodes = true);
            if let Some(kind) = arithmetic(&node.expr, 16) {
                let at = line(node.as_token.span);
                self.obfuscated("string-arithmetic", kind.to_string(), at);
            }
        }
        visit::visit_expr_cast(self, node);
    }

    fn visit_expr_binary(&mut self, node: &'ast syn::ExprBinary) {
        if let BinOp::BitXor(op) = &node.op
            && (int_literal(&node.left) || int_literal(&node.right))
        {
            self.mark(|s| s.xor_line = s.xor_line.or(Some(line(op.span))));
        }
        visit::visit_expr_binary(self, node);
    }

    fn visit_expr_array(&mut self, node: &'ast syn::ExprArray) {
        self.check_bytes(node.elems.iter(), line(node.bracket_token.span.open()));
        visit::visit_expr_array(self, node);
    }

    fn visit_expr_unsafe(&mut self, node: &'ast syn::ExprUnsafe) {
        let at = line(node.unsafe_token.span);
        self.push("unsafe", "block".to_string(), at, vec![]);
        visit::visit_expr_unsafe(self, node);
    }

    fn visit_signature(&mut self, node: &'ast syn::Signature) {
        if let Some(token) = &node.unsafety {
            self.push("unsafe", "fn".to_string(), line(token.span), vec![]);
        }
        visit::visit_signature(self, node);
    }

    fn visit_item_impl(&mut self, node: &'ast syn::ItemImpl) {
        if let Some(token) = &node.unsafety {
            self.push("unsafe", "impl".to_string(), line(token.span), vec![]);
        }
        visit::visit_item_impl(self, node);
    }

    fn visit_item_trait(&mut self, node: &'ast syn::ItemTrait) {
        if let Some(token) = &node.unsafety {
            self.push("unsafe", "trait".to_string(), line(token.span), vec![]);
        }
        visit::visit_item_trait(self, node);
    }

    fn visit_item_foreign_mod(&mut self, node: &'ast syn::ItemForeignMod) {
        let abi = node
            .abi
            .name
            .as_ref()
            .map_or("C".to_string(), syn::LitStr::value);
        // One observation per ABI, the functions as evidence: libc alone
        // declares hundreds.
        for item in &node.items {
            let Some(name) = foreign_name(item) else {
                continue;
            };
            // `#[link_name = "connect"] fn innocent();` calls `connect`.
            let attrs: &[Attribute] = match item {
                syn::ForeignItem::Fn(f) => &f.attrs,
                syn::ForeignItem::Static(s) => &s.attrs,
                _ => &[],
            };
            let linked = attrs.iter().find_map(|a| match &a.meta {
                Meta::NameValue(nv) if nv.path.is_ident("link_name") => lit_str(Some(&nv.value)),
                _ => None,
            });
            let mut extra = vec![("function", linked.clone().unwrap_or(name.to_string()))];
            if linked.is_some() {
                extra.push(("declared-as", name.to_string()));
            }
            self.push("ffi", format!("extern \"{abi}\""), line(name.span()), extra);
        }
    }

    fn visit_lit(&mut self, node: &'ast Lit) {
        self.check_lit(node);
    }

    fn visit_macro(&mut self, mac: &'ast Macro) {
        let name = mac.path.segments.last().map(|s| s.ident.to_string());
        let name = name.unwrap_or_default();
        let at = line(mac.bang_token.span);
        match name.as_str() {
            "env" | "option_env" => {
                let first = args(mac).and_then(|a| lit_str(a.first()));
                let target = first.unwrap_or_else(|| DYNAMIC.to_string());
                self.push("env.read", target, at, vec![("api", format!("{name}!"))]);
            }
            "include" | "include_str" | "include_bytes" => {
                self.include(mac, format!("{name}!"), at)
            }
            "asm" | "global_asm" | "naked_asm" => self.push("asm", name, at, vec![]),
            _ => self.deeper(|s| {
                if let Some(exprs) = args(mac) {
                    if name == "vec" {
                        s.check_bytes(exprs.iter(), at);
                    }
                    exprs.iter().for_each(|e| s.visit_expr(e));
                } else if let Ok(stmts) = mac.parse_body_with(syn::Block::parse_within) {
                    stmts.iter().for_each(|stmt| s.visit_stmt(stmt));
                } else {
                    s.macro_tokens(mac.tokens.clone());
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(src: &str) -> Result<Vec<Finding>, SourceError> {
        let file = SourceFile {
            display: "src/lib.rs",
            path: Path::new("/pkg/src/lib.rs"),
            package_root: Path::new("/pkg"),
            phase: Phase::BuildScript,
        };
        scan_source(&file, src.as_bytes(), &Catalogue::builtin())
    }

    /// Findings as `capability target @line key=value...`, sorted.
    fn found(src: &str) -> Vec<String> {
        let mut lines: Vec<String> = (scan(src).unwrap().into_iter())
            .map(|f| {
                assert_eq!((f.method, f.phase), (Method::Source, Phase::BuildScript));
                let mut text = format!("{} {}", f.capability, f.target);
                for (key, value) in &f.evidence {
                    match key.as_str() {
                        "location" => text += &format!(" @{}", &value["src/lib.rs:".len()..]),
                        _ => text += &format!(" {key}={value}"),
                    }
                }
                text
            })
            .collect();
        lines.sort();
        lines
    }

    fn expect(src: &str, expected: &[&str]) {
        let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(found(src), expected, "{src}");
    }

    #[test]
    fn calls_resolve_through_uses_and_the_catalogue() {
        let src = r#"use std::fs;
use std::process::Command;
use std::net::{TcpStream, UdpSocket as U};
fn main() {
    let _ = fs::read_to_string(p);
    Command::new(program);
    TcpStream::connect(a);
    U::bind(b);
    std::fs::write(p, q);
    ::std::fs::remove_file(p);
    libc::connect(0, 0, 0);
    tokio::net::TcpStream::connect(a);
    addr.to_socket_addrs();
    let x = vec.len() + fs::File::metadata(f);
}
mod m { pub fn f() { read(p); super::fs::read(p); } }
"#;
        expect(
            src,
            &[
                "fs.read std::fs::read_to_string @5 api=std::fs::read_to_string",
                "process.exec std::process::Command @6 api=std::process::Command::new",
                "net.connect std::net::TcpStream::connect @7 api=std::net::TcpStream::connect",
                "net.connect std::net::UdpSocket::bind @8 api=std::net::UdpSocket::bind",
                "fs.write std::fs::write @9 api=std::fs::write",
                "fs.delete std::fs::remove_file @10 api=std::fs::remove_file",
                "net.connect connect @11 api=libc::connect",
                "net.connect tokio::net::TcpStream::connect @12 api=tokio::net::TcpStream::connect",
                "net.dns std::net::ToSocketAddrs::to_socket_addrs @13 api=std::net::ToSocketAddrs::to_socket_addrs",
            ],
        );
    }

    #[test]
    fn glob_imports_apply_to_calls_not_to_variables() {
        let src = "use std::fs::*;\nuse libc::*;\nfn f() {\n    read_to_string(p);\n    let read = 1;\n    g(read);\n    connect(1, 2, 3);\n}\n";
        expect(
            src,
            &[
                "fs.read std::fs::read_to_string @4 api=std::fs::read_to_string",
                "net.connect connect @7 api=libc::connect",
            ],
        );
    }

    #[test]
    fn environment_variable_names() {
        let src = "use std::env;\nuse std::env::var as getvar;\nfn f(k: &str) {\n    env::var(\"HOME\");\n    std::env::var_os(k);\n    getvar(\"TOKEN\");\n    let _ = env!(\"CARGO_PKG_NAME\");\n    let _ = option_env!(\"CI\");\n    for _ in env::vars() {}\n}\n";
        expect(
            src,
            &[
                "env.read HOME @4 api=std::env::var",
                "env.read <dynamic> @5 api=std::env::var_os",
                "env.read TOKEN @6 api=std::env::var",
                "env.read CARGO_PKG_NAME @7 api=env!",
                "env.read CI @8 api=option_env!",
                "env.read std::env::vars @9 api=std::env::vars",
            ],
        );
    }

    #[test]
    fn includes_and_whether_they_leave_the_package() {
        let src = r#"const A: &[u8] = include_bytes!("../secret.txt");
const B: &str = include_str!("../../etc/passwd");
const C: &str = include_str!("/etc/hosts");
include!(concat!(env!("OUT_DIR"), "/x.rs"));
const D: &str = include_str!(path!());
"#;
        expect(
            src,
            &[
                "fs.read ../secret.txt @1 api=include_bytes!",
                "fs.read ../../etc/passwd @2 api=include_str! leaves-package=true",
                "fs.read /etc/hosts @3 api=include_str! leaves-package=true",
                "fs.read $OUT_DIR/x.rs @4 api=include!",
                "fs.read <dynamic> @5 api=include_str!",
            ],
        );
    }

    #[test]
    fn extern_blocks_and_native_links() {
        let src = r#"#[link(name = "z", kind = "static")]
extern "C" {
    fn inflate(x: i32) -> i32;
    static mut errno: i32;
}
unsafe extern "system" {
    pub safe fn GetTickCount() -> u32;
}
extern {
    fn bare();
}
"#;
        expect(
            src,
            &[
                "link.native z @1 kind=static",
                "ffi extern \"C\" @3 function=inflate",
                "ffi extern \"C\" @4 function=errno",
                "ffi extern \"system\" @7 function=GetTickCount",
                "ffi extern \"C\" @10 function=bare",
            ],
        );
    }

    #[test]
    fn unsafe_asm_and_link_attributes() {
        let src = r#"unsafe fn a() { // SAFETY: scanner input, never compiled or run.
    unsafe { core::arch::asm!("nop") }
}
unsafe impl Send for X {}
unsafe trait T { unsafe fn m(); }
global_asm!(".globl x");
#[unsafe(naked)]
extern "C" fn n() { naked_asm!("ret") }
#[no_mangle]
pub extern "C" fn b() {}
#[unsafe(no_mangle)]
pub extern "C" fn c() {}
#[export_name = "x"]
fn d() {}
#[unsafe(export_name = "y")]
fn e() {}
#[link_section = ".init_array"]
#[used]
static INIT: fn() = b;
#[unsafe(link_section = ".ctors")]
static F: u8 = 0;
"#;
        expect(
            src,
            &[
                "unsafe fn @1",
                "unsafe block @2",
                "asm asm @2",
                "unsafe impl @4",
                "unsafe trait @5",
                "unsafe fn @5",
                "asm global_asm @6",
                "asm naked_asm @8",
                "link.export b @9",
                "link.export c @11",
                "link.export x @13",
                "link.export y @15",
                "link.section .init_array @17",
                "link.used INIT @18",
                "link.section .ctors @20",
            ],
        );
    }

    #[test]
    fn obfuscation_in_literals() {
        let long = "a ".repeat(300);
        let src = format!(
            r#"const U: &str = "https://evil.example/x";
const I: [&str; 3] = ["10.0.0.1", "[::1]:8080", "go to 192.168.1.20:80 now"];
const B: &str = "YmFzZTY0IGVuY29kZWQgcGF5bG9hZCBoZXJlISE=";
const H: &[u8] = b"0123456789ABCDEFabcdef0123456789ABCDEFab";
const L: &str = "{long}";
const N: [&str; 8] = ["see the docs", "1.2.3", "std::fs", "256.1.1.1", "::",
    "YmFzZTY0IGVuY29kZWQgcGF5bG9hZCBoZXJlISE", "0123456789abcdef0123456789abcde",
    "This sentence is prose and longer than forty characters"];
const M: &str = "{short}";
fn f() {{ println!("{{}}", c"ws://x"); }}
"#,
            short = "a ".repeat(250),
        );
        expect(
            &src,
            &[
                "obfuscation url @1 value=https://evil.example/x",
                "obfuscation ip-address @2 value=10.0.0.1",
                "obfuscation base64 @3 value=YmFzZTY0IGVuY29kZWQgcGF5... (40 chars)",
                "obfuscation hex @4 value=0123456789ABCDEFabcdef01... (40 chars)",
                "obfuscation long-string @5 value=a a a a a a a a a a a a ... (600 chars)",
                "obfuscation url @10 value=ws://x",
            ],
        );
        let url = format!("\"http://{}\"", "x".repeat(200));
        let value = format!("http://{}...", "x".repeat(113));
        assert_eq!(
            found(&format!("const U: &str = {url};")),
            [format!("obfuscation url @1 value={value}")]
        );
        expect(
            "const I: &str = \"go to 192.168.1.20:80\";",
            &["obfuscation ip-address @1 value=192.168.1.20"],
        );
    }

    #[test]
    fn strings_built_from_bytes_and_arithmetic() {
        let src = r#"const A: [u8; 8] = [104, 116, 116, 112, 58, 47, 47, 120];
fn f(data: &[u8], x: u8) {
    let v = vec![0x63, 0x75, 0x72, 0x6c, 0x20, 0x2d, 0x73, 0x4c];
    let s: String = data.iter().map(|b| (b ^ 0x5a) as char).collect();
    let t = String::from_utf8(data.iter().map(|b| b ^ 7).collect());
    let c = (x + 3) as char;
    let short = [104, 116, 116, 112, 58, 47, 47];
    let binary = [1, 2, 3, 4, 5, 6, 7, 8];
    let y = x ^ 3;
    let d = x as char;
    let e = (b'0' + x) as char;
}
"#;
        expect(
            src,
            &[
                "obfuscation string-from-bytes @1 value=http://x",
                "obfuscation string-from-bytes @3 value=curl -sL",
                "obfuscation string-arithmetic @4 value=xor",
                "obfuscation string-arithmetic @5 value=xor",
                "obfuscation string-arithmetic @6 value=arithmetic",
            ],
        );
    }

    #[test]
    fn one_obfuscation_finding_per_line_and_reason() {
        expect(
            "const A: [&str; 2] = [\"http://a\", \"http://b\"];",
            &["obfuscation url @1 value=http://a"],
        );
    }

    #[test]
    fn review_cases_are_found() {
        // `#!` then a comment then `[`: an inner attribute, not a shebang.
        expect(
            "#!/**/[allow(unused)] fn evil() { std::process::Command::new(\"sh\"); }",
            &["process.exec std::process::Command @1 api=std::process::Command::new"],
        );
        // A fragment made for `include!` in expression position.
        expect(
            "std::process::Command::new(\"sh\")\n    .status()",
            &["process.exec std::process::Command @1 api=std::process::Command::new"],
        );
        let src = r#"unsafe extern "C" {
    #[link_name = "connect"]
    fn innocent();
}
#[cfg_attr(all(), link_section = ".init_array")]
#[cfg_attr(any(), unsafe(no_mangle))]
static INIT: u8 = 0;
#[doc = include_str!("/home/u/.ssh/id_rsa")]
pub struct S;
const K: &str = include_str!(concat!(env!("HOME"), "/.ssh/id_rsa"));
const G: &str = include_str!(concat!(env!("OUT_DIR"), "/gen.rs"));
"#;
        expect(
            src,
            &[
                "ffi extern \"C\" @3 function=connect declared-as=innocent",
                "link.section .init_array @5",
                "link.export INIT @6",
                "fs.read /home/u/.ssh/id_rsa @8 api=include_str! leaves-package=true",
                "fs.read $HOME/.ssh/id_rsa @10 api=include_str! leaves-package=true",
                "fs.read $OUT_DIR/gen.rs @11 api=include_str!",
            ],
        );
    }

    #[test]
    fn deeply_nested_macro_bodies_are_read_once() {
        // A body that never parses (metavariables), 200 groups deep: the
        // outer levels are tried as statements, deeper ones only read for
        // literals (trying every level would cost depth x size).
        let mut body = String::from("$x \"http://deep.example/\"");
        for _ in 0..200 {
            body = format!("{{ $x {body} }}");
        }
        let src = format!("macro_rules! m {{ ($x:tt) => {body}; }}");
        let found = found(&src);
        assert_eq!(found, ["obfuscation url @1 value=http://deep.example/"]);
    }

    #[test]
    fn macro_bodies_are_scanned() {
        let src = r#"fn f() {
    println!("{}", std::fs::read_to_string("x").unwrap());
    my_macro! { let k = std::env::var("KEY"); }
    other!(@weird "https://a.example" => { "10.1.2.3" });
    assert!(matches!(x, Some(_)), "{}", std::process::Command::new("sh").status().is_ok());
}
macro_rules! m { ($x:expr) => { std::fs::remove_file("/tmp/x") }; }
macro_rules! documented { () => {
    /// See <https://docs.example/api> for 192.0.2.1.
    pub struct S;
}; }
"#;
        expect(
            src,
            &[
                "fs.read std::fs::read_to_string @2 api=std::fs::read_to_string",
                "env.read KEY @3 api=std::env::var",
                "obfuscation url @4 value=https://a.example",
                "obfuscation ip-address @4 value=10.1.2.3",
                "process.exec std::process::Command @5 api=std::process::Command::new",
                "fs.delete std::fs::remove_file @7 api=std::fs::remove_file",
            ],
        );
    }

    #[test]
    fn clean_code_has_no_findings() {
        let src = "//! Docs: https://example.com\n/// See https://docs.rs 127.0.0.1.\nfn add(a: u32, b: u32) -> u32 { a + b }\nstruct S { x: Vec<u8> }\nimpl S { fn len(&self) -> usize { self.x.len() } }\n";
        expect(src, &[]);
        // The scanner's own source parses and passes the shape check.
        assert!(scan(include_str!("source.rs")).is_ok());
        assert!(scan(include_str!("catalogue.rs")).is_ok());
    }

    #[test]
    fn bad_input_is_an_error() {
        let file = || "src/lib.rs".to_string();
        let f = SourceFile {
            display: "src/lib.rs",
            path: Path::new("/pkg/src/lib.rs"),
            package_root: Path::new("/pkg"),
            phase: Phase::BuildScript,
        };
        let error = scan_source(&f, b"fn f() {}\n\xff\xfe", &Catalogue::builtin());
        assert_eq!(error, Err(SourceError::NotUtf8 { file: file() }));
        match scan("fn f() {}\n\nfn g( {\n") {
            Err(SourceError::Parse { line, .. }) => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
        assert!(scan("\u{feff}#!/usr/bin/env run\nfn f() {}\n").is_ok());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let n = 100_000;
        let deep = format!("fn f() {{ let x = {}1{}; }}", "(".repeat(n), ")".repeat(n));
        match scan(&deep) {
            Err(SourceError::Parse {
                line: 1, message, ..
            }) => {
                assert_eq!(message, "nesting deeper than 256")
            }
            other => panic!("{other:?}"),
        }
        let n = 20_000;
        for (open, close) in [
            ("&", ""),
            ("!", ""),
            ("|| ", ""),
            ("Vec<", ">"),
            ("#[a] || ", ""),
        ] {
            let (open, close) = (open.repeat(n), close.repeat(n));
            let src = format!("fn f() {{ let x: {open}u8{close} = f({open}1); }}");
            let error = scan(&src).unwrap_err().to_string();
            assert!(error.contains("nesting too deep"), "{error}");
        }
        for chain in [".f()", " as u8", "?", "[0]", " + 1", " else if a {}"] {
            let src = format!("fn f() {{ x = if a {{}}{}; }}", chain.repeat(n));
            let error = scan(&src).unwrap_err().to_string();
            assert!(error.contains("nesting too deep"), "{error}");
        }
        // Just under the limits: parses on the scanner's own stack.
        let near = format!("type T = {}u8;", "&".repeat(MAX_COST - 8));
        assert!(scan(&near).is_ok());
        let near = format!("fn f() {{ {}1{}; }}", "(".repeat(250), ")".repeat(250));
        assert!(scan(&near).is_ok());
        // Brackets inside literals and comments do not count.
        let quoted = format!(
            "const A: &str = \"{0}\"; const B: &str = r#\"{0}\"#; const C: char = '('; // {0}\n/* {0} */",
            "(".repeat(300)
        );
        assert_eq!(scan(&quoted), Ok(vec![]));
        // Pages of doc comments are not nesting.
        let docs = "//! Text.\n".repeat(3000) + &"/// Text.\n".repeat(3000) + "fn f() {}";
        assert_eq!(scan(&docs), Ok(vec![]));
    }
}
