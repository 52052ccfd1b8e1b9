//! Canonical JSON lines: one event object per line, field names as in the schema.

use super::chunks::{Chunk, MAX_LINE};
use super::{FormatError, Refused};
use crate::commit::Batch;
use crate::event::Rejection;
use crate::validate::{RawEvent, Validator, is_token, parse_json_line, probe_key};
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

/// Parses and validates every line of a chunk: the records, numbers and reasons [`read`] and
/// [`Validator::validate`] give for the same lines, so chunks can be checked on every core. Fails, like
/// [`read`], on bytes that are not UTF-8.
pub fn validate_chunk(
    chunk: &Chunk,
    validator: &Validator,
    received_at: i64,
) -> Result<Batch, FormatError> {
    let mut batch = Batch {
        received_at,
        events: Vec::with_capacity(chunk.bytes.len() / 200),
        ..Batch::default()
    };
    let refuse = |line: u64, reason: String, source: Option<String>, seq: Option<u64>| Rejection {
        received_at,
        source: source.filter(|s| is_token(s)),
        source_seq: seq,
        line,
        reason,
    };
    for (line, len) in &chunk.too_long {
        batch.rejections.push(refuse(
            *line,
            format!("line is {len} bytes long (at most {MAX_LINE}): not an audit record, not read"),
            None,
            None,
        ));
    }
    for (line, bytes) in chunk.lines() {
        let text = std::str::from_utf8(bytes).map_err(|_| {
            FormatError::File(format!("line {line}: stream did not contain valid UTF-8"))
        })?;
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        match parse_line(text) {
            Err(r) => batch
                .rejections
                .push(refuse(line, r.reason, r.source, r.source_seq)),
            Ok(raw) => {
                let (source, seq) = (raw.source.clone(), raw.source_seq);
                match validator.validate(raw) {
                    Ok(e) => batch.events.push((line, e)),
                    Err(reason) => batch.rejections.push(refuse(line, reason, source, seq)),
                }
            }
        }
    }
    Ok(batch)
}
