//! The live files of the store, derived from the chain: what each seal added, minus what compactions
//! replaced. Queries read exactly these files (never a file written a moment before its seal, never one
//! a compaction replaced), `verify` checks them, `reindex` indexes them.

use crate::chain::read_chain;
use crate::error::StoreError;
use crate::layout::seal_path;
use crate::location::StoreLocation;
use crate::seal::{Seal, SealKind};
use object_store::ObjectStoreExt;
use std::collections::BTreeMap;

/// What a live file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// An event partition of one day and one source (`events/`).
    Events,
    /// A rejection-log partition (`rejections/`).
    Rejections,
    /// A compacted event file of one month and one subject bucket (`compacted/`).
    Compacted,
    /// A partition of a statistics table (`tables/`).
    Table,
}

/// A file the chain says is part of the log now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveFile {
    pub kind: FileKind,
    /// SHA-256 sealed for it.
    pub sha256: String,
    pub rows: u64,
    pub bytes: u64,
    /// The seal that added it.
    pub seal: u64,
    /// SHA-256 of its lookup index blob as last sealed (with the file, or by a later index seal);
    /// `None` for files sealed before index digests were.
    pub index_sha256: Option<String>,
}

impl LiveFile {
    /// Whether it holds events (daily or compacted).
    pub fn is_events(&self) -> bool {
        matches!(self.kind, FileKind::Events | FileKind::Compacted)
    }
}

/// Why a compaction seal does not fit the chain before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactionMismatch {
    /// The file the compaction names.
    pub path: String,
    pub why: String,
}

/// The live files after a prefix of the chain.
#[derive(Clone, Debug, Default)]
pub struct Manifest {
    /// Live files by relative path.
    pub files: BTreeMap<String, LiveFile>,
    /// Files a compaction replaced, with the seal that did.
    pub replaced: BTreeMap<String, u64>,
    /// Files a retention run deleted, with the seal that did (their seals stay in the log).
    pub pruned: BTreeMap<String, u64>,
    /// Number of seals applied.
    pub seals: u64,
}

impl Manifest {
    /// The manifest of a whole chain.
    pub fn from_seals(seals: &[Seal]) -> Manifest {
        let mut m = Manifest::default();
        for s in seals {
            // A mismatching compaction is reported by `verify`; the live set still follows the chain.
            let _ = m.apply(s);
        }
        m
    }

    /// Applies the next seal. For a compaction or a retention run, returns what does not match the
    /// files it replaces or prunes (a file not live, or live with other bytes); the seal is applied
    /// anyway.
    pub fn apply(&mut self, seal: &Seal) -> Vec<CompactionMismatch> {
        self.seals = self.seals.max(seal.n + 1);
        let mut mismatches = Vec::new();
        match seal.kind {
            SealKind::Events | SealKind::Rejections | SealKind::Table => {
                let kind = match seal.kind {
                    SealKind::Events => FileKind::Events,
                    SealKind::Rejections => FileKind::Rejections,
                    _ => FileKind::Table,
                };
                self.files.insert(
                    seal.path.clone(),
                    LiveFile {
                        kind,
                        sha256: seal.sha256.clone(),
                        rows: seal.rows,
                        bytes: seal.bytes,
                        seal: seal.n,
                        index_sha256: Some(seal.index_sha256.clone()).filter(|s| !s.is_empty()),
                    },
                );
            }
            SealKind::Index => {
                if let Some(f) = self.files.get_mut(&seal.path) {
                    f.index_sha256 = Some(seal.sha256.clone());
                }
            }
            SealKind::Loss | SealKind::Reset | SealKind::Rotation => {}
            SealKind::Retention => {
                for p in &seal.pruned {
                    match self.files.remove(&p.path) {
                        None => mismatches.push(CompactionMismatch {
                            path: p.path.clone(),
                            why: "pruned, but not a live file".into(),
                        }),
                        Some(f) if f.sha256 != p.sha256 || f.rows != p.rows => {
                            mismatches.push(CompactionMismatch {
                                path: p.path.clone(),
                                why: format!(
                                    "pruned as sha256 {}… ({} rows), sealed by seal #{} as {}… ({} rows)",
                                    short(&p.sha256),
                                    p.rows,
                                    f.seal,
                                    short(&f.sha256),
                                    f.rows
                                ),
                            })
                        }
                        Some(_) => {}
                    }
                    self.pruned.insert(p.path.clone(), seal.n);
                }
            }
            SealKind::Compaction => {
                for r in &seal.replaced {
                    match self.files.remove(&r.path) {
                        None => mismatches.push(CompactionMismatch {
                            path: r.path.clone(),
                            why: match self.replaced.get(&r.path) {
                                Some(by) => format!("already replaced by seal #{by}"),
                                None => "no earlier seal names it".into(),
                            },
                        }),
                        Some(f) if !f.is_events() => mismatches.push(CompactionMismatch {
                            path: r.path.clone(),
                            why: "not an event file".into(),
                        }),
                        Some(f) if f.sha256 != r.sha256 || f.rows != r.rows => {
                            mismatches.push(CompactionMismatch {
                                path: r.path.clone(),
                                why: format!(
                                    "replaced as sha256 {}… ({} rows), sealed by seal #{} as {}… ({} rows)",
                                    short(&r.sha256),
                                    r.rows,
                                    f.seal,
                                    short(&f.sha256),
                                    f.rows
                                ),
                            })
                        }
                        Some(_) => {}
                    }
                    self.replaced.insert(r.path.clone(), seal.n);
                }
                for w in &seal.written {
                    self.files.insert(
                        w.path.clone(),
                        LiveFile {
                            kind: FileKind::Compacted,
                            sha256: w.sha256.clone(),
                            rows: w.rows,
                            bytes: w.bytes,
                            seal: seal.n,
                            index_sha256: Some(w.index_sha256.clone()).filter(|s| !s.is_empty()),
                        },
                    );
                }
                let before: u64 = seal.replaced.iter().map(|f| f.rows).sum();
                let after: u64 = seal.written.iter().map(|f| f.rows).sum();
                if before != after {
                    mismatches.push(CompactionMismatch {
                        path: seal.path.clone(),
                        why: format!("replaces {before} rows with {after}"),
                    });
                }
            }
        }
        mismatches
    }

