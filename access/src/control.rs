//! The directory and the policies as one reloadable state: files are re-read when they change; a
//! file that no longer parses is reported and the last good state stays in force.

use crate::AccessError;
use crate::decision::{Decision, Request, decide};
use crate::directory::Directory;
use crate::policies::Policies;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The files, relative to the access directory.
pub const FILES: [&str; 6] = [
    "directory/institutions.csv",
    "directory/users.csv",
    "directory/supervision.csv",
    "policies/deliberations.toml",
    "policies/citizen.toml",
    "policies/projects.toml",
];

/// A policy or directory file whose content changed (to be logged as an event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileChange {
    /// The file, relative to the access directory.
    pub file: String,
    /// SHA-256 of its new content.
    pub sha256: String,
}

/// The loaded state.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub directory: Arc<Directory>,
    pub policies: Arc<Policies>,
}

struct State {
    snapshot: Snapshot,
    /// Content changes not yet taken by [`AccessControl::take_changes`].
    pending: Vec<FileChange>,
    mtimes: Vec<Option<SystemTime>>,
    digests: BTreeMap<String, String>,
    error: Option<String>,
}

/// Access control over one directory of files.
pub struct AccessControl {
    dir: PathBuf,
    state: Mutex<State>,
}

impl AccessControl {
    /// Loads the files of `dir` (`directory/*.csv`, `policies/*.toml`); the first load must succeed.
    pub fn open(dir: &Path) -> Result<AccessControl, AccessError> {
        let (snapshot, digests) = load(dir)?;
        // The versions in force at start are logged too: a change made while Iris was down is
        // then visible in the chain as well.
        let pending = digests
            .iter()
            .map(|(f, d)| FileChange {
                file: f.clone(),
                sha256: d.clone(),
            })
            .collect();
        Ok(AccessControl {
            dir: dir.to_owned(),
            state: Mutex::new(State {
                snapshot,
                pending,
                mtimes: mtimes(dir),
                digests,
                error: None,
            }),
        })
    }

    /// Access control with nothing loaded yet (no directory, no deliberations: only admin, auditor and
    /// collector tokens can do anything); the files are picked up as soon as they appear.
    pub fn empty(dir: &Path) -> AccessControl {
        AccessControl {
            dir: dir.to_owned(),
            state: Mutex::new(State {
                snapshot: Snapshot {
                    directory: Arc::new(Directory::default()),
                    policies: Arc::new(Policies::none()),
                },
                pending: Vec::new(),
                mtimes: vec![None; FILES.len()],
                digests: BTreeMap::new(),
                error: None,
            }),
        }
    }

    /// The directory the files are read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state in force, re-read first if a file changed. When the new files are broken, the last
    /// good state stays and [`AccessControl::last_error`] says why.
    pub fn refresh(&self) -> Snapshot {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = mtimes(&self.dir);
        if now == state.mtimes {
            return state.snapshot.clone();
        }
        state.mtimes = now;
        match load(&self.dir) {
            Ok((snapshot, digests)) => {
                let changes: Vec<FileChange> = digests
                    .iter()
                    .filter(|(f, d)| state.digests.get(*f) != Some(d))
                    .map(|(f, d)| FileChange {
                        file: f.clone(),
                        sha256: d.clone(),
                    })
                    .collect();
                state.pending.extend(changes);
                state.snapshot = snapshot;
                state.digests = digests;
                state.error = None;
            }
            Err(e) => {
                tracing::error!("access files not reloaded, the last good ones stay in force: {e}");
                state.error = Some(e.to_string());
            }
        }
        state.snapshot.clone()
    }

    /// The files whose content changed since the last call (to be logged).
    pub fn take_changes(&self) -> Vec<FileChange> {
        std::mem::take(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()).pending)
    }

    /// Why the last reload failed, if it did.
    pub fn last_error(&self) -> Option<String> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .error
            .clone()
    }

    /// Decides one request on the current state.
    pub fn decide(&self, req: &Request<'_>) -> Decision {
        let s = self.refresh();
        decide(&s.directory, &s.policies, req)
    }
}

fn mtimes(dir: &Path) -> Vec<Option<SystemTime>> {
    FILES
        .iter()
        .map(|f| {
            std::fs::metadata(dir.join(f))
                .and_then(|m| m.modified())
                .ok()
        })
        .collect()
}

fn load(dir: &Path) -> Result<(Snapshot, BTreeMap<String, String>), AccessError> {
    let directory = Directory::load(&dir.join("directory"))?;
    let policies = Policies::load(&dir.join("policies"))?;
    let mut digests = BTreeMap::new();
    for f in FILES {
        let path = dir.join(f);
        let bytes = std::fs::read(&path).map_err(|e| AccessError::file(&path, e.to_string()))?;
        digests.insert(f.to_owned(), hex::encode(Sha256::digest(&bytes)));
    }
    Ok((
        Snapshot {
            directory: Arc::new(directory),
            policies: Arc::new(policies),
        },
        digests,
    ))
}
