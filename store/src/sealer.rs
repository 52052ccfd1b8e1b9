//! Sealing: events and rejections become Parquet partitions (one per day and source), each appended to
//! the chain with a signed seal. Sealing is idempotent on `source`/`source_seq`: what a seal already
//! covers is dropped, so replaying a write-ahead log after a crash never stores an event twice.

use crate::chain::{self, ChainHead};
use crate::concurrent::{cores, map_bounded};
use crate::error::StoreError;
use crate::keys::Signer;
use crate::layout::{
    COMPACTED, EVENTS, INDEX, REJECTIONS, TABLES, index_path, nonce, partition_path, table_path,
};
use crate::location::StoreLocation;
use crate::manifest::Manifest;
use crate::partition::{events_batch, rejections_batch, to_parquet, to_parquet_with_row_groups};
use crate::seal::{Seal, SealKind, sha256_hex};
use arrow::record_batch::RecordBatch;
use futures::TryStreamExt;
use iris_ingest::commit::WalRecord;
use iris_ingest::event::day_of_micros;
use iris_ingest::{Event, IntervalSet, Rejection, Sequencer};
use object_store::{ObjectStoreExt, PutPayload};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

/// Source name of rejections whose source could not be read.
pub const UNATTRIBUTED: &str = "unattributed";

/// What one sealing run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SealSummary {
    pub partitions: u64,
    pub events: u64,
    pub rejections: u64,
    /// Events dropped because a seal already covered them (replay after a crash).
    pub duplicates: u64,
    pub bytes: u64,
}

impl SealSummary {
    fn add(&mut self, other: &SealSummary) {
        self.partitions += other.partitions;
        self.events += other.events;
        self.rejections += other.rejections;
        self.duplicates += other.duplicates;
        self.bytes += other.bytes;
    }
}

/// State of what is sealed, for idempotency.
pub fn sealed_state(seals: &[Seal]) -> Sequencer {
    let mut q = Sequencer::default();
    for s in seals {
        for [a, b] in &s.seq_ranges {
            match s.kind {
                SealKind::Events => q.load_accepted(&s.source, *a, *b),
                SealKind::Rejections => q.load_rejected(&s.source, *a, *b),
                SealKind::Compaction | SealKind::Table => {}
            }
        }
    }
    q
}

/// Appends sealed partitions to the store. One sealer at a time per store (the data-directory lock).
pub struct Sealer {
    loc: StoreLocation,
    signer: Signer,
    head: ChainHead,
    sealed: Sequencer,
    manifest: Manifest,
}

/// A partition encoded and ready to be written and sealed.
struct Encoded {
    kind: SealKind,
    day: String,
    source: String,
    rows: u64,
    ranges: IntervalSet,
    path: String,
    bytes: Vec<u8>,
    sha256: String,
    /// The lookup index blob (event partitions only).
    index: Option<Vec<u8>>,
}

impl Sealer {
    /// Opens the chain (every seal must be readable) and prepares to append.
    pub async fn open(loc: StoreLocation, signer: Signer) -> Result<Sealer, StoreError> {
        let seals = chain::read_chain(&loc).await?;
        Ok(Sealer {
            head: ChainHead::after(&seals),
            sealed: sealed_state(&seals),
            manifest: Manifest::from_seals(&seals),
            loc,
            signer,
        })
    }

    /// What is sealed so far.
    pub fn sealed(&self) -> &Sequencer {
        &self.sealed
    }

    /// Number of seals in the chain.
    pub fn seal_count(&self) -> u64 {
        self.head.next
    }

    /// The live files, as of the last seal.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The store this sealer appends to.
    pub fn location(&self) -> &StoreLocation {
        &self.loc
    }

    /// Numbers, links, signs and appends a seal, then records it. Returns it as written.
    pub(crate) async fn append(&mut self, mut seal: Seal) -> Result<Seal, StoreError> {
        seal.n = self.head.next;
        seal.prev = self.head.prev.clone();
        seal.sealed_at = chrono::Utc::now().timestamp_micros();
        seal.sign(&self.signer);
        chain::append(&self.loc, &seal).await?;
        self.head = ChainHead {
            next: seal.n + 1,
            prev: seal.digest(),
        };
        for [a, b] in &seal.seq_ranges {
            match seal.kind {
                SealKind::Events => self.sealed.load_accepted(&seal.source, *a, *b),
                SealKind::Rejections => self.sealed.load_rejected(&seal.source, *a, *b),
                SealKind::Compaction | SealKind::Table => {}
            }
        }
        self.manifest.apply(&seal);
        Ok(seal)
    }

