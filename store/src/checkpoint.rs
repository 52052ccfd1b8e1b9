//! Checkpoints: the signed head of the chain, exported to be kept elsewhere. Checked later, it shows
//! that the chain was not cut short or rewritten since.

use crate::error::StoreError;
use crate::keys::{Keyring, Signer};
use crate::seal::Seal;
use iris_ingest::event::ts_rfc3339;
use serde::{Deserialize, Serialize};

/// The chain's length and last seal digest at one moment, signed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Number of seals in the chain.
    pub seals: u64,
    /// Digest of the last seal (of seal `seals - 1`).
    pub head: String,
    #[serde(with = "ts_rfc3339")]
    pub created: i64,
    pub key_id: String,
    #[serde(default)]
    pub signature: String,
}

impl Checkpoint {
    /// A signed checkpoint of `seals`.
    pub fn of(seals: &[Seal], signer: &Signer) -> Checkpoint {
        let mut c = Checkpoint {
            seals: seals.len() as u64,
            head: seals
                .last()
                .map(Seal::digest)
                .unwrap_or_else(|| crate::seal::GENESIS.to_owned()),
            created: chrono::Utc::now().timestamp_micros(),
            key_id: signer.id.clone(),
            signature: String::new(),
        };
        c.signature = signer.sign(&c.signed_bytes());
        c
    }

    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut unsigned = self.clone();
        unsigned.signature.clear();
        serde_json::to_vec(&unsigned).expect("a checkpoint always serializes")
    }

    /// Reads a checkpoint file.
    pub fn load(path: &std::path::Path) -> Result<Checkpoint, StoreError> {
        let bytes = std::fs::read(path).map_err(StoreError::io(path))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            StoreError::Checkpoint(format!("{}: not a checkpoint: {e}", path.display()))
        })
    }

    /// Checks the checkpoint's own signature against the keyring.
    pub fn check_signature(&self, ring: &Keyring) -> Result<(), String> {
        let key = ring
            .get(&self.key_id)
            .ok_or_else(|| format!("signed by unknown key `{}`", self.key_id))?;
        if !key.verify(&self.signed_bytes(), &self.signature) {
            return Err(format!("bad signature (key `{}`)", self.key_id));
        }
        Ok(())
    }
}
