//! Where a manifest problem is: `file:line:col` and the key, found in the text (columns count
//! characters, as editors do), and the problems' display.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// `text` as it can be shown on a terminal: control characters (a NUL byte, an escape) are
/// written as Rust escapes (`\0`, `\u{1b}`), everything else as it is.
pub(super) fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_debug().to_string(),
            false => c.to_string(),
        })
        .collect()
}

/// One validation problem, already located.
#[derive(Debug, Clone)]
pub struct Problem {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if let Some(key) = &self.key {
            write!(f, "`{}`: ", printable(key))?;
        }
        f.write_str(&self.message)
    }
}

/// Everything wrong with a manifest, one problem per line.
#[derive(Debug, Clone)]
pub struct ManifestError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self
            .problems
            .first()
            .map(|p| p.file.display().to_string())
            .unwrap_or_default();
        write!(f, "{file} is not a valid manifest:")?;
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestError {}

/// The manifest's text, or the place of its first byte that is not UTF-8 (TOML is UTF-8 text).
pub(super) fn utf8_text<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, ManifestError> {
    std::str::from_utf8(bytes).map_err(|err| {
        let valid = &bytes[..err.valid_up_to()];
        let valid = std::str::from_utf8(valid).expect("the bytes before the first bad one");
        let (line, column) = line_column(valid, valid.len());
        ManifestError {
            problems: vec![Problem {
                file: path.to_path_buf(),
                line,
                column,
                key: None,
                message: format!(
                    "byte 0x{:02X} is not valid UTF-8: a TOML file is UTF-8 text; re-save it \
                     as UTF-8 (or fix the characters from here on)",
                    bytes[err.valid_up_to()]
                ),
            }],
        }
    })
}

/// The 1-based line and column (in characters, as editors count them) of byte `offset`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Finds where a key sits in the manifest text, for error messages.
pub(super) struct Locator<'a> {
    path: &'a Path,
    text: &'a str,
    table: Option<toml::de::DeTable<'a>>,
}

impl<'a> Locator<'a> {
    pub(super) fn new(path: &'a Path, text: &'a str) -> Self {
        let table = toml::de::DeTable::parse(text).ok().map(|t| t.into_inner());
        Locator { path, text, table }
    }

    /// The span of the deepest key of `path` found in the file (the key itself, not its value).
    fn span_of(&self, path: &[&str]) -> Option<Range<usize>> {
        let mut table = self.table.as_ref()?;
        let mut span = None;
        for segment in path {
            let (key, value) = table.get_key_value(*segment)?;
            span = Some(key.span());
            match value.get_ref().as_table() {
                Some(inner) => table = inner,
                None => break,
            }
        }
        span
    }

    pub(super) fn problem(&self, path: &[&str], message: &str) -> Problem {
        // Fall back to the closest enclosing key the file spells out.
        let span = (1..=path.len())
            .rev()
            .find_map(|len| self.span_of(&path[..len]));
        self.problem_at(span, Some(path.join(".")), message)
    }

    pub(super) fn problem_at(
        &self,
        span: Option<Range<usize>>,
        key: Option<String>,
        message: &str,
    ) -> Problem {
        let mut offset = span.map_or(0, |s| s.start).min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let (line, column) = line_column(self.text, offset);
        Problem {
            file: self.path.to_path_buf(),
            line,
            column,
            key,
            message: message.to_owned(),
        }
    }
}
