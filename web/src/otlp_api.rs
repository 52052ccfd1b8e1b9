//! `POST /v1/logs`: OpenTelemetry logs over OTLP/HTTP (protobuf or JSON, optionally gzip). Each log
//! record is mapped to the audit schema by the deployment's mapping
//! ([`iris_ingest::formats::otlp::LogMapping`]), then takes the same path as a `/v1/events` batch:
//! [`ingest_api::admit`] validates it, [`ingest_api::commit_batch`] sequences it on `source_seq` and
//! answers once the write-ahead log has synced it. Refusals come back as OTLP partial success.

use crate::error::ApiError;
use crate::ingest_api::{self, MAX_BATCH_BYTES, MAX_BATCH_LINES};
use crate::server::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use iris_ingest::Validator;
use iris_ingest::commit::{Batch, BatchOutcome};
use iris_ingest::formats::otlp::{self, Encoding};
use std::io::Read;
use std::sync::Arc;

/// Most refusal reasons spelled out in one answer's `error_message` (the count is always exact).
const MAX_REASONS: usize = 100;

/// Handles an export request.
/// OTLP bodies decoded at once (each may take ~40× its ≤ 16 MiB size while decoding).
static DECODES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

pub async fn post_logs(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let source = ingest_api::collector_source(&state, &headers)?;
    let encoding = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(Encoding::of)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "OTLP/HTTP logs are sent as `application/x-protobuf` or `application/json`",
            )
        })?;
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("identity") => false,
        Some("gzip") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content encoding `{other}` is not supported: send gzip or none"),
            ));
        }
    };
    let body = ingest_api::read_batch(body).await?;
    let mapping = state.otlp_mapping.clone();
    let collector = source.clone();
    // A 16 MiB protobuf of empty attributes decodes to ~40× its size: decodes take turns, so the
    // memory they hold together stays bounded whatever collectors send at once.
    let _turn = DECODES
        .acquire()
        .await
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down".to_owned()))?;
    let batch = tokio::task::spawn_blocking(move || {
        let body = if gzip { gunzip(&body)? } else { body.to_vec() };
        let request = otlp::decode(&body, encoding).map_err(ApiError::bad_request)?;
        let records = otlp::count(&request);
        if records > MAX_BATCH_LINES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "export of {records} log records is larger than {MAX_BATCH_LINES}: split it"
                ),
            ));
        }
        let validator = Validator::now();
        let mut batch = Batch {
            received_at: chrono::Utc::now().timestamp_micros(),
            ..Batch::default()
        };
        mapping.read(&request, |n, record| {
            // A record that names no source is the collector's own.
            let record = match record {
                Ok(mut raw) => {
                    raw.source.get_or_insert_with(|| collector.clone());
                    Ok(raw)
                }
                Err(mut refused) => {
                    refused.source.get_or_insert_with(|| collector.clone());
                    Err(refused)
                }
            };
            ingest_api::admit(&mut batch, &validator, &collector, n, record);
        });
        Ok(batch)
    })
    .await
    .map_err(|e| ApiError::unavailable(format!("export parsing failed: {e}")))??;
    let outcome = ingest_api::commit_batch(&state, &source, batch, "otlp").await?;
    let (rejected, message) = partial_success(&outcome);
    let body = otlp::encode_response(rejected, message, encoding);
    Ok(([(header::CONTENT_TYPE, encoding.content_type())], body).into_response())
}

/// Inflates a gzip body, refusing one that inflates past [`MAX_BATCH_BYTES`].
fn gunzip(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(MAX_BATCH_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad_request(format!("the gzip body does not inflate: {e}")))?;
    if out.len() > MAX_BATCH_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "export inflates past {} MiB: split it",
                MAX_BATCH_BYTES >> 20
            ),
        ));
    }
    Ok(out)
}

/// The OTLP partial success of a committed batch: the records refused, each reason with its record
/// number, and resent records (acknowledged, not stored twice) as a warning.
fn partial_success(outcome: &BatchOutcome) -> (i64, String) {
    let rejected = outcome.rejected.len();
    let mut parts: Vec<String> = outcome
        .rejected
        .iter()
        .take(MAX_REASONS)
        .map(|(n, reason)| format!("record {n}: {reason}"))
        .collect();
    if rejected > MAX_REASONS {
        parts.push(format!("and {} more", rejected - MAX_REASONS));
    }
    if outcome.duplicates > 0 {
        parts.push(format!(
            "{} records were already stored (a resend): acknowledged, not stored twice",
            outcome.duplicates
        ));
    }
    (
        i64::try_from(rejected).unwrap_or(i64::MAX),
        parts.join("; "),
    )
}
