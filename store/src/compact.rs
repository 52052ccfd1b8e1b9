//! Compaction: a month's event files (daily partitions of every source, and earlier compacted files of
//! that month) rewritten as a few large files sorted by `(subject_id, ts)`, one per bucket of subjects,
//! so a trace over a year opens one file per month instead of one per day and source.
//!
//! The chain stays verifiable: the new files and their indexes are written first, then one signed
//! compaction seal names the digests (and row counts) of the files it replaces and of the files it
//! wrote; only then are the replaced files deleted. A crash before the seal leaves unsealed files
//! (quarantined at the next start, the old files still live); a crash after it leaves replaced files
//! that no query reads and the next compaction deletes.

use crate::concurrent::{cores, map_bounded};
use crate::error::StoreError;
use crate::layout::{COMPACTED, EVENTS, compacted_path, index_path, nonce, subject_bucket};
use crate::manifest::{FileKind, LiveFile};
use crate::partition::{compacted_writer_properties, encode};
use crate::schema::compacted_file_schema;
use crate::seal::{FileDigest, Seal, SealKind, sha256_hex};
use crate::sealer::Sealer;
use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, UInt32Array};
use arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Default rows per compacted file: a month is split into `ceil(rows / this)` subject buckets.
pub const TARGET_ROWS_PER_FILE: u64 = 4_000_000;

/// What to compact.
#[derive(Clone, Debug)]
pub struct CompactOptions {
    /// Months (`YYYY-MM`) to compact; empty: every month before `before`.
    pub months: Vec<String>,
    /// With `months` empty, compact only months strictly before this one (`YYYY-MM`): by default the
    /// current month, which is still being written.
    pub before: String,
    /// Rows per compacted file (the bucket count follows from it).
    pub target_rows: u64,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            months: Vec::new(),
            before: chrono::Utc::now().format("%Y-%m").to_string(),
            target_rows: TARGET_ROWS_PER_FILE,
        }
    }
}

/// What compacting one month did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonthCompaction {
    pub month: String,
    /// Files replaced and their bytes.
    pub replaced: u64,
    pub bytes_before: u64,
    /// Files written and their bytes.
    pub written: u64,
    pub bytes_after: u64,
    pub rows: u64,
    /// Number of the compaction seal.
    pub seal: u64,
}

/// What a compaction run did.
#[derive(Clone, Debug, Default)]
pub struct CompactSummary {
    pub months: Vec<MonthCompaction>,
    /// Replaced files left by an interrupted earlier run, deleted now.
    pub leftovers_removed: u64,
}

/// The month (`YYYY-MM`) an event file belongs to, from its path.
pub fn month_of(path: &str) -> Option<String> {
    path.split('/').find_map(|seg| {
        seg.strip_prefix("day=")
            .or_else(|| seg.strip_prefix("month="))
            .and_then(|v| v.get(..7))
            .map(str::to_owned)
    })
}

impl Sealer {
    /// Compacts the months chosen by `opts` that still hold daily partitions.
    pub async fn compact(&mut self, opts: &CompactOptions) -> Result<CompactSummary, StoreError> {
        let mut summary = CompactSummary {
            leftovers_removed: self.remove_replaced_leftovers().await?,
            ..CompactSummary::default()
        };
        let mut by_month: BTreeMap<String, Vec<(String, LiveFile)>> = BTreeMap::new();
        for (path, file) in self.manifest().event_files() {
            if let Some(month) = month_of(path) {
                by_month
                    .entry(month)
                    .or_default()
                    .push((path.clone(), file.clone()));
            }
        }
        let wanted: HashSet<&str> = opts.months.iter().map(String::as_str).collect();
        for (month, files) in by_month {
            let chosen = if wanted.is_empty() {
                month < opts.before
            } else {
                wanted.contains(month.as_str())
            };
            // A month with no daily partition left is compacted already.
            if chosen && files.iter().any(|(_, f)| f.kind == FileKind::Events) {
                summary
                    .months
                    .push(self.compact_month(&month, files, opts.target_rows).await?);
            }
        }
        Ok(summary)
    }

