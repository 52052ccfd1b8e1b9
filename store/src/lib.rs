//! Iris store: sealed, hash-chained Parquet partitions on an `object_store` (DESIGN §3).
//!
//! `location` opens the store (local directory, in-memory, S3); `partition` writes events as Hive-style
//! Parquet; `keys` manages the ed25519 signing keys; `seal` and `chain` form the append-only signed chain;
//! `wal_replay` decides what write-ahead-log bytes mean (torn tail or corruption); `sealer` turns them into
//! sealed partitions; `verify` and `checkpoint` check them, `trust` derives the trusted keys from the
//! chain's rotation entries; `retention` prunes expired files under a signed entry.

pub mod chain;
pub mod checkpoint;
pub mod compact;
mod concurrent;
pub mod datadir;
pub mod error;
pub mod keys;
pub mod layout;
pub mod location;
pub mod manifest;
pub mod partition;
pub mod reindex;
pub mod retention;
pub mod schema;
pub mod seal;
pub mod sealer;
pub mod trust;
pub mod verify;
pub mod wal_replay;
pub mod warehouse;

pub use error::StoreError;
pub use location::StoreLocation;
