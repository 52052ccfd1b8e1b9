//! Errors of the store.

use std::path::PathBuf;

/// Anything that can go wrong reading or writing the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("lookup index: {0}")]
    Index(#[from] iris_index::IndexError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Json {
        what: String,
        source: serde_json::Error,
    },
    #[error("bad store URL `{url}`: {reason}")]
    Url { url: String, reason: String },
    #[error("no signing key: run `iris keygen` first")]
    NoSigningKey,
    #[error("key {id}: {reason}")]
    Key { id: String, reason: String },
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("write-ahead log: {0}")]
    Wal(#[from] iris_ingest::wal::WalError),
    #[error("{0}")]
    WalCorrupt(#[from] crate::wal_replay::WalCorrupt),
    /// `iris recover` found damage whose loss cannot be named and was not told to accept that.
    #[error(
        "the write-ahead log lost acknowledged events that cannot be identified:\n{0}\nNothing was sealed. Run `iris recover --accept-unidentified-loss` to seal every intact frame and record this loss (by segment and offset) in the chain; `iris verify` will report it as LOST"
    )]
    UnidentifiedLoss(String),
    /// `iris source reset` refused: the reset would hide numbers or jam the source.
    #[error("source reset refused: {0}")]
    ResetRefused(String),
    #[error("{0}")]
    Other(String),
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }

    pub(crate) fn json(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> StoreError {
        let what = what.into();
        move |source| StoreError::Json { what, source }
    }
}
