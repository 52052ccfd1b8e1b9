//! `POST /v1/events`: a collector pushes a batch of NDJSON events for its source. The answer comes once
//! the accepted events are durable (write-ahead log, fsync with group commit). While the write-ahead
//! log's unsealed backlog is over its limit a batch is refused whole (503 with `Retry-After`).

use crate::error::ApiError;
use crate::server::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use iris_access::Role;
use iris_ingest::commit::{Batch, BatchOutcome, CommitError};
use iris_ingest::formats::{Refused, jsonl};
use iris_ingest::{RawEvent, Rejection, Validator};
use serde::Serialize;
use std::sync::Arc;

/// Largest batch body accepted.
pub const MAX_BATCH_BYTES: usize = 16 << 20;
/// Most records in one batch.
pub const MAX_BATCH_LINES: usize = 50_000;
/// How much of an oversized batch is still read (and dropped) so the collector gets the JSON reason
/// instead of a connection reset; past this the connection is closed.
const DRAIN_LIMIT: usize = 4 * MAX_BATCH_BYTES;

/// One refused line in the answer.
#[derive(Serialize)]
pub struct RejectedLine {
    pub line: u64,
    pub reason: String,
}

/// The answer to a batch.
#[derive(Serialize)]
pub struct IngestAnswer {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: Vec<RejectedLine>,
}

impl From<BatchOutcome> for IngestAnswer {
    fn from(o: BatchOutcome) -> Self {
        IngestAnswer {
            accepted: o.accepted,
            duplicates: o.duplicates,
            rejected: o
                .rejected
                .into_iter()
                .map(|(line, reason)| RejectedLine { line, reason })
                .collect(),
        }
    }
}

/// Handles a batch.
pub async fn post_events(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestAnswer>, ApiError> {
    let source = collector_source(&state, &headers)?;
    let body = read_batch(body).await?;
    let collector = source.clone();
    let batch = tokio::task::spawn_blocking(move || parse_batch(&body, &collector))
        .await
        .map_err(|e| ApiError::unavailable(format!("batch parsing failed: {e}")))??;
    let outcome = commit_batch(&state, &source, batch, "ndjson").await?;
    Ok(Json(outcome.into()))
}

/// The source a request's collector token is bound to; any other role is refused.
pub fn collector_source(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    let who = state.authenticate(headers)?;
    if who.role != Role::Collector {
        return Err(ApiError::denied(
            "only a collector token may push events (iris token --role collector --source S)",
            vec![format!("role:{}", who.role)],
        ));
    }
    Ok(who.source.clone().unwrap_or_default())
}

/// The one way a collector's batch becomes durable, whatever its wire format (`protocol`, a
/// metrics label): sequenced and written through the group commit, answered only once synced.
pub async fn commit_batch(
    state: &AppState,
    source: &str,
    batch: Batch,
    protocol: &'static str,
) -> Result<BatchOutcome, ApiError> {
    let Some(committer) = &state.committer else {
        return Err(ApiError::unavailable("this server does not accept events"));
    };
    let started = std::time::Instant::now();
    let outcome = committer.commit(batch).await.map_err(|e| match e {
        full @ CommitError::Backlog { .. } => {
            state.sealer_wakeup.notify_one();
            backlog_refusal(&full)
        }
        e => ApiError::unavailable(e.to_string()),
    })?;
    state
        .metrics
        .ingested(protocol, source, &outcome, started.elapsed());
    if outcome.accepted > 0 {
        state.sealer_wakeup.notify_one();
    }
    let accepted = usize::try_from(outcome.accepted).unwrap_or(usize::MAX);
    crate::guard::note(|d| d.outcome = Some(Ok(Some(accepted))));
    Ok(outcome)
}

/// Seconds a collector is asked to wait when the backlog is full (sealing frees a segment at a time).
pub const RETRY_AFTER_SECS: u64 = 1;

/// The answer when the write-ahead log's unsealed backlog is over its limit: 503 Service Unavailable
/// with `Retry-After` — the server as a whole is briefly overloaded, whichever collector asks (429
/// would blame this client's own rate) — and the reason; nothing of the batch was stored.
fn backlog_refusal(why: &CommitError) -> ApiError {
    ApiError::retry_later(
        format!("{why} (retry after {RETRY_AFTER_SECS} s: the sealer is catching up)"),
        RETRY_AFTER_SECS,
    )
}

/// Reads a batch body, refusing one over [`MAX_BATCH_BYTES`] with a JSON reason.
pub async fn read_batch(body: Body) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("could not read the batch: {e}")))?;
        total += chunk.len();
        if total <= MAX_BATCH_BYTES {
            buf.extend_from_slice(&chunk);
        } else if total > DRAIN_LIMIT {
            break;
        }
    }
    if total > MAX_BATCH_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "batch is larger than {} MiB: split it",
                MAX_BATCH_BYTES >> 20
            ),
        ));
    }
    Ok(buf.freeze())
}

/// Parses and validates every line of a batch for `source`.
pub fn parse_batch(body: &[u8], source: &str) -> Result<Batch, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad_request(format!("batch is not UTF-8: {e}")))?;
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
    if lines > MAX_BATCH_LINES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("batch of {lines} records is larger than {MAX_BATCH_LINES}: split it"),
        ));
    }
    let received_at = chrono::Utc::now().timestamp_micros();
    let validator = Validator::now();
    let mut batch = Batch {
        received_at,
        ..Batch::default()
    };
    for (i, line) in text.lines().enumerate() {
        let n = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        admit(
            &mut batch,
            &validator,
            source,
            n,
            jsonl::parse_line(line.trim()),
        );
    }
    Ok(batch)
}

/// Validates one record read from a collector's batch (record `n`, 1-based) and files it in the
/// batch as an event or a rejection — for any wire format, so every format refuses alike. A
/// refused record's number counts for its source only if it claims the collector's own source.
pub fn admit(
    batch: &mut Batch,
    validator: &Validator,
    source: &str,
    n: u64,
    record: Result<RawEvent, Refused>,
) {
    let received_at = batch.received_at;
    let refuse = |reason: String, seq: Option<u64>| Rejection {
        received_at,
        source: Some(source.to_owned()),
        source_seq: seq,
        line: n,
        reason,
    };
    match record {
        Err(r) => {
            let seq = if r.source.as_deref() == Some(source) {
                r.source_seq
            } else {
                None
            };
            batch.rejections.push(refuse(r.reason, seq));
        }
        Ok(raw) => {
            let claimed = raw.source.clone();
            let seq = raw.source_seq;
            match validator.validate(raw) {
                Ok(e) if e.source != source => batch.rejections.push(refuse(
                    format!(
                        "source `{}` does not match this collector's source `{source}`",
                        e.source
                    ),
                    None,
                )),
                Ok(e) => batch.events.push((n, e)),
                Err(reason) => {
                    let seq = if claimed.as_deref() == Some(source) {
                        seq
                    } else {
                        None
                    };
                    batch.rejections.push(refuse(reason, seq));
                }
            }
        }
    }
}
