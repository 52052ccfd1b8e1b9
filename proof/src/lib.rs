//! Proofs anyone can check (issue 16).
//!
//! - [`merkle`]: RFC 9162 Merkle trees, inclusion and consistency proofs (verified with `ct-merkle`).
//! - [`leaf`]: the canonical leaf of an event and of a seal.
//! - [`note`]: C2SP signed notes and `tlog-checkpoint` bodies (Ed25519).
//! - [`bundle`]: the self-contained inclusion proof of events, checked offline.
//! - [`witness`]: a C2SP tlog-witness and cosignatures.
//! - [`log`]: the trees of a store — one per event file, one over the seals — checkpoints and proofs.
//! - [`request`]: a bundle on request, its events found within the caller's scope.

pub mod bundle;
pub mod leaf;
pub mod log;
pub mod merkle;
pub mod note;
pub mod request;
pub mod witness;

/// Why a proof, a note or a checkpoint does not hold, or could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// An inclusion proof does not lead to the expected head.
    #[error("inclusion proof does not verify: {0}")]
    Inclusion(String),
    /// A consistency proof does not hold.
    #[error("consistency proof does not verify: {0}")]
    Consistency(String),
    /// A signed note is malformed or its signature does not verify.
    #[error("signed note: {0}")]
    Note(String),
    /// A checkpoint's text is malformed or does not fit.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A proof bundle is malformed or does not hold together.
    #[error("proof bundle: {0}")]
    Bundle(String),
    /// A request for a proof is malformed or too large.
    #[error("{0}")]
    Request(String),
    /// The store does not hold what a proof needs.
    #[error("{0}")]
    Store(String),
    /// An error of the store layer.
    #[error(transparent)]
    StoreError(#[from] iris_store::StoreError),
    /// A file of the store could not be decoded.
    #[error("{path}: {reason}")]
    File {
        /// Relative path of the file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Serde of a [`merkle::Hash`] as lowercase hex (only the canonical spelling is accepted).
pub mod hexhash {
    use crate::merkle::Hash;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes lowercase hex.
    pub fn serialize<S: Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(h))
    }

    /// Reads 64 lowercase hex digits.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }

    /// Parses 64 lowercase hex digits.
    pub fn parse(s: &str) -> Result<Hash, String> {
        let bytes = hex::decode(s).map_err(|e| format!("hash {s:?}: {e}"))?;
        let h: Hash = bytes
            .try_into()
            .map_err(|_| format!("hash {s:?}: not 32 bytes"))?;
        if hex::encode(h) != s {
            return Err(format!("hash {s:?}: not lowercase hex"));
        }
        Ok(h)
    }

    /// A list of hashes.
    pub mod list {
        use crate::merkle::Hash;
        use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};

        /// Writes a list of lowercase hex strings.
        pub fn serialize<S: Serializer>(hs: &[Hash], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(hs.len()))?;
            for h in hs {
                seq.serialize_element(&hex::encode(h))?;
            }
            seq.end()
        }

        /// Reads a list of lowercase hex strings.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
            Vec::<String>::deserialize(d)?
                .iter()
                .map(|s| super::parse(s).map_err(serde::de::Error::custom))
                .collect()
        }
    }
}
