//! Bulk import: log files parsed and validated on every core, admitted and sealed in input order.
//!
//! Each input is cut into chunks of whole lines ([`iris_ingest::formats::chunks`]) that N worker
//! threads parse and validate at once; the batches come back in input order, go through the
//! idempotency check on `source`/`source_seq` (the same [`admit_batch`] the server uses), and every
//! [`Options::seal_events`] accepted events are handed to the sealer, which encodes the partitions
//! (Parquet, lookup index, SHA-256) on every core while the next events are being parsed. Seals are
//! appended in input order, so the same input gives the same partitions and the same chain.
//!
//! Memory is bounded whatever the input's size: at most [`Options::chunks_in_flight`] chunks are read
//! or parsed ahead, one group of events accumulates while at most one more waits and one is sealed.
//! Delimited (mapped) inputs are read on one thread (a quoted field may span lines) and sealed the same
//! way.

mod parse;

use iris_ingest::commit::admit_batch;
use iris_ingest::formats::{Format, FormatError};
use iris_ingest::{Event, Rejection, Validator};
use iris_store::error::StoreError;
use iris_store::sealer::SealSummary;
use iris_store::warehouse::Warehouse;
use std::io::Read;

/// Errors that stop an import (a bad record never does: it is refused and reported).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{name}: {source}")]
    Input { name: String, source: FormatError },
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("import pipeline: {0}")]
    Pipeline(String),
}

/// One input to import.
pub struct Input {
    /// How it is named in messages (a path).
    pub name: String,
    pub format: Format,
    pub reader: Box<dyn Read + Send>,
}

/// How the pipeline is sized.
#[derive(Clone, Debug)]
pub struct Options {
    /// Threads parsing and validating JSON lines.
    pub workers: usize,
    /// Bytes per chunk of JSON lines.
    pub chunk_bytes: usize,
    /// Chunks read or parsed ahead of the one being admitted (bounds memory).
    pub chunks_in_flight: usize,
    /// Accepted events handed to the sealer at a time (bounds memory; larger means fewer, larger
    /// daily partitions when a day's events are spread over the input).
    pub seal_events: usize,
}

impl Default for Options {
    fn default() -> Self {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Options {
            workers,
            chunk_bytes: iris_ingest::formats::chunks::CHUNK_BYTES,
            chunks_in_flight: 2 * workers + 2,
            seal_events: SEAL_EVENTS,
        }
    }
}

/// Default [`Options::seal_events`].
pub const SEAL_EVENTS: usize = 500_000;

/// Totals of an import.
#[derive(Default, Debug, Clone)]
pub struct Totals {
    /// Records read (accepted, already stored and refused).
    pub records: u64,
    pub accepted: u64,
    /// Events already stored (a re-import), counted and not stored twice.
    pub duplicates: u64,
    pub rejected: u64,
    pub sealed: SealSummary,
}

/// Imports every input in order. Each refused record is passed to `on_rejected(input, line, reason)`
/// as soon as it is known (and sealed in the rejection log); none is dropped silently.
pub async fn import(
    wh: &Warehouse,
    inputs: Vec<Input>,
    opts: &Options,
    mut on_rejected: impl FnMut(&str, u64, &str),
) -> Result<Totals, ImportError> {
    let mut seq = wh.sealer().lock().await.sealed().clone();
    let validator = Validator::now();
    // One group waits while the previous one is sealed: parsing goes on during sealing.
    let (seal_tx, mut seal_rx) = tokio::sync::mpsc::channel::<(Vec<Event>, Vec<Rejection>)>(1);
    let sealing = async move {
        let mut sealed = SealSummary::default();
        while let Some((events, rejections)) = seal_rx.recv().await {
            let s = wh.sealer().lock().await.seal(events, rejections).await?;
            add(&mut sealed, &s);
        }
        Ok::<_, ImportError>(sealed)
    };
    let reading = async move {
        let mut totals = Totals::default();
        let mut events = Vec::new();
        let mut rejections = Vec::new();
        for input in inputs {
            let name = input.name.clone();
            let received_at = chrono::Utc::now().timestamp_micros();
            let mut batches = parse::Batches::start(input, &validator, received_at, opts);
            while let Some(batch) = batches.next().await {
                let batch = batch.map_err(|e| match e {
                    ImportError::Format(source) => ImportError::Input {
                        name: name.clone(),
                        source,
                    },
                    other => other,
                })?;
                totals.records += (batch.events.len() + batch.rejections.len()) as u64;
                let (record, outcome) = admit_batch(&mut seq, batch);
                totals.accepted += outcome.accepted;
                totals.duplicates += outcome.duplicates;
                totals.rejected += outcome.rejected.len() as u64;
                for (line, reason) in &outcome.rejected {
                    on_rejected(&name, *line, reason);
                }
                events.extend(record.events);
                rejections.extend(record.rejections);
                // Groups of exactly `seal_events` events, whatever the chunk size or the number of
                // cores: the same input gives the same partitions, byte for byte.
                while events.len() >= opts.seal_events.max(1) {
                    let rest = events.split_off(opts.seal_events.max(1));
                    let group = (
                        std::mem::replace(&mut events, rest),
                        std::mem::take(&mut rejections),
                    );
                    if seal_tx.send(group).await.is_err() {
                        // The sealer stopped: its error is the one to report.
                        return Ok(totals);
                    }
                }
            }
        }
        let _ = seal_tx.send((events, rejections)).await;
        Ok::<_, ImportError>(totals)
    };
    let (read, sealed) = tokio::join!(reading, sealing);
    let sealed = sealed?;
    let mut totals = read?;
    totals.sealed = sealed;
    Ok(totals)
}

fn add(total: &mut SealSummary, s: &SealSummary) {
    total.partitions += s.partitions;
    total.events += s.events;
    total.rejections += s.rejections;
    total.duplicates += s.duplicates;
    total.bytes += s.bytes;
}
