//! Located diagnostics: every error a writer can act on names the file, the line and the key.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem found in the site's sources.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// Path relative to the site root, `/`-separated.
    pub file: PathBuf,
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// The offending key, when there is one (front matter or configuration).
    pub key: Option<String>,
    pub message: String,
}

impl Diagnostic {
    pub fn new(file: impl Into<PathBuf>, line: Option<usize>, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.into(),
            line,
            key: None,
            message: message.into(),
        }
    }

    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            if !self.message.contains(&format!("`{key}`")) {
                write!(f, "key `{key}`: ")?;
            }
        }
        write!(f, "{}", self.message)
    }
}

/// Several diagnostics as one error, so that `build` reports everything at once.
#[derive(Debug)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} error{} in the site's sources:",
            if n == 1 { "" } else { "s" }
        )?;
        for d in &self.0 {
            write!(f, "\n  {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// 1-based line number of a byte offset.
pub fn line_of_offset(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The key written on a `key = value` (TOML) or `key: value` (YAML) line, if any.
pub fn key_on_line(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?.trim_start();
    let l = l.strip_prefix("- ").unwrap_or(l);
    let end = l.find(['=', ':'])?;
    let key = l[..end].trim().trim_matches('"');
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    ok.then(|| key.to_string())
}

/// First line (1-based) where `key` is assigned at the start of a line.
pub fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            let l = l.strip_prefix("- ").unwrap_or(l);
            l.strip_prefix(key)
                .map(|rest| {
                    let rest = rest.trim_start();
                    rest.starts_with('=') || rest.starts_with(':')
                })
                .unwrap_or(false)
        })
        .map(|i| i + 1)
}

/// 1-based line of item `index` of the list under `key` — a YAML list (`offline:` then
/// `- date: ...` lines) or TOML tables (`[[offline]]`) — or of `field` inside that item when
/// it is written there; the line of `key` itself when the items cannot be told apart.
pub fn line_of_list_item(
    text: &str,
    key: &str,
    index: usize,
    field: Option<&str>,
) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let header = format!("[[{key}]]");
    let mut items: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim() == header)
        .map(|(i, _)| i)
        .collect();
    let toml = !items.is_empty();
    if !toml {
        let start = line_of_key(text, key)?;
        let mut item_indent = None;
        for (i, l) in lines.iter().enumerate().skip(start) {
            if l.trim().is_empty() {
                continue;
            }
            // The list ends at the next key of the front matter's top level.
            if indent(l) == 0 && !l.starts_with('-') {
                break;
            }
            if l.trim_start().starts_with("- ") && item_indent.is_none_or(|n| n == indent(l)) {
                item_indent = Some(indent(l));
                items.push(i);
            }
        }
        if items.is_empty() {
            return Some(start);
        }
    }
    let first = *items.get(index)?;
    let end = items.get(index + 1).copied().unwrap_or_else(|| {
        if toml {
            // A TOML table ends at the next table header.
            (first + 1..lines.len())
                .find(|&i| lines[i].trim_start().starts_with('['))
                .unwrap_or(lines.len())
        } else {
            lines.len()
        }
    });
    let Some(field) = field else {
        return Some(first + 1);
    };
    let within = lines[first..end].join("\n");
    Some(line_of_key(&within, field).map_or(first + 1, |l| first + l))
}

/// The unknown key named by serde's "unknown field `x`" message.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    Some(rest.split('`').next()?.to_string())
}

/// Turns a TOML error into a diagnostic; `first_line` is the file line of the text's line 1.
pub fn from_toml(file: &Path, text: &str, first_line: usize, err: &toml::de::Error) -> Diagnostic {
    let line = err.span().map(|s| line_of_offset(text, s.start));
    let message = err.message().trim().to_string();
    let key = unknown_field(&message).or_else(|| line.and_then(|l| key_on_line(text, l)));
    let mut d = Diagnostic::new(file, line.map(|l| l + first_line - 1), message);
    d.key = key;
    d
}

/// Turns a YAML error into a diagnostic; `first_line` is the file line of the text's line 1.
pub fn from_yaml(
    file: &Path,
    text: &str,
    first_line: usize,
    err: &serde_yaml::Error,
) -> Diagnostic {
    let line = err.location().map(|l| l.line());
    let mut message = err.to_string();
    // serde_yaml appends " at line X column Y"; the diagnostic carries the (file) line itself.
    if let Some(i) = message.find(" at line ") {
        message.truncate(i);
    }
    let key = unknown_field(&message).or_else(|| line.and_then(|l| key_on_line(text, l)));
    let line = line.or_else(|| key.as_deref().and_then(|k| line_of_key(text, k)));
    let mut d = Diagnostic::new(file, line.map(|l| l + first_line - 1), message);
    d.key = key;
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_lines() {
        let t = "title = \"x\"\ngoal = \"many\"\n";
        assert_eq!(line_of_offset(t, 14), 2);
        assert_eq!(key_on_line(t, 2).as_deref(), Some("goal"));
        assert_eq!(line_of_key(t, "goal"), Some(2));
        assert_eq!(line_of_key("a: 1\ngoal: 3\n", "goal"), Some(2));
    }
}
