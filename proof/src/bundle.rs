//! The inclusion proof of events: a self-contained JSON bundle checked offline, without the store.
//!
//! For each event: the event, its canonical leaf, its row in its sealed file and the audit path to
//! that file's tree head; the seal (as stored), the heads of the files it seals and the seal's audit
//! path to the head of the log; and once, the signed checkpoint of the log. Checking needs nothing
//! but the bundle and the log's public key.

use crate::ProofError;
use crate::leaf::{FileRoot, LeafEvent, seal_leaf};
use crate::merkle::{Hash, verify_inclusion};
use crate::note::{NoteVerifier, SignedCheckpoint};
use iris_store::seal::{Seal, SealKind};
use serde::{Deserialize, Serialize};

/// The `format` of a bundle.
pub const FORMAT: &str = "iris-proof-v1";

/// A proof bundle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Always [`FORMAT`].
    pub format: String,
    /// The signed checkpoint (C2SP tlog-checkpoint) every proof leads to.
    pub checkpoint: String,
    /// One proof per event.
    pub proofs: Vec<EventProof>,
}

/// The proof of one event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventProof {
    /// The event.
    pub event: LeafEvent,
    /// Its canonical leaf, hex (see [`crate::leaf`]).
    pub leaf: String,
    /// The sealed file that holds it (relative path).
    pub file: String,
    /// Its row in the file: its leaf index.
    pub row: u64,
    /// Audit path from the event's leaf to the file's tree head.
    #[serde(with = "crate::hexhash::list")]
    pub file_path: Vec<Hash>,
    /// The seal that brought the file into the log, exactly as stored.
    pub seal: String,
    /// Heads of the event files that seal brought in (its leaf commits to them).
    pub file_roots: Vec<FileRoot>,
    /// Which of `file_roots` is `file`'s.
    pub file_index: u32,
    /// Audit path from the seal's leaf to the checkpoint's head.
    #[serde(with = "crate::hexhash::list")]
    pub log_path: Vec<Hash>,
}

/// What a bundle proves, once checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The log's origin.
    pub origin: String,
    /// The checkpoint's tree size (seals).
    pub size: u64,
    /// The checkpoint's head.
    pub root: Hash,
    /// Each proven event with the number of its seal.
    pub events: Vec<(LeafEvent, u64)>,
}

/// The verifier key for `key`: a signed-note verifier key (`NAME+HASH+KEY`) or the 64 hex digits of
/// an Ed25519 public key (as in `keys/keyring.json`), then named `origin`.
pub fn verifier_for(key: &str, origin: &str) -> Result<NoteVerifier, ProofError> {
    let key = key.trim();
    if key.contains('+') {
        return NoteVerifier::parse(key);
    }
    let raw: [u8; 32] = hex::decode(key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            ProofError::Note("a key is NAME+HASH+KEY or 64 hex digits of an Ed25519 key".into())
        })?;
    NoteVerifier::new(origin, raw)
}

fn bad(why: impl Into<String>) -> ProofError {
    ProofError::Bundle(why.into())
}

impl Bundle {
    /// Parses a bundle (strict: no unknown field, canonical hex).
    pub fn parse(bytes: &[u8]) -> Result<Bundle, ProofError> {
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not a proof bundle: {e}")))
    }

    /// Checks everything: the checkpoint's signature by `key` (see [`verifier_for`]), and for each
    /// event its leaf, its path to its file's head, that the seal names the file (and, for a
    /// partition, the event's source and number), and the seal's path to the checkpoint's head.
    pub fn verify(&self, key: &str) -> Result<Verified, ProofError> {
        if self.format != FORMAT {
            return Err(bad(format!(
                "format `{}`, expected `{FORMAT}`",
                self.format
            )));
        }
        let unsigned = SignedCheckpoint::parse(&self.checkpoint)?;
        let verifier = verifier_for(key, &unsigned.body.origin)?;
        let cp = SignedCheckpoint::open(&self.checkpoint, &verifier)?;
        if self.proofs.is_empty() {
            return Err(bad("no event proven"));
        }
        let mut events = Vec::with_capacity(self.proofs.len());
        for (i, p) in self.proofs.iter().enumerate() {
            let n = p.verify(&cp).map_err(|e| {
                bad(format!(
                    "proof #{i} ({}:{}): {e}",
                    p.event.source, p.event.source_seq
                ))
            })?;
            events.push((p.event.clone(), n));
        }
        Ok(Verified {
            origin: cp.body.origin,
            size: cp.body.size,
            root: cp.body.root,
            events,
        })
    }
}

impl EventProof {
    /// Checks this event against a checkpoint whose signature was checked; returns its seal number.
    fn verify(&self, cp: &SignedCheckpoint) -> Result<u64, ProofError> {
        let leaf = self.event.leaf();
        if self.leaf != hex::encode(&leaf) {
            return Err(bad("`leaf` is not the canonical leaf of `event`"));
        }
        let seal: Seal = serde_json::from_str(&self.seal).map_err(|e| bad(format!("seal: {e}")))?;
        if seal.to_json() != self.seal.as_bytes() {
            return Err(bad("seal is not as stored (canonical JSON)"));
        }
        let fi = self.file_index as usize;
        let froot = self
            .file_roots
            .get(fi)
            .ok_or_else(|| bad("file_index outside file_roots"))?;
        match seal.kind {
            SealKind::Events => {
                if self.file_roots.len() != 1 || seal.path != self.file || seal.rows != froot.rows {
                    return Err(bad("the seal does not name this file with these rows"));
                }
                if seal.source != self.event.source
                    || !seal
                        .seq_ranges
                        .iter()
                        .any(|[a, b]| (*a..=*b).contains(&self.event.source_seq))
                {
                    return Err(bad("the seal does not cover this source and number"));
                }
            }
            SealKind::Compaction => {
                let w = seal
                    .written
                    .get(fi)
                    .ok_or_else(|| bad("the compaction wrote no such file"))?;
                if self.file_roots.len() != seal.written.len()
                    || w.path != self.file
                    || w.rows != froot.rows
                {
                    return Err(bad(
                        "the compaction does not name this file with these rows",
                    ));
                }
            }
            other => return Err(bad(format!("a {other:?} seal holds no events"))),
        }
        verify_inclusion(&leaf, self.row, froot.rows, &self.file_path, &froot.root)
            .map_err(|e| bad(format!("event in its file: {e}")))?;
        let sl = seal_leaf(&self.file_roots, self.seal.as_bytes());
        verify_inclusion(&sl, seal.n, cp.body.size, &self.log_path, &cp.body.root)
            .map_err(|e| bad(format!("seal #{} in the log: {e}", seal.n)))?;
        Ok(seal.n)
    }
}
