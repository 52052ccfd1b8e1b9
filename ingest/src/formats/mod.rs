//! Reading source systems' log files into [`RawEvent`]s: canonical JSON lines, or delimited exports
//! described by a mapping file (column names, date format and codes differ per source; no code per source).

pub mod chunks;
pub mod jsonl;
pub mod mapping;
pub mod otlp;

use crate::validate::RawEvent;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A record that could not even be read into the schema, with whatever key could be recovered.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub reason: String,
    pub source: Option<String>,
    pub source_seq: Option<u64>,
}

/// Errors that stop a whole file (as opposed to one record).
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mapping {path}: {reason}")]
    Mapping { path: PathBuf, reason: String },
    #[error("{0}")]
    File(String),
    #[error(
        "unknown format `{0}`: use `jsonl`, or the name of a mapping file (formats/NAME.toml) or --mapping FILE"
    )]
    Unknown(String),
}

/// How to read a file.
#[derive(Debug, Clone)]
pub enum Format {
    /// One JSON object per line, in the canonical schema.
    JsonLines,
    /// A delimited export read through a mapping file.
    Mapped(Box<mapping::Mapping>),
}

impl Format {
    /// Resolves a format name: `jsonl`, or a mapping file found as `DIR/NAME.toml` in one of `search_dirs`.
    pub fn resolve(name: &str, search_dirs: &[PathBuf]) -> Result<Format, FormatError> {
        if matches!(name, "jsonl" | "json" | "ndjson") {
            return Ok(Format::JsonLines);
        }
        for dir in search_dirs {
            let candidate = dir.join(format!("{name}.toml"));
            if candidate.is_file() {
                return Format::from_mapping_file(&candidate);
            }
        }
        Err(FormatError::Unknown(name.to_owned()))
    }

    /// A mapped format from an explicit mapping file.
    pub fn from_mapping_file(path: &Path) -> Result<Format, FormatError> {
        let text = std::fs::read_to_string(path).map_err(|source| FormatError::Io {
            path: path.to_owned(),
            source,
        })?;
        let m = mapping::Mapping::parse(&text).map_err(|reason| FormatError::Mapping {
            path: path.to_owned(),
            reason,
        })?;
        Ok(Format::Mapped(Box::new(m)))
    }

    /// Reads every record of `input`, calling `f(record_number, record)` for each (1-based).
    pub fn read(
        &self,
        input: impl Read,
        f: impl FnMut(u64, Result<RawEvent, Refused>),
    ) -> Result<(), FormatError> {
        match self {
            Format::JsonLines => jsonl::read(input, f),
            Format::Mapped(m) => m.read(input, f),
        }
    }
}
