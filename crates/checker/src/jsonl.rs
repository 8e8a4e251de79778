//! JSON Lines I/O shared by histories and node event logs.
//!
//! One JSON value per line; blank lines are skipped. Parse errors carry the
//! 1-based line number so a person can open the file at the right place.
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a JSONL file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    /// The file could not be opened or created.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not valid JSON for the record type.
    #[error("{origin}:{line}: {source}")]
    Parse {
        /// The file path, or `<reader>` when reading from a stream.
        origin: String,
        /// 1-based line number.
        line: usize,
        /// What serde_json objected to.
        #[source]
        source: serde_json::Error,
    },
    /// Reading the stream failed midway.
    #[error("{origin}: read failed: {source}")]
    Read {
        /// The file path or stream label.
        origin: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Writing or flushing failed.
    #[error("{origin}: write failed: {source}")]
    Write {
        /// The file path or stream label.
        origin: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl JsonlError {
    /// The 1-based line of a parse error.
    pub fn line(&self) -> Option<usize> {
        match self {
            JsonlError::Parse { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// Reads every non-blank line of `reader` as one `T`.
pub fn read_from<T: DeserializeOwned>(
    reader: impl Read,
    origin: &str,
) -> Result<Vec<T>, JsonlError> {
    let mut out = Vec::new();
    let mut reader = BufReader::new(reader);
    let mut line = String::new();
    let mut number = 0usize;
    loop {
        line.clear();
        number += 1;
        let read = reader
            .read_line(&mut line)
            .map_err(|source| JsonlError::Read {
                origin: origin.to_string(),
                source,
            })?;
        if read == 0 {
            return Ok(out);
        }
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let value = serde_json::from_str(text).map_err(|source| JsonlError::Parse {
            origin: origin.to_string(),
            line: number,
            source,
        })?;
        out.push(value);
    }
}

/// Writes one compact JSON object per line.
pub fn write_to<T: Serialize>(
    writer: impl Write,
    items: &[T],
    origin: &str,
) -> Result<(), JsonlError> {
    let to_err = |source: std::io::Error| JsonlError::Write {
        origin: origin.to_string(),
        source,
    };
    let mut writer = BufWriter::new(writer);
    for item in items {
        serde_json::to_writer(&mut writer, item).map_err(|e| to_err(e.into()))?;
        writer.write_all(b"\n").map_err(to_err)?;
    }
    writer.flush().map_err(to_err)
}

/// Reads the JSONL file at `path`; errors name the path and line.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, JsonlError> {
    let file = std::fs::File::open(path).map_err(|source| JsonlError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_from(file, &path.display().to_string())
}

/// Creates (or truncates) `path` and writes one line per item.
pub fn save<T: Serialize>(path: &Path, items: &[T]) -> Result<(), JsonlError> {
    let file = std::fs::File::create(path).map_err(|source| JsonlError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    write_to(file, items, &path.display().to_string())
}
