//! The chain of seals on the object store: `chain/seal-NNNNNNNNNN.json`, one object per seal, never
//! overwritten.

use crate::concurrent::map_bounded;
use crate::error::StoreError;
use crate::layout::{CHAIN, seal_number, seal_path};
use crate::location::StoreLocation;
use crate::seal::{GENESIS, Seal};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};

/// One object found under `chain/`, parsed or not.
#[derive(Debug)]
pub struct ChainEntry {
    /// Relative path.
    pub path: String,
    /// Number in the file name (`None` for a stray object).
    pub slot: Option<u64>,
    /// The seal, or why it could not be read.
    pub seal: Result<Seal, String>,
}

/// Lists and reads every object under `chain/`, ordered by slot number.
pub async fn read_entries(loc: &StoreLocation) -> Result<Vec<ChainEntry>, StoreError> {
    let prefix = loc.path(CHAIN);
    let metas: Vec<_> = loc.store.list(Some(&prefix)).try_collect().await?;
    let jobs: Vec<_> = metas
        .into_iter()
        .map(|m| (loc.store.clone(), loc.relative(&m.location), m.location))
        .collect();
    let mut entries: Vec<ChainEntry> = map_bounded(jobs, 16, |(store, path, full)| async move {
        let seal = match store.get(&full).await {
            Ok(r) => match r.bytes().await {
                Ok(b) => serde_json::from_slice::<Seal>(&b).map_err(|e| format!("not a seal: {e}")),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        ChainEntry {
            slot: seal_number(&path),
            path,
            seal,
        }
    })
    .await?;
    entries.sort_by(|a, b| {
        (a.slot.is_none(), a.slot, &a.path).cmp(&(b.slot.is_none(), b.slot, &b.path))
    });
    Ok(entries)
}

/// Reads the chain for normal operation: every seal must be readable and in place.
pub async fn read_chain(loc: &StoreLocation) -> Result<Vec<Seal>, StoreError> {
    let mut seals = Vec::new();
    for e in read_entries(loc).await? {
        let Some(slot) = e.slot else { continue };
        let seal = e
            .seal
            .map_err(|why| StoreError::Other(format!("{}: {why}; run `iris verify`", e.path)))?;
        if slot != seals.len() as u64 || seal.n != slot {
            return Err(StoreError::Other(format!(
                "{}: chain is not contiguous at seal #{slot}; run `iris verify`",
                e.path
            )));
        }
        seals.push(seal);
    }
    Ok(seals)
}

/// Where the next seal goes.
#[derive(Clone, Debug)]
pub struct ChainHead {
    /// Number of the next seal.
    pub next: u64,
    /// Digest of the last seal.
    pub prev: String,
}

impl ChainHead {
    /// The head after `seals`.
    pub fn after(seals: &[Seal]) -> ChainHead {
        match seals.last() {
            Some(s) => ChainHead {
                next: s.n + 1,
                prev: s.digest(),
            },
            None => ChainHead {
                next: 0,
                prev: GENESIS.to_owned(),
            },
        }
    }
}

/// Writes a seal at its slot, refusing to overwrite an existing one.
pub async fn append(loc: &StoreLocation, seal: &Seal) -> Result<(), StoreError> {
    let path = loc.path(&seal_path(seal.n));
    let payload = PutPayload::from(seal.to_json());
    let opts = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    match loc.store.put_opts(&path, payload.clone(), opts).await {
        Ok(_) => Ok(()),
        // Stores without conditional writes: the data-directory lock already makes Iris the only writer.
        Err(object_store::Error::NotImplemented { .. }) => {
            loc.store.put(&path, payload).await?;
            Ok(())
        }
        Err(object_store::Error::AlreadyExists { .. }) => Err(StoreError::Other(format!(
            "seal #{} exists already: another writer is sealing into this store",
            seal.n
        ))),
        Err(e) => Err(e.into()),
    }
}
