//! The write side of a data directory: the writer lock, crash recovery, the sealer and the committer.
//!
//! Opening recovers from a crash: partition files without a seal are quarantined (their events are
//! still in the WAL), then every WAL segment left behind is sealed, deduplicated on `source_seq`.

use crate::datadir::{DataDir, DirLock};
use crate::error::StoreError;
use crate::location::StoreLocation;
use crate::sealer::{SealSummary, Sealer};
use iris_ingest::commit::Committer;
use iris_ingest::wal::{self, Wal};
use tokio::sync::Mutex;

/// A data directory opened for writing.
pub struct Warehouse {
    pub dir: DataDir,
    pub loc: StoreLocation,
    sealer: Mutex<Sealer>,
    committer: Option<Committer>,
    _lock: DirLock,
}

/// What recovery found when opening.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Partition files moved to `quarantine/`.
    pub quarantined: Vec<String>,
    /// What sealing the left-over WAL segments did.
    pub sealed: SealSummary,
}

impl Warehouse {
    /// Locks the directory, recovers, and gets ready to seal. Needs a signing key.
    pub async fn open(dir: DataDir) -> Result<(Warehouse, Recovery), StoreError> {
        let lock = dir.lock()?;
        let loc = dir.store()?;
        let signer = dir.keys().active_signer()?;
        let mut sealer = Sealer::open(loc.clone(), signer).await?;
        let mut recovery = Recovery {
            quarantined: sealer.quarantine_unsealed().await?,
            ..Recovery::default()
        };
        let left: Vec<_> = wal::segments(&dir.wal_dir())?
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        recovery.sealed = sealer.seal_wal(&left).await?;
        Ok((
            Warehouse {
                dir,
                loc,
                sealer: Mutex::new(sealer),
                committer: None,
                _lock: lock,
            },
            recovery,
        ))
    }

    /// Starts the write-ahead log and its group-commit thread (for the HTTP ingest).
    pub async fn start_committer(&mut self) -> Result<Committer, StoreError> {
        let state = self.sealer.lock().await.sealed().clone();
        let committer = Committer::start(Wal::open(&self.dir.wal_dir())?, state);
        self.committer = Some(committer.clone());
        Ok(committer)
    }

    /// Seals everything the committer has made durable so far.
    pub async fn seal_now(&self) -> Result<SealSummary, StoreError> {
        let Some(committer) = &self.committer else {
            return Ok(SealSummary::default());
        };
        let mut sealer = self.sealer.lock().await;
        let closed = committer
            .rotate()
            .await
            .map_err(|e| StoreError::Other(e.to_string()))?;
        sealer.seal_wal(&closed).await
    }

    /// The sealer, for direct sealing (bulk import).
    pub fn sealer(&self) -> &Mutex<Sealer> {
        &self.sealer
    }
}