    async fn compact_month(
        &mut self,
        month: &str,
        files: Vec<(String, LiveFile)>,
        target_rows: u64,
    ) -> Result<MonthCompaction, StoreError> {
        let loc = self.location().clone();
        // Read every file of the month, refusing any whose bytes differ from its seal: compaction must
        // never launder a tampered partition into a freshly sealed file.
        let reads: Vec<_> = files
            .iter()
            .map(|(path, f)| (loc.clone(), path.clone(), f.clone()))
            .collect();
        let batches: Vec<RecordBatch> =
            map_bounded(reads, cores() * 2, |(loc, path, file)| async move {
                let bytes = loc.store.get(&loc.path(&path)).await?.bytes().await?;
                tokio::task::spawn_blocking(move || decode_checked(&path, &file, bytes))
                    .await
                    .map_err(|e| StoreError::Other(format!("decoding task failed: {e}")))?
            })
            .await?
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        let buckets = rows.div_ceil(target_rows.max(1)).clamp(1, 1024) as u32;
        let month_owned = month.to_owned();
        let parts = tokio::task::spawn_blocking(move || split_sorted(&batches, buckets))
            .await
            .map_err(|e| StoreError::Other(format!("sorting task failed: {e}")))??;
        let encoded: Vec<(FileDigest, Vec<u8>, Vec<u8>)> =
            map_bounded(parts, cores(), |(bucket, batch)| {
                let path = compacted_path(&month_owned, bucket, buckets, &nonce());
                async move {
                    tokio::task::spawn_blocking(move || {
                        let rows = batch.num_rows() as u64;
                        let (bytes, row_groups) = encode(&batch, compacted_writer_properties())?;
                        let sha256 = sha256_hex(&bytes);
                        let index = iris_index::build_index(&[batch], &sha256, row_groups)?;
                        let digest = FileDigest {
                            path,
                            sha256,
                            rows,
                            bytes: bytes.len() as u64,
                            index_sha256: sha256_hex(&index),
                        };
                        Ok::<_, StoreError>((digest, bytes, index))
                    })
                    .await
                    .map_err(|e| StoreError::Other(format!("encoding task failed: {e}")))?
                }
            })
            .await?
            .into_iter()
            .collect::<Result<_, _>>()?;
        let mut written = Vec::with_capacity(encoded.len());
        let mut puts = Vec::new();
        for (digest, bytes, index) in encoded {
            puts.push((loc.path(&digest.path), PutPayload::from(bytes)));
            puts.push((loc.path(&index_path(&digest.path)), PutPayload::from(index)));
            written.push(digest);
        }
        let store = loc.store.clone();
        map_bounded(puts, 8, |(path, payload)| {
            let store = store.clone();
            async move { store.put(&path, payload).await.map(|_| ()) }
        })
        .await?
        .into_iter()
        .collect::<Result<Vec<()>, _>>()?;
        let replaced: Vec<FileDigest> = files
            .iter()
            .map(|(path, f)| FileDigest {
                path: path.clone(),
                sha256: f.sha256.clone(),
                rows: f.rows,
                bytes: f.bytes,
                index_sha256: String::new(),
            })
            .collect();
        let listing: String = written.iter().map(|w| w.sha256.as_str()).collect();
        let seal = self
            .append(Seal {
                kind: SealKind::Compaction,
                path: format!("{COMPACTED}/month={month}"),
                day: month.to_owned(),
                source: "*".into(),
                rows,
                bytes: written.iter().map(|w| w.bytes).sum(),
                // Digest of the written files' digests, in order: one value naming the whole result.
                sha256: sha256_hex(listing.as_bytes()),
                replaced: replaced.clone(),
                written: written.clone(),
                ..Seal::default()
            })
            .await?;
        // Sealed: the old files are no longer part of the log.
        for f in &replaced {
            delete_if_present(&loc, &f.path).await?;
            delete_if_present(&loc, &index_path(&f.path)).await?;
        }
        Ok(MonthCompaction {
            month: month.to_owned(),
            replaced: replaced.len() as u64,
            bytes_before: replaced.iter().map(|f| f.bytes).sum(),
            written: written.len() as u64,
            bytes_after: seal.bytes,
            rows,
            seal: seal.n,
        })
    }

