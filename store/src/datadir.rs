//! The data directory: where a local Iris keeps its store, write-ahead log, keys and tokens.
//!
//! ```text
//! iris-data/
//!   store/        the object store root when no --store URL is given (partitions and chain)
//!   store-url     the --store URL last used, so later commands find the same store
//!   wal/          write-ahead log segments not yet sealed (wal-N.log) and how far each is acknowledged (wal-N.ack)
//!   wal-damaged/  segments `iris recover` salvaged, kept as evidence
//!   wal-mirror    the directory of the WAL's second copy, when one was given (--wal-mirror)
//!   keys/         keyring.json (public) and <id>.secret (signing seeds, owner-only)
//!   tokens.json   API tokens, stored hashed
//!   LOCK          held by the one process that writes (serve, import, seal)
//! ```

use crate::error::StoreError;
use crate::keys::KeyDir;
use crate::location::StoreLocation;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Paths of one data directory.
#[derive(Clone, Debug)]
pub struct DataDir {
    pub root: PathBuf,
    store_url: Option<String>,
    /// Largest step a source's `source_seq` may take (None: the default, 10⁹).
    pub max_seq_jump: Option<u64>,
    /// A second write-ahead log directory given on the command line (another device).
    wal_mirror: Option<PathBuf>,
}

/// Held while a process writes to the data directory; released on drop.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DataDir {
    /// A data directory, with an optional store URL (else the one recorded, else `root/store`).
    pub fn new(root: impl Into<PathBuf>, store_url: Option<String>) -> DataDir {
        DataDir {
            root: root.into(),
            store_url,
            max_seq_jump: None,
            wal_mirror: None,
        }
    }

    /// The same directory, keeping a second copy of the write-ahead log in `mirror` (recorded in
    /// `DATA/wal-mirror` so later commands use it too).
    pub fn with_wal_mirror(mut self, mirror: Option<PathBuf>) -> DataDir {
        self.wal_mirror = mirror;
        self
    }

    /// The write-ahead log mirror in force: given, or recorded by an earlier command.
    pub fn wal_mirror_dir(&self) -> Option<PathBuf> {
        self.wal_mirror.clone().or_else(|| {
            std::fs::read_to_string(self.root.join("wal-mirror"))
                .ok()
                .map(|s| PathBuf::from(s.trim()))
                .filter(|p| !p.as_os_str().is_empty())
        })
    }

    /// The same directory, refusing `source_seq` steps larger than `max_jump` when it ingests.
    pub fn with_max_seq_jump(mut self, max_jump: Option<u64>) -> DataDir {
        self.max_seq_jump = max_jump;
        self
    }

    /// Creates the directory if needed, recording a given store URL for later commands.
    pub fn create(&self) -> Result<(), StoreError> {
        std::fs::create_dir_all(&self.root).map_err(StoreError::io(&self.root))?;
        if let Some(url) = &self.store_url {
            let path = self.root.join("store-url");
            std::fs::write(&path, url).map_err(StoreError::io(&path))?;
        }
        if let Some(mirror) = &self.wal_mirror {
            let path = self.root.join("wal-mirror");
            std::fs::write(&path, mirror.to_string_lossy().as_bytes())
                .map_err(StoreError::io(&path))?;
        }
        Ok(())
    }

    /// The store URL in force: given, recorded, or the local default.
    pub fn store_url(&self) -> Option<String> {
        self.store_url.clone().or_else(|| {
            std::fs::read_to_string(self.root.join("store-url"))
                .ok()
                .map(|s| s.trim().to_owned())
        })
    }

    /// Opens the object store, recording a given URL for later commands.
    pub fn store(&self) -> Result<StoreLocation, StoreError> {
        match self.store_url() {
            Some(url) => {
                let loc = StoreLocation::from_url(&url)?;
                if self.store_url.is_some() && self.root.is_dir() {
                    let path = self.root.join("store-url");
                    std::fs::write(&path, &url).map_err(StoreError::io(&path))?;
                }
                Ok(loc)
            }
            None => StoreLocation::local(&self.root.join("store")),
        }
    }

    /// The write-ahead log directory.
    pub fn wal_dir(&self) -> PathBuf {
        self.root.join("wal")
    }

    /// The keys.
    pub fn keys(&self) -> KeyDir {
        KeyDir {
            dir: self.root.join("keys"),
        }
    }

    /// The token file.
    pub fn tokens_path(&self) -> PathBuf {
        self.root.join("tokens.json")
    }

    /// Takes the writer lock, or says which process holds it.
    pub fn lock(&self) -> Result<DirLock, StoreError> {
        self.create()?;
        let path = self.root.join("LOCK");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(StoreError::io(&path))?;
        if file.try_lock().is_err() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(StoreError::Other(format!(
                "data directory {} is in use by another Iris process ({}); stop it, or send events to its HTTP API",
                self.root.display(),
                holder.trim()
            )));
        }
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| write!(file, "pid {}", std::process::id()));
        Ok(DirLock { _file: file })
    }
}

/// Whether `path` exists and has entries.
pub fn non_empty(path: &Path) -> bool {
    std::fs::read_dir(path)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
}
