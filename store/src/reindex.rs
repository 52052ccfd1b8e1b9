//! The lookup indexes as derived data: their state against the seals, and `iris reindex`, which rebuilds
//! them from the sealed partitions (never from a partition whose bytes differ from its seal).

use crate::concurrent::{cores, map_bounded};
use crate::error::StoreError;
use crate::layout::index_path;
use crate::manifest::LiveFile;
use crate::seal::sha256_hex;
use crate::sealer::Sealer;
use bytes::Bytes;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// What is found of a partition's lookup index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexState {
    /// No index blob.
    Missing,
    /// Readable, built from the partition with SHA-256 `from`; `sha256` is the blob's own digest.
    Built { from: String, sha256: String },
    /// Present but unreadable; `sha256` is the blob's digest.
    Damaged { why: String, sha256: String },
}

impl IndexState {
    /// The blob's own digest, when there is a blob.
    pub fn sha256(&self) -> Option<&str> {
        match self {
            IndexState::Missing => None,
            IndexState::Built { sha256, .. } | IndexState::Damaged { sha256, .. } => Some(sha256),
        }
    }
}

/// Reads the index blob at `path` in full: its digest and the header's partition digest.
pub async fn index_state(
    store: &dyn ObjectStore,
    path: &object_store::path::Path,
) -> Result<IndexState, StoreError> {
    let bytes = match store.get(path).await {
        Ok(r) => r.bytes().await?,
        Err(object_store::Error::NotFound { .. }) => return Ok(IndexState::Missing),
        Err(e) => return Err(StoreError::from(e)),
    };
    let (sha256, header) =
        tokio::task::spawn_blocking(move || (sha256_hex(&bytes), iris_index::read_header(&bytes)))
            .await
            .map_err(|e| StoreError::Other(format!("hashing task failed: {e}")))?;
    Ok(match header {
        Ok(h) => IndexState::Built {
            from: h.partition_sha256,
            sha256,
        },
        Err(e) => IndexState::Damaged {
            why: e.to_string(),
            sha256,
        },
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
    /// Indexes written (each with an index seal naming its digest).
    pub rebuilt: u64,
    /// Indexes already matching their partition and their sealed digest, left as they were.
    pub kept: u64,
    /// Indexes made before index digests were sealed, checked (opened, row count) and sealed as they are.
    pub adopted: u64,
    /// Partitions not indexed, with the reason (gone, or bytes differing from the seal).
    pub refused: Vec<(String, String)>,
}

enum Outcome {
    Rebuilt(String, String, u64),
    Kept,
    Adopted(String, String, u64),
    Refused(String, String),
}

/// Whether the index found is the one to keep: for a file whose index digest is sealed, exactly those
/// bytes; for an older file, a blob built from the sealed partition.
fn is_current(found: &IndexState, file: &LiveFile) -> bool {
    match (&file.index_sha256, found) {
        (Some(want), IndexState::Built { from, sha256 }) => sha256 == want && *from == file.sha256,
        (None, IndexState::Built { from, .. }) => *from == file.sha256,
        _ => false,
    }
}

/// Rebuilds missing, stale, damaged or changed indexes (every index when `all`) and seals each new
/// index's digest. Indexes from before digests were sealed are opened, checked and sealed as they are.
pub async fn reindex(sealer: &mut Sealer, all: bool) -> Result<ReindexSummary, StoreError> {
    let loc = sealer.location().clone();
    let jobs: Vec<_> = sealer
        .manifest()
        .event_files()
        .map(|(path, f)| (loc.clone(), path.clone(), f.clone()))
        .collect();
    let outcomes = map_bounded(jobs, cores(), |(loc, path, file)| async move {
        let index = loc.path(&index_path(&path));
        let found = index_state(loc.store.as_ref(), &index).await?;
        if !all && is_current(&found, &file) {
            if file.index_sha256.is_some() {
                return Ok(Outcome::Kept);
            }
            // Older index: adopt it only if it opens and counts the partition's rows.
            let bytes = loc.store.get(&index).await?.bytes().await?;
            let rows = file.rows;
            let usable = tokio::task::spawn_blocking(move || {
                let len = bytes.len() as u64;
                iris_index::PartitionIndex::open(&bytes)
                    .ok()
                    .filter(|ix| ix.header().rows == rows)
                    .map(|_| (sha256_hex(&bytes), len))
            })
            .await
            .map_err(|e| StoreError::Other(format!("indexing task failed: {e}")))?;
            if let Some((sha, len)) = usable {
                return Ok(Outcome::Adopted(path, sha, len));
            }
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
                let digest = sha256_hex(&blob);
                let len = blob.len() as u64;
                loc.store.put(&index, PutPayload::from(blob)).await?;
                Ok::<_, StoreError>(Outcome::Rebuilt(path, digest, len))
            }
        }
    })
    .await?;
    let mut summary = ReindexSummary::default();
    for o in outcomes {
        match o? {
            Outcome::Rebuilt(path, sha, len) => {
                sealer.seal_index(&path, &sha, len).await?;
                summary.rebuilt += 1;
            }
            Outcome::Adopted(path, sha, len) => {
                sealer.seal_index(&path, &sha, len).await?;
                summary.adopted += 1;
            }
            Outcome::Kept => summary.kept += 1,
            Outcome::Refused(path, why) => summary.refused.push((path, why)),
        }
    }
    summary.refused.sort();
    Ok(summary)
}
