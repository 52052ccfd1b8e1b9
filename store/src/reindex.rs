//! The lookup indexes as derived data: their state against the seals, and `iris reindex`, which rebuilds
//! them from the sealed partitions (never from a partition whose bytes differ from its seal).

use crate::concurrent::{cores, map_bounded};
use crate::error::StoreError;
use crate::layout::index_path;
use crate::location::StoreLocation;
use crate::manifest::Manifest;
use crate::seal::sha256_hex;
use bytes::Bytes;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// What is found of a partition's lookup index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexState {
    /// No index blob.
    Missing,
    /// Readable, built from the partition with this SHA-256.
    Built(String),
    /// Present but unreadable.
    Damaged(String),
}

/// Reads the header of the index blob at `path`.
pub async fn index_state(
    store: &dyn ObjectStore,
    path: &object_store::path::Path,
) -> Result<IndexState, StoreError> {
    let bytes = match store.get(path).await {
        Ok(r) => r.bytes().await?,
        Err(object_store::Error::NotFound { .. }) => return Ok(IndexState::Missing),
        Err(e) => return Err(StoreError::from(e)),
    };
    Ok(match iris_index::read_header(&bytes) {
        Ok(h) => IndexState::Built(h.partition_sha256),
        Err(e) => IndexState::Damaged(e.to_string()),
    })
}

/// Builds the index blob of a Parquet event partition from its bytes.
pub fn index_partition(bytes: Bytes, sha256: &str) -> Result<Vec<u8>, StoreError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
    let row_groups = builder
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows().max(0) as u64)
        .collect();
    let batches = builder
        .with_batch_size(64 * 1024)
        .build()?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(iris_index::build_index(&batches, sha256, row_groups)?)
}

/// What `reindex` did.
#[derive(Clone, Debug, Default)]
pub struct ReindexSummary {
    /// Indexes written.
    pub rebuilt: u64,
    /// Indexes already matching their partition, left as they were.
    pub kept: u64,
    /// Partitions not indexed, with the reason (gone, or bytes differing from the seal).
    pub refused: Vec<(String, String)>,
}

enum Outcome {
    Rebuilt,
    Kept,
    Refused(String, String),
}

/// Rebuilds missing, stale or damaged indexes (every index when `all`).
pub async fn reindex(loc: &StoreLocation, all: bool) -> Result<ReindexSummary, StoreError> {
    let manifest = Manifest::read(loc).await?;
    let jobs: Vec<_> = manifest
        .event_files()
        .map(|(path, f)| (loc.clone(), path.clone(), f.clone()))
        .collect();
    let outcomes = map_bounded(jobs, cores(), |(loc, path, file)| async move {
        let index = loc.path(&index_path(&path));
        if !all
            && index_state(loc.store.as_ref(), &index).await?
                == IndexState::Built(file.sha256.clone())
        {
            return Ok(Outcome::Kept);
        }
        let bytes = match loc.store.get(&loc.path(&path)).await {
            Ok(r) => r.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => {
                return Ok(Outcome::Refused(path, "partition is gone".into()));
            }
            Err(e) => return Err(StoreError::from(e)),
        };
        let sha = file.sha256.clone();
        let blob = tokio::task::spawn_blocking(move || {
            if sha256_hex(&bytes) != sha {
                return Ok(None);
            }
            index_partition(bytes, &sha).map(Some)
        })
        .await
        .map_err(|e| StoreError::Other(format!("indexing task failed: {e}")))??;
        match blob {
            None => Ok(Outcome::Refused(
                path,
                format!("bytes differ from seal #{} (run `iris verify`)", file.seal),
            )),
            Some(blob) => {
                loc.store.put(&index, PutPayload::from(blob)).await?;
                Ok::<_, StoreError>(Outcome::Rebuilt)
            }
        }
    })
    .await?;
    let mut summary = ReindexSummary::default();
    for o in outcomes {
        match o? {
            Outcome::Rebuilt => summary.rebuilt += 1,
            Outcome::Kept => summary.kept += 1,
            Outcome::Refused(path, why) => summary.refused.push((path, why)),
        }
    }
    summary.refused.sort();
    Ok(summary)
}