    /// Seals events and rejections; events a seal already covers are dropped.
    pub async fn seal(
        &mut self,
        events: Vec<Event>,
        rejections: Vec<Rejection>,
    ) -> Result<SealSummary, StoreError> {
        let mut summary = SealSummary::default();
        let mut groups: BTreeMap<(String, String), Vec<Event>> = BTreeMap::new();
        let mut seen: HashSet<(String, u64)> = HashSet::new();
        for e in events {
            if self.sealed.is_accepted(&e.source, e.source_seq)
                || !seen.insert((e.source.clone(), e.source_seq))
            {
                summary.duplicates += 1;
                continue;
            }
            groups
                .entry((e.day(), e.source.clone()))
                .or_default()
                .push(e);
        }
        let mut rejected: BTreeMap<(String, String), Vec<Rejection>> = BTreeMap::new();
        for r in rejections {
            // The source names a directory: anything but a plain code goes to `unattributed`.
            let source = r
                .source
                .clone()
                .filter(|s| iris_ingest::validate::is_token(s))
                .unwrap_or_else(|| UNATTRIBUTED.to_owned());
            rejected
                .entry((day_of_micros(r.received_at), source))
                .or_default()
                .push(r);
        }
        let jobs: Vec<Job> = groups
            .into_iter()
            .map(|((day, source), rows)| Job::Events(day, source, rows))
            .chain(
                rejected
                    .into_iter()
                    .map(|((day, source), rows)| Job::Rejections(day, source, rows)),
            )
            .collect();
        let encoded: Vec<Encoded> = map_bounded(jobs, cores(), |job| async move {
            tokio::task::spawn_blocking(move || job.encode())
                .await
                .map_err(|e| StoreError::Other(format!("encoding task failed: {e}")))?
        })
        .await?
        .into_iter()
        .collect::<Result<_, _>>()?;
        // Write every partition first, then the seals in order: a crash in between leaves unsealed
        // files (quarantined at the next start, the WAL still holds their events), never a seal
        // without its partition.
        // Index blobs go with their partitions; an index left by a crash is removed with them.
        let writes: Vec<_> = encoded
            .iter()
            .flat_map(|p| {
                let part = (
                    self.loc.store.clone(),
                    self.loc.path(&p.path),
                    PutPayload::from(p.bytes.clone()),
                );
                let index = p.index.as_ref().map(|blob| {
                    (
                        self.loc.store.clone(),
                        self.loc.path(&index_path(&p.path)),
                        PutPayload::from(blob.clone()),
                    )
                });
                std::iter::once(part).chain(index)
            })
            .collect();
        map_bounded(writes, 8, |(store, path, payload)| async move {
            store.put(&path, payload).await.map(|_| ())
        })
        .await?
        .into_iter()
        .collect::<Result<Vec<()>, _>>()?;
        for p in encoded {
            let seal = self
                .append(Seal {
                    kind: p.kind,
                    path: p.path,
                    day: p.day,
                    source: p.source,
                    rows: p.rows,
                    bytes: p.bytes.len() as u64,
                    seq_ranges: p.ranges.iter().map(|(a, b)| [a, b]).collect(),
                    sha256: p.sha256,
                    ..Seal::default()
                })
                .await?;
            summary.partitions += 1;
            summary.bytes += seal.bytes;
            match seal.kind {
                SealKind::Events => summary.events += seal.rows,
                SealKind::Rejections => summary.rejections += seal.rows,
                SealKind::Compaction | SealKind::Table => {}
            }
        }
        Ok(summary)
    }

    /// Writes one partition of statistics table `table` (a plain code) for `quarter` and seals it into
    /// the chain. Returns the seal.
    pub async fn seal_table(
        &mut self,
        table: &str,
        quarter: &str,
        batch: &RecordBatch,
    ) -> Result<Seal, StoreError> {
        if !iris_ingest::validate::is_token(table) || !iris_ingest::validate::is_quarter(quarter) {
            return Err(StoreError::Other(format!(
                "table `{table}` must be a plain code and quarter `{quarter}` of the form 2025-Q1"
            )));
        }
        let rows = batch.num_rows() as u64;
        let batch = batch.clone();
        let bytes = tokio::task::spawn_blocking(move || to_parquet(&batch))
            .await
            .map_err(|e| StoreError::Other(format!("encoding task failed: {e}")))??;
        let path = table_path(table, quarter, &nonce());
        let sha256 = sha256_hex(&bytes);
        let size = bytes.len() as u64;
        self.loc
            .store
            .put(&self.loc.path(&path), PutPayload::from(bytes))
            .await?;
        self.append(Seal {
            kind: SealKind::Table,
            path,
            day: quarter.to_owned(),
            source: table.to_owned(),
            rows,
            bytes: size,
            sha256,
            ..Seal::default()
        })
        .await
    }