    /// Every path any seal ever named (live or replaced): a file outside this set is unsealed.
    pub fn is_named(&self, path: &str) -> bool {
        self.files.contains_key(path)
            || self.replaced.contains_key(path)
            || self.pruned.contains_key(path)
    }

    /// The live event files (daily and compacted).
    pub fn event_files(&self) -> impl Iterator<Item = (&String, &LiveFile)> {
        self.files.iter().filter(|(_, f)| f.is_events())
    }

    /// Reads the manifest of the whole chain.
    pub async fn read(loc: &StoreLocation) -> Result<Manifest, StoreError> {
        Ok(Manifest::from_seals(&read_chain(loc).await?))
    }

    /// Applies the seals added since this manifest was read (one `GET` when nothing changed). Returns
    /// whether anything changed.
    pub async fn refresh(&mut self, loc: &StoreLocation) -> Result<bool, StoreError> {
        if self.seals == 0 {
            *self = Manifest::read(loc).await?;
            return Ok(self.seals > 0);
        }
        let mut changed = false;
        loop {
            let path = loc.path(&seal_path(self.seals));
            let bytes = match loc.store.get(&path).await {
                Ok(r) => r.bytes().await?,
                Err(object_store::Error::NotFound { .. }) => return Ok(changed),
                Err(e) => return Err(e.into()),
            };
            let seal: Seal =
                serde_json::from_slice(&bytes).map_err(StoreError::json(seal_path(self.seals)))?;
            if seal.n != self.seals {
                return Err(StoreError::Other(format!(
                    "{}: holds seal #{}; run `iris verify`",
                    seal_path(self.seals),
                    seal.n
                )));
            }
            self.apply(&seal);
            changed = true;
        }
    }
}

fn short(sha: &str) -> &str {
    sha.get(..16).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::FileDigest;

    fn seal(n: u64, kind: SealKind, path: &str, sha: &str, rows: u64) -> Seal {
        Seal {
            n,
            kind,
            path: path.into(),
            day: "2025-03-01".into(),
            source: "hub".into(),
            rows,
            bytes: 100,
            seq_ranges: vec![[1, rows]],
            sha256: sha.into(),
            ..Seal::default()
        }
    }

    fn digest(path: &str, sha: &str, rows: u64) -> FileDigest {
        FileDigest {
            path: path.into(),
            sha256: sha.into(),
            rows,
            bytes: 100,
            ..FileDigest::default()
        }
    }

    #[test]
    fn compaction_replaces_live_files_and_names_every_mismatch() {
        let mut m = Manifest::default();
        assert!(
            m.apply(&seal(0, SealKind::Events, "events/a", "aa", 3))
                .is_empty()
        );
        assert!(
            m.apply(&seal(1, SealKind::Events, "events/b", "bb", 2))
                .is_empty()
        );
        assert!(
            m.apply(&seal(2, SealKind::Rejections, "rejections/r", "rr", 1))
                .is_empty()
        );
        let mut c = seal(3, SealKind::Compaction, "compacted/month=2025-03", "", 5);
        c.replaced = vec![digest("events/a", "aa", 3), digest("events/b", "bb", 2)];
        c.written = vec![digest("compacted/x", "xx", 5)];
        assert!(m.apply(&c).is_empty());
        assert_eq!(
            m.files.keys().collect::<Vec<_>>(),
            ["compacted/x", "rejections/r"]
        );
        assert!(m.is_named("events/a"), "a replaced file is still named");
        assert_eq!(m.files["compacted/x"].kind, FileKind::Compacted);

        // Replacing again, other bytes, a rejection file, an unknown file, rows not kept.
        let mut bad = seal(4, SealKind::Compaction, "compacted/month=2025-03", "", 9);
        bad.replaced = vec![
            digest("events/a", "aa", 3),
            digest("compacted/x", "other", 5),
            digest("rejections/r", "rr", 1),
            digest("events/nowhere", "nn", 1),
        ];
        bad.written = vec![digest("compacted/y", "yy", 4)];
        let why: Vec<String> = m
            .apply(&bad)
            .into_iter()
            .map(|x| format!("{}: {}", x.path, x.why))
            .collect();
        assert_eq!(why.len(), 5, "{why:?}");
        assert!(why[0].contains("already replaced by seal #3"), "{why:?}");
        assert!(why[1].contains("sealed by seal #3"), "{why:?}");
        assert!(why[2].contains("not an event file"), "{why:?}");
        assert!(why[3].contains("no earlier seal names it"), "{why:?}");
        assert!(why[4].contains("replaces 10 rows with 4"), "{why:?}");
    }
}
