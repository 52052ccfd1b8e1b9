//! A seal: the signed record that a partition, with these bytes and these sequence numbers, is part of
//! the log. Each seal names the digest of the previous one, so the seals form a hash chain.

use crate::keys::{KeyInfo, Signer};
use iris_ingest::event::ts_rfc3339;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of the first seal.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a sealed partition holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SealKind {
    /// Audit events (`events/`).
    #[default]
    Events,
    /// Refused records (`rejections/`): their sequence numbers are accounted for.
    Rejections,
    /// Event partitions rewritten into larger sorted files (`compacted/`): names the digests of the
    /// files it replaced and of the files it wrote.
    Compaction,
    /// A partition of a statistics table (`tables/<table>/quarter=…/`), e.g. the labour-market
    /// declarations: `source` names the table, `day` the quarter. No sequence numbers.
    Table,
    /// A lookup index rebuilt by `iris reindex`: `path` names the partition, `sha256` and `bytes` the new
    /// index blob, which from then on is the one `verify` and queries accept.
    Index,
    /// Acknowledged events lost to damage in the write-ahead log, recorded by `iris recover`: `source` and
    /// `seq_ranges` name what was lost, `path` the damaged segment and offset, `note` the details. `verify`
    /// reports them as `LOST` (never as a collector's gap).
    Loss,
    /// An administrator moved a source's next expected number (`iris source reset`): `next_seq` is the
    /// new next number, `seq_ranges` the numbers it skips (accounted for), `note` who and why.
    Reset,
    /// A new signing key (`iris keygen` on a store that has one): `key` names it (id, public key,
    /// valid from), and the seal is signed by the OUTGOING key. Every later seal is signed by the new
    /// one; `verify` trusts a key only if such an entry, signed by its predecessor, introduced it.
    Rotation,
    /// A retention run (`iris retention --before DATE`): `pruned` names every file deleted (with its
    /// digests), `day` the cut-off date, `note` the event range and who ran it. `verify` reports those
    /// files as `PRUNED`; their seals and Merkle heads stay in the log.
    Retention,
}

/// A file named by a compaction seal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// Path relative to the store prefix.
    pub path: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    pub rows: u64,
    pub bytes: u64,
    /// SHA-256 of the file's lookup index blob, hex (compacted files written since index digests are
    /// sealed; absent otherwise).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub index_sha256: String,
}

/// One link of the chain. `Seal::default()` is a blank to fill: the sealer numbers, links and signs it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Seal {
    /// Position in the chain, from 0.
    pub n: u64,
    pub kind: SealKind,
    /// Partition path relative to the store prefix.
    pub path: String,
    pub day: String,
    pub source: String,
    pub rows: u64,
    pub bytes: u64,
    /// `source_seq` values in the partition, as inclusive ranges.
    pub seq_ranges: Vec<[u64; 2]>,
    /// SHA-256 of the partition's bytes, hex.
    pub sha256: String,
    /// Digest of the previous seal ([`GENESIS`] for the first).
    pub prev: String,
    #[serde(with = "ts_rfc3339")]
    pub sealed_at: i64,
    pub key_id: String,
    /// Compaction seals only: the sealed files this one replaces (absent from other seals, so their signed
    /// bytes are unchanged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced: Vec<FileDigest>,
    /// Compaction seals only: the files written in their place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub written: Vec<FileDigest>,
    /// Event partitions: SHA-256 of the lookup index blob written with it (absent from seals made before
    /// index digests were sealed, so their signed bytes are unchanged).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub index_sha256: String,
    /// Reset seals: the next number expected from the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_seq: Option<u64>,
    /// Rotation seals: the key introduced (absent elsewhere, so other seals' signed bytes are unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyInfo>,
    /// Retention seals: the files deleted, with their digests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<FileDigest>,
    /// Loss and reset seals: what happened, in words.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// ed25519 signature (hex) over [`Seal::signed_bytes`].
    #[serde(default)]
    pub signature: String,
}

impl Seal {
    /// The bytes the signature covers: the canonical JSON of every field but the signature.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut unsigned = self.clone();
        unsigned.signature.clear();
        serde_json::to_vec(&unsigned).expect("a seal always serializes")
    }

    /// Signs the seal in place.
    pub fn sign(&mut self, signer: &Signer) {
        self.key_id = signer.id.clone();
        self.signature = signer.sign(&self.signed_bytes());
    }

    /// Canonical JSON of the whole seal (what is stored).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a seal always serializes")
    }

    /// Digest of the whole seal, signature included: the next seal's `prev`.
    pub fn digest(&self) -> String {
        sha256_hex(&self.to_json())
    }
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
