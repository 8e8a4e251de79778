//! Configuration errors and where they point: every error names its field;
//! a value that came from the TOML file also carries `file:line:column`,
//! taken from the spans `toml`'s own parser records for each key.
use std::borrow::Cow;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Why a configuration was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// An error at a known place in a TOML file.
    #[error("{file}:{line}:{column}: {field}: {message}")]
    InFile {
        /// The file as named on the command line.
        file: String,
        /// 1-based line of the offending key.
        line: usize,
        /// 1-based column of the offending key.
        column: usize,
        /// Dotted field path, e.g. `timing.heartbeat_ms`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// An error in a value given on the command line (or a missing field).
    #[error("{field}: {message}")]
    Field {
        /// Dotted field path, e.g. `timing.heartbeat_ms`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The file named by `--config` could not be read.
    #[error("cannot read config file {file}: {message}")]
    Read {
        /// The file as named on the command line.
        file: String,
        /// The I/O error.
        message: String,
    },
}

pub(super) fn field_error(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Where a merged field came from, for error messages: the TOML file's
/// name and text, if there was one.
pub(super) struct Origin<'a> {
    pub(super) file: Option<(&'a str, &'a str)>,
}

impl Origin<'_> {
    /// Error for `field`: with line:column if the field was set in the file
    /// and no flag overrode it (`from_file`).
    pub(super) fn error(
        &self,
        field: &str,
        from_file: bool,
        message: impl Into<String>,
    ) -> ConfigError {
        let message = message.into();
        if from_file
            && let Some((file, text)) = self.file
            && let Some(offset) = key_offset(text, field)
        {
            let (line, column) = line_column(text, offset);
            return ConfigError::InFile {
                file: file.to_owned(),
                line,
                column,
                field: field.to_owned(),
                message,
            };
        }
        field_error(field, message)
    }
}

/// Byte offset of the key `path` ("timing.heartbeat_ms", "peers.n2") in a
/// TOML text, from the parser's key spans: the key inside its table, or the
/// table's own key when the field is not in it. Only the first `.` splits
/// (peer names may contain dots).
fn key_offset(text: &str, path: &str) -> Option<usize> {
    let document = DeTable::parse(text).ok()?;
    let root = document.get_ref();
    let Some((section, key)) = path.split_once('.') else {
        return entry(root, path).map(|(name, _)| name.span().start);
    };
    let (section_name, section_value) = entry(root, section)?;
    let in_section = match section_value.get_ref() {
        DeValue::Table(table) => entry(table, key).map(|(name, _)| name.span().start),
        _ => None,
    };
    Some(in_section.unwrap_or(section_name.span().start))
}

/// The entry of `table` whose key is `name`.
fn entry<'t, 'i>(
    table: &'t DeTable<'i>,
    name: &str,
) -> Option<(&'t Spanned<Cow<'i, str>>, &'t Spanned<DeValue<'i>>)> {
    table
        .iter()
        .find(|(candidate, _)| candidate.get_ref() == name)
}

/// Converts a byte offset into a 1-based line and column.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |rest| rest.chars().count())
        + 1;
    (line, column)
}
