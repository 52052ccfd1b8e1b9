//! Canonical JSON lines: one event object per line, field names as in the schema.

use super::{FormatError, Refused};
use crate::validate::{RawEvent, parse_json_line, probe_key};
use std::io::{BufRead, BufReader, Read};

/// Reads JSON lines; blank lines are skipped but still counted, so numbers match the file's lines.
pub fn read(
    input: impl Read,
    mut f: impl FnMut(u64, Result<RawEvent, Refused>),
) -> Result<(), FormatError> {
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut line = String::new();
    let mut n = 0u64;
    loop {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .map_err(|e| FormatError::File(format!("line {}: {e}", n + 1)))?;
        if read == 0 {
            return Ok(());
        }
        n += 1;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        f(n, parse_line(text));
    }
}

/// Parses one line, recovering the idempotency key of a refused record when possible.
pub fn parse_line(text: &str) -> Result<RawEvent, Refused> {
    parse_json_line(text).map_err(|reason| {
        let (source, source_seq) = probe_key(text);
        Refused {
            reason,
            source,
            source_seq,
        }
    })
}
