//! Opened lookup indexes, kept in memory between queries of one process (a server keeps them warm).

use crate::sealed_table::KeyFilter;
use iris_index::PartitionIndex;
use iris_store::StoreLocation;
use iris_store::layout::index_path;
use iris_store::seal::sha256_hex;
use object_store::ObjectStoreExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Opened indexes by partition path (with the digest of the blob they were opened from), bounded in
/// number.
#[derive(Default)]
pub struct IndexCache {
    opened: Mutex<HashMap<String, (String, Arc<PartitionIndex>)>>,
}

impl std::fmt::Debug for IndexCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IndexCache({} open)", self.lock().len())
    }
}

/// Most indexes kept open; past it the cache starts over (simple, and a year of compacted partitions fits).
const MAX_OPEN: usize = 20_000;

impl IndexCache {
    /// A new, empty cache.
    pub fn new() -> IndexCache {
        IndexCache::default()
    }

    /// The index of partition `rel`, fetched and opened on first use; `None` if missing, unreadable, or
    /// (when `sealed` names the digest sealed for it) not exactly the sealed bytes — a damaged index is
    /// never used, the partition is scanned instead (and the reason logged).
    pub async fn get(
        &self,
        loc: &StoreLocation,
        rel: &str,
        sealed: Option<&str>,
    ) -> Option<Arc<PartitionIndex>> {
        if let Some((digest, ix)) = self.lock().get(rel)
            && sealed.is_none_or(|s| s == digest)
        {
            return Some(ix.clone());
        }
        let bytes = loc
            .store
            .get(&loc.path(&index_path(rel)))
            .await
            .ok()?
            .bytes()
            .await
            .ok()?;
        let want = sealed.map(str::to_owned);
        let opened = tokio::task::spawn_blocking(move || {
            let digest = sha256_hex(&bytes);
            if let Some(want) = want
                && want != digest
            {
                return Err(format!(
                    "its bytes differ from the sealed digest ({}… sealed, {}… found)",
                    want.get(..16).unwrap_or(&want),
                    &digest[..16]
                ));
            }
            PartitionIndex::open(&bytes)
                .map(|ix| (digest, ix))
                .map_err(|e| e.to_string())
        })
        .await;
        let (digest, ix) = match opened {
            Ok(Ok((digest, ix))) => (digest, Arc::new(ix)),
            Ok(Err(e)) => {
                tracing::warn!("index of {rel} unusable ({e}); scanning the partition instead");
                return None;
            }
            Err(_) => return None,
        };
        let mut opened = self.lock();
        if opened.len() >= MAX_OPEN {
            opened.clear();
        }
        opened.insert(rel.to_owned(), (digest, ix.clone()));
        Some(ix)
    }

    /// Rows of partition `rel` matching every filter (intersection), with its row-group sizes; `None`
    /// when the partition has no usable index: missing, unreadable, or built from other bytes than
    /// `sha256` (the sealed digest), whose row numbers could be wrong, or not the index blob sealed as
    /// `index_sha256`.
    pub async fn lookup(
        &self,
        loc: &StoreLocation,
        rel: &str,
        sha256: &str,
        index_sha256: Option<&str>,
        filters: &[KeyFilter],
    ) -> Option<(Vec<u32>, Vec<u64>)> {
        let ix = self.get(loc, rel, index_sha256).await?;
        if ix.header().partition_sha256 != sha256 {
            return None;
        }
        let mut rows: Option<Vec<u32>> = None;
        for f in filters {
            let keys: Vec<&str> = f.keys.iter().map(String::as_str).collect();
            let found = match ix.rows_matching(f.column, &keys) {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!("index of {rel} unusable ({e}); scanning the partition instead");
                    return None;
                }
            };
            rows = Some(match rows {
                None => found,
                Some(prev) => intersect(&prev, &found),
            });
        }
        Some((rows.unwrap_or_default(), ix.header().row_groups.clone()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Arc<PartitionIndex>)>> {
        // A panic while holding the lock leaves a map that is still valid: keep using it.
        self.opened.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Intersection of two sorted, unique lists.
fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}