    /// Deletes files a compaction seal replaced that are still present (the run was interrupted after
    /// its seal).
    async fn remove_replaced_leftovers(&self) -> Result<u64, StoreError> {
        let loc = self.location();
        let mut removed = 0;
        for dir in [EVENTS, COMPACTED] {
            let found: Vec<String> = loc
                .store
                .list(Some(&loc.path(dir)))
                .map_ok(|m| loc.relative(&m.location))
                .try_collect()
                .await?;
            for rel in found {
                if self.manifest().replaced.contains_key(&rel) {
                    delete_if_present(loc, &rel).await?;
                    delete_if_present(loc, &index_path(&rel)).await?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

async fn delete_if_present(loc: &crate::StoreLocation, rel: &str) -> Result<(), StoreError> {
    match loc.store.delete(&loc.path(rel)).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Decodes a live event file into the compacted schema, after checking its bytes against its seal.
fn decode_checked(
    path: &str,
    file: &LiveFile,
    bytes: bytes::Bytes,
) -> Result<RecordBatch, StoreError> {
    if sha256_hex(&bytes) != file.sha256 {
        return Err(StoreError::Other(format!(
            "{path}: bytes differ from seal #{}; compaction refused (run `iris verify`)",
            file.seal
        )));
    }
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?
        .with_batch_size(64 * 1024)
        .build()?;
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    let schema = if file.kind == FileKind::Compacted {
        compacted_file_schema()
    } else {
        crate::schema::events_file_schema()
    };
    let batch = concat_batches(&schema, &batches)?;
    if file.kind == FileKind::Compacted {
        return Ok(batch);
    }
    // A daily partition stores neither its day nor its source: they are in its path.
    let value = |key: &str| -> Result<String, StoreError> {
        path.split('/')
            .find_map(|s| s.strip_prefix(key))
            .map(str::to_owned)
            .ok_or_else(|| StoreError::Other(format!("{path}: no `{key}` in the path")))
    };
    let (day, source) = (value("day=")?, value("source=")?);
    let n = batch.num_rows();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(Arc::new(StringArray::from(vec![day.as_str(); n])));
    columns.push(Arc::new(StringArray::from(vec![source.as_str(); n])));
    Ok(RecordBatch::try_new(compacted_file_schema(), columns)?)
}

/// Sorts all rows by `(bucket, subject_id, ts, source, source_seq)` and cuts them per bucket.
fn split_sorted(
    batches: &[RecordBatch],
    buckets: u32,
) -> Result<Vec<(u32, RecordBatch)>, StoreError> {
    let all = concat_batches(&compacted_file_schema(), batches)?;
    let schema = all.schema();
    let column = |name: &str| -> Result<ArrayRef, StoreError> {
        Ok(all.column(schema.index_of(name)?).clone())
    };
    let subjects = column("subject_id")?;
    let subject_ids = subjects
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| StoreError::Other("subject_id is not a string column".into()))?;
    let bucket_of: UInt32Array = (0..subject_ids.len())
        .map(|i| subject_bucket(subject_ids.value(i), buckets))
        .collect();
    let sort = |values: ArrayRef| SortColumn {
        values,
        options: None,
    };
    let order = lexsort_to_indices(
        &[
            sort(Arc::new(bucket_of.clone())),
            sort(subjects.clone()),
            sort(column("ts")?),
            sort(column("source")?),
            sort(column("source_seq")?),
        ],
        None,
    )?;
    let sorted = take_record_batch(&all, &order)?;
    drop(all);
    let sorted_buckets = arrow::compute::take(&bucket_of, &order, None)?;
    let sorted_buckets = sorted_buckets
        .as_any()
        .downcast_ref::<UInt32Array>()
        .ok_or_else(|| StoreError::Other("bucket column".into()))?;
    let mut parts = Vec::new();
    let mut start = 0usize;
    while start < sorted.num_rows() {
        let b = sorted_buckets.value(start);
        let mut end = start;
        while end < sorted.num_rows() && sorted_buckets.value(end) == b {
            end += 1;
        }
        parts.push((b, sorted.slice(start, end - start)));
        start = end;
    }
    Ok(parts)
}