    /// Seals the contents of closed WAL segments, then deletes them.
    pub async fn seal_wal(&mut self, segments: &[PathBuf]) -> Result<SealSummary, StoreError> {
        let mut total = SealSummary::default();
        if segments.is_empty() {
            return Ok(total);
        }
        let mut events = Vec::new();
        let mut rejections = Vec::new();
        for path in segments {
            let read = iris_ingest::wal::read_segment(path)?;
            if read.torn_bytes > 0 {
                tracing::warn!(
                    "{}: dropped a torn tail of {} bytes (never acknowledged)",
                    path.display(),
                    read.torn_bytes
                );
            }
            for rec in read.records {
                let r: WalRecord = serde_json::from_slice(&rec)
                    .map_err(StoreError::json(path.display().to_string()))?;
                events.extend(r.events);
                rejections.extend(r.rejections);
            }
            // Bound memory on a large backlog: seal every few million events.
            if events.len() >= 4_000_000 {
                total.add(
                    &self
                        .seal(std::mem::take(&mut events), std::mem::take(&mut rejections))
                        .await?,
                );
            }
        }
        total.add(&self.seal(events, rejections).await?);
        iris_ingest::wal::remove_segments(segments)?;
        Ok(total)
    }

    /// Moves partition files that no seal names (left by a crash between writing and sealing) to
    /// `quarantine/`. Only safe while the WAL still holds their events, i.e. at startup before sealing.
    pub async fn quarantine_unsealed(&self) -> Result<Vec<String>, StoreError> {
        let mut moved = Vec::new();
        for dir in [EVENTS, REJECTIONS, COMPACTED, TABLES] {
            let prefix = self.loc.path(dir);
            let metas: Vec<_> = self.loc.store.list(Some(&prefix)).try_collect().await?;
            for m in metas {
                let rel = self.loc.relative(&m.location);
                if !self.manifest.is_named(&rel) {
                    let to = self.loc.path(&format!("quarantine/{rel}"));
                    self.loc.store.copy(&m.location, &to).await?;
                    self.loc.store.delete(&m.location).await?;
                    moved.push(rel);
                }
            }
        }
        // Indexes of files that are not live are derived data of nothing: drop them.
        let sealed_indexes: HashSet<String> =
            self.manifest.files.keys().map(|p| index_path(p)).collect();
        let metas: Vec<_> = self
            .loc
            .store
            .list(Some(&self.loc.path(INDEX)))
            .try_collect()
            .await?;
        for m in metas {
            if !sealed_indexes.contains(&self.loc.relative(&m.location)) {
                self.loc.store.delete(&m.location).await?;
            }
        }
        Ok(moved)
    }
}

enum Job {
    Events(String, String, Vec<Event>),
    Rejections(String, String, Vec<Rejection>),
}

/// First and last sequence number of a partition, for its file name (0 when it has none).
fn seq_bounds(ranges: &IntervalSet) -> (u64, u64) {
    (
        ranges.iter().next().map(|r| r.0).unwrap_or(0),
        ranges.max().unwrap_or(0),
    )
}

impl Job {
    fn encode(self) -> Result<Encoded, StoreError> {
        match self {
            Job::Events(day, source, mut rows) => {
                rows.sort_by_key(|e| (e.ts, e.source_seq));
                let ranges = IntervalSet::from_values(rows.iter().map(|e| e.source_seq));
                let (first, last) = seq_bounds(&ranges);
                let batch = events_batch(&rows)?;
                let (bytes, row_groups) = to_parquet_with_row_groups(&batch)?;
                let sha256 = sha256_hex(&bytes);
                let index = iris_index::build_index(&[batch], &sha256, row_groups)?;
                let path = partition_path(EVENTS, &day, &source, first, last, &nonce());
                Ok(Encoded {
                    kind: SealKind::Events,
                    day,
                    source,
                    rows: rows.len() as u64,
                    ranges,
                    path,
                    sha256,
                    bytes,
                    index: Some(index),
                })
            }
            Job::Rejections(day, source, mut rows) => {
                rows.sort_by_key(|r| (r.received_at, r.line));
                let ranges = IntervalSet::from_values(rows.iter().filter_map(|r| r.source_seq));
                let (first, last) = seq_bounds(&ranges);
                let bytes = to_parquet(&rejections_batch(&rows)?)?;
                let path = partition_path(REJECTIONS, &day, &source, first, last, &nonce());
                Ok(Encoded {
                    kind: SealKind::Rejections,
                    day,
                    source,
                    rows: rows.len() as u64,
                    ranges,
                    path,
                    sha256: sha256_hex(&bytes),
                    bytes,
                    index: None,
                })
            }
        }
    }
}
