//! Reading the documents users hand us (manifests, policies): TOML or JSON
//! into a typed value, with errors that name the file, the key and the line,
//! so a typo in a committed file is fixed in one look.

use std::path::Path;

use serde::de::DeserializeOwned;

/// A document that could not be read or does not have the expected shape.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}{line}: {key}{message}")]
    Invalid {
        path: String,
        /// `:LINE` when known.
        line: String,
        /// "at `key.path`: " when known.
        key: String,
        message: String,
    },
}

/// Reads `path` and parses it: JSON when it starts with `{`, else TOML.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<T, DocumentError> {
    let text = std::fs::read_to_string(path).map_err(|source| DocumentError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses `text` (JSON when it starts with `{`, else TOML); `name` is what
/// errors call the document.
pub fn parse<T: DeserializeOwned>(text: &str, name: &str) -> Result<T, DocumentError> {
    let invalid = |line: Option<usize>, key: String, message: String| DocumentError::Invalid {
        path: name.to_string(),
        line: line.map(|l| format!(":{l}")).unwrap_or_default(),
        key: if key.is_empty() || key == "." {
            String::new()
        } else {
            format!("at `{key}`: ")
        },
        message,
    };
    if text.trim_start().starts_with('{') {
        let mut de = serde_json::Deserializer::from_str(text);
        return serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let line = e.inner().line();
            invalid(
                (line > 0).then_some(line),
                e.path().to_string(),
                strip_position(&e.inner().to_string()),
            )
        });
    }
    let de = toml::Deserializer::parse(text).map_err(|e| {
        invalid(
            line_of(text, e.span()),
            String::new(),
            e.message().to_string(),
        )
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        invalid(
            line_of(text, e.inner().span()),
            e.path().to_string(),
            e.inner().message().to_string(),
        )
    })
}

/// The 1-based line of a byte span's start.
fn line_of(text: &str, span: Option<std::ops::Range<usize>>) -> Option<usize> {
    let start = span?.start.min(text.len());
    Some(
        text.as_bytes()[..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1,
    )
}

/// serde_json appends " at line L column C"; the line is reported apart.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        name: String,
        size: u32,
    }

    #[test]
    fn errors_name_the_file_the_key_and_the_line() {
        let error = parse::<Doc>(
            "[[items]]\nname = \"a\"\nsize = 1\n\n[[items]]\nname = \"b\"\nsize = \"big\"\n",
            "x.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("x.toml:7: at `items[1].size`: "),
            "{error}"
        );
        let error = parse::<Doc>("[[items]]\nname = \"a\"\nsize = 1\ncolour = 2\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(error.contains("colour"), "{error}");
        let error = parse::<Doc>("[[items]\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("x.toml:1: "), "{error}");
        let error = parse::<Doc>("{\"items\": [{\"name\": \"a\"}]}", "x.json")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("x.json:1: at `items[0]`: missing field `size`"),
            "{error}"
        );
    }
}
