//! The write side of a data directory: the writer lock, crash recovery, the sealer and the committer.
//!
//! Opening recovers from a crash: partition files without a seal are quarantined (their events are
//! still in the WAL), then every WAL segment left behind is sealed, deduplicated on `source_seq`. A WAL
//! damaged before its acknowledged end stops the opening ([`StoreError::WalCorrupt`]) until
//! [`Warehouse::recover`] (`iris recover`) salvaged it.

use crate::datadir::{DataDir, DirLock};
use crate::error::StoreError;
use crate::location::StoreLocation;
use crate::sealer::{RecoverySummary, SealSummary, Sealer};
use iris_ingest::commit::{Committer, IngestLimits};
use iris_ingest::wal::{self, Wal};
use tokio::sync::Mutex;

/// A data directory opened for writing.
pub struct Warehouse {
    pub dir: DataDir,
    pub loc: StoreLocation,
    sealer: Mutex<Sealer>,
    committer: Option<Committer>,
    ingest_limits: IngestLimits,
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
        let (lock, loc, mut sealer, quarantined) = Self::prepare(&dir).await?;
        let mut recovery = Recovery {
            quarantined,
            ..Recovery::default()
        };
        // A segment that must exist and does not is corruption: named, never skipped.
        let missing =
            crate::wal_replay::missing_damage(&dir.wal_dir(), dir.wal_mirror_dir().as_deref())?;
        if !missing.is_empty() {
            return Err(crate::wal_replay::WalCorrupt { damage: missing }.into());
        }
        recovery.sealed = sealer.seal_wal(&Self::left_segments(&dir)?).await?;
        Ok((Warehouse::assemble(dir, loc, sealer, lock), recovery))
    }

    /// `iris recover`: like [`Warehouse::open`], but a damaged WAL is salvaged — every intact frame
    /// sealed, what was lost recorded in loss seals, the damaged segments moved to `DATA/wal-damaged/`.
    /// A loss that cannot be named refuses unless `accept_unidentified` (see [`Sealer::recover_wal`]).
    pub async fn recover(
        dir: DataDir,
        accept_unidentified: bool,
    ) -> Result<(Warehouse, RecoverySummary), StoreError> {
        let (lock, loc, mut sealer, _) = Self::prepare(&dir).await?;
        let keep = dir.root.join("wal-damaged");
        let summary = sealer
            .recover_wal(
                &Self::left_segments(&dir)?,
                &keep,
                accept_unidentified,
                crate::wal_replay::missing_damage(&dir.wal_dir(), dir.wal_mirror_dir().as_deref())?,
            )
            .await?;
        Ok((Warehouse::assemble(dir, loc, sealer, lock), summary))
    }

    async fn prepare(
        dir: &DataDir,
    ) -> Result<(DirLock, StoreLocation, Sealer, Vec<String>), StoreError> {
        let lock = dir.lock()?;
        let loc = dir.store()?;
        let signer = dir.keys().active_signer()?;
        let mut sealer = Sealer::open(loc.clone(), signer).await?;
        if let Some(n) = dir.max_seq_jump {
            sealer.set_max_seq_jump(n);
        }
        sealer.set_wal_mirror(dir.wal_mirror_dir());
        let quarantined = sealer.quarantine_unsealed().await?;
        Ok((lock, loc, sealer, quarantined))
    }

    /// Every segment left in the log or its mirror, named by its path in the log directory.
    fn left_segments(dir: &DataDir) -> Result<Vec<std::path::PathBuf>, StoreError> {
        let mut ids: std::collections::BTreeSet<u64> = wal::segments(&dir.wal_dir())?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        if let Some(m) = dir.wal_mirror_dir() {
            ids.extend(wal::segments(&m)?.into_iter().map(|(id, _)| id));
        }
        Ok(ids
            .into_iter()
            .map(|id| dir.wal_dir().join(format!("wal-{id:010}.log")))
            .collect())
    }

    fn assemble(dir: DataDir, loc: StoreLocation, sealer: Sealer, lock: DirLock) -> Warehouse {
        Warehouse {
            dir,
            loc,
            sealer: Mutex::new(sealer),
            committer: None,
            ingest_limits: IngestLimits::default(),
            _lock: lock,
        }
    }

    /// Sets the bounds of the write-ahead log under ingest (segment size, backlog) for
    /// [`Warehouse::start_committer`].
    pub fn set_ingest_limits(&mut self, limits: IngestLimits) {
        self.ingest_limits = limits;
    }

    /// Starts the write-ahead log and its group-commit thread (for the HTTP ingest).
    pub async fn start_committer(&mut self) -> Result<Committer, StoreError> {
        let limits = self.ingest_limits;
        let state = self.sealer.lock().await.sealed().clone();
        let mirror = self.dir.wal_mirror_dir();
        let wal = Wal::open_mirrored(&self.dir.wal_dir(), mirror.as_deref())?;
        let committer = Committer::start_with(wal, state, limits);
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
