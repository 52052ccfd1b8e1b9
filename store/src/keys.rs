//! ed25519 signing keys: `<id>.secret` (32 seed bytes, hex, owner-only; in `$IRIS_SECRET_DIR`, else
//! `keys/`) and the public `keys/keyring.json`. The keyring is a cache: `verify` derives the trusted
//! keys from the chain (the genesis key, then each key a rotation seal signed by its predecessor
//! introduced; see `crate::trust`). A rotation ends the validity of the previous key.

use crate::error::StoreError;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use iris_ingest::event::ts_rfc3339;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A public key and the period in which seals signed by it are valid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub id: String,
    /// Hex of the 32-byte ed25519 public key.
    pub public_key: String,
    #[serde(with = "ts_rfc3339")]
    pub valid_from: i64,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_ts")]
    pub valid_until: Option<i64>,
}

impl KeyInfo {
    /// Whether a signature made at `at` (µs) falls in the key's validity.
    pub fn valid_at(&self, at: i64) -> bool {
        at >= self.valid_from && self.valid_until.is_none_or(|until| at <= until)
    }

    /// The decoded public key.
    pub fn verifying_key(&self) -> Result<VerifyingKey, StoreError> {
        let bad = |reason: String| StoreError::Key {
            id: self.id.clone(),
            reason,
        };
        let bytes: [u8; 32] = hex::decode(&self.public_key)
            .map_err(|e| bad(e.to_string()))?
            .try_into()
            .map_err(|_| bad("public key is not 32 bytes".into()))?;
        VerifyingKey::from_bytes(&bytes).map_err(|e| bad(e.to_string()))
    }

    /// Checks `signature` (hex) over `message`.
    pub fn verify(&self, message: &[u8], signature: &str) -> bool {
        let Ok(key) = self.verifying_key() else {
            return false;
        };
        let Ok(bytes) = hex::decode(signature) else {
            return false;
        };
        let Ok(bytes) = <[u8; 64]>::try_from(bytes.as_slice()) else {
            return false;
        };
        key.verify_strict(message, &Signature::from_bytes(&bytes))
            .is_ok()
    }
}

mod opt_ts {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(ts) => iris_ingest::event::ts_rfc3339::serialize(ts, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let v = Option::<String>::deserialize(d)?;
        v.map(|s| {
            iris_ingest::event::parse_rfc3339_micros(&s)
                .ok_or_else(|| serde::de::Error::custom(format!("bad timestamp {s}")))
        })
        .transpose()
    }
}

/// The public keys `verify` trusts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Keyring {
    pub keys: Vec<KeyInfo>,
}

impl Keyring {
    /// Loads a keyring file; a missing file is an empty keyring.
    pub fn load(path: &Path) -> Result<Keyring, StoreError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(StoreError::json(path.display().to_string()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Keyring::default()),
            Err(e) => Err(StoreError::io(path)(e)),
        }
    }

    /// Writes the keyring atomically.
    pub fn save(&self, path: &Path) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(StoreError::json("keyring"))?;
        write_atomic(path, &bytes)
    }

    /// The key with this id.
    pub fn get(&self, id: &str) -> Option<&KeyInfo> {
        self.keys.iter().find(|k| k.id == id)
    }
}

/// The key that signs new seals.
pub struct Signer {
    pub id: String,
    key: SigningKey,
}

impl Signer {
    /// Signs `message`; returns the signature as hex.
    pub fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.key.sign(message).to_bytes())
    }

    /// A signer from a seed, for tests.
    pub fn from_seed(id: &str, seed: [u8; 32]) -> Signer {
        Signer {
            id: id.to_owned(),
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// The public half, valid from `valid_from`.
    pub fn info(&self, valid_from: i64) -> KeyInfo {
        KeyInfo {
            id: self.id.clone(),
            public_key: hex::encode(self.key.verifying_key().to_bytes()),
            valid_from,
            valid_until: None,
        }
    }
}

/// The files of the keys in a data directory.
#[derive(Clone, Debug)]
pub struct KeyDir {
    pub dir: PathBuf,
}

impl KeyDir {
    /// Path of the public keyring.
    pub fn keyring_path(&self) -> PathBuf {
        self.dir.join("keyring.json")
    }

    /// Loads the public keyring.
    pub fn keyring(&self) -> Result<Keyring, StoreError> {
        Keyring::load(&self.keyring_path())
    }

    /// Where signing secrets live: `$IRIS_SECRET_DIR` if set (issue 16: a trust root off the data
    /// directory; refused inside it), else this directory.
    pub fn secret_dir(&self) -> Result<PathBuf, StoreError> {
        let Some(dir) = std::env::var_os(SECRET_DIR_ENV).filter(|d| !d.is_empty()) else {
            return Ok(self.dir.clone());
        };
        let dir = PathBuf::from(dir);
        let data = self.dir.parent().unwrap_or(&self.dir);
        let (abs_dir, abs_data) = (absolute(&dir), absolute(data));
        if abs_dir.starts_with(&abs_data) {
            return Err(StoreError::Other(format!(
                "{SECRET_DIR_ENV}={} is inside the data directory {}: keep the signing secret elsewhere",
                dir.display(),
                data.display()
            )));
        }
        Ok(dir)
    }

    /// Makes the store's first (genesis) key and lists it in the keyring. Refused when the keyring
    /// already holds a key: a later key must be introduced by a rotation entry of the log
    /// ([`KeyDir::new_signer`], `Sealer::rotate`, [`KeyDir::record_rotation`]).
    pub fn generate(&self, id: Option<String>) -> Result<KeyInfo, StoreError> {
        if let Some(k) = self.keyring()?.keys.last() {
            return Err(StoreError::Key {
                id: k.id.clone(),
                reason: "this store has a signing key already: a new one is introduced by a rotation entry of the log (`iris keygen` with the store's lock)".into(),
            });
        }
        let signer = self.new_signer(id)?;
        let info = signer.info(chrono::Utc::now().timestamp_micros());
        let mut ring = self.keyring()?;
        ring.keys.push(info.clone());
        ring.save(&self.keyring_path())?;
        Ok(info)
    }

    /// Makes a new key pair and writes its secret (outside the data directory when
    /// `$IRIS_SECRET_DIR` is set); the keyring is not changed.
    pub fn new_signer(&self, id: Option<String>) -> Result<Signer, StoreError> {
        std::fs::create_dir_all(&self.dir).map_err(StoreError::io(&self.dir))?;
        let secret_dir = self.secret_dir()?;
        std::fs::create_dir_all(&secret_dir).map_err(StoreError::io(&secret_dir))?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| StoreError::Other(format!("no randomness from the OS: {e}")))?;
        let id = id.unwrap_or_else(|| {
            format!(
                "k{}-{}",
                chrono::Utc::now().format("%Y%m%d%H%M%S"),
                &crate::layout::nonce()[..4]
            )
        });
        if !iris_ingest::validate::is_token(&id) {
            return Err(StoreError::Key {
                id,
                reason: "a key id is lowercase letters, digits, `-` or `_`".into(),
            });
        }
        if self.keyring()?.get(&id).is_some() {
            return Err(StoreError::Key {
                id,
                reason: "a key with this id exists already".into(),
            });
        }
        let secret = secret_dir.join(format!("{id}.secret"));
        write_secret(&secret, hex::encode(seed).as_bytes())?;
        Ok(Signer::from_seed(&id, seed))
    }

    /// Records in the keyring a key a rotation seal introduced: the previous keys' validity ends when
    /// the new one's starts, exactly as `verify` derives it from the log.
    pub fn record_rotation(&self, info: &KeyInfo) -> Result<(), StoreError> {
        let mut ring = self.keyring()?;
        for k in ring.keys.iter_mut().filter(|k| k.valid_until.is_none()) {
            k.valid_until = Some(info.valid_from);
        }
        ring.keys.push(info.clone());
        ring.save(&self.keyring_path())
    }

    /// The newest key that is still valid and whose secret is here.
    pub fn active_signer(&self) -> Result<Signer, StoreError> {
        let ring = self.keyring()?;
        let now = chrono::Utc::now().timestamp_micros();
        let info = ring
            .keys
            .iter()
            .rev()
            .find(|k| k.valid_at(now))
            .ok_or(StoreError::NoSigningKey)?;
        let path = self.secret_dir()?.join(format!("{}.secret", info.id));
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::Key {
                    id: info.id.clone(),
                    reason: format!(
                        "its secret {} is missing (set {SECRET_DIR_ENV} to the directory that holds it)",
                        path.display()
                    ),
                }
            } else {
                StoreError::io(&path)(e)
            }
        })?;
        let bad = |reason: &str| StoreError::Key {
            id: info.id.clone(),
            reason: reason.into(),
        };
        let seed: [u8; 32] = hex::decode(text.trim())
            .map_err(|_| bad("secret file is not hex"))?
            .try_into()
            .map_err(|_| bad("secret is not 32 bytes"))?;
        let signer = Signer::from_seed(&info.id, seed);
        if signer.info(info.valid_from).public_key != info.public_key {
            return Err(bad("secret does not match the public key in the keyring"));
        }
        Ok(signer)
    }
}

/// The environment variable naming the directory of signing secrets, outside the data directory.
pub const SECRET_DIR_ENV: &str = "IRIS_SECRET_DIR";

/// `path` made absolute against the working directory (without touching the file system).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Writes a file through a temporary name and a rename, so readers never see half of it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(StoreError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(StoreError::io(path))
}

fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path).map_err(StoreError::io(path))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(StoreError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_rotate_sign_verify() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = KeyDir {
            dir: dir.path().to_owned(),
        };
        assert!(matches!(
            keys.active_signer(),
            Err(StoreError::NoSigningKey)
        ));
        let first = keys.generate(Some("k1".into())).expect("keygen");
        let signer = keys.active_signer().expect("signer");
        let sig = signer.sign(b"hello");
        assert!(first.verify(b"hello", &sig));
        assert!(!first.verify(b"hellp", &sig));
        assert!(
            keys.generate(Some("k2".into())).is_err(),
            "a second key only by rotation"
        );
        let next = keys.new_signer(Some("k2".into())).expect("new key");
        keys.record_rotation(&next.info(chrono::Utc::now().timestamp_micros()))
            .expect("rotate");
        let ring = keys.keyring().expect("ring");
        assert!(
            ring.get("k1").and_then(|k| k.valid_until).is_some(),
            "rotation ends the old key"
        );
        assert_eq!(keys.active_signer().expect("signer").id, "k2");
        assert!(keys.new_signer(Some("k2".into())).is_err());
    }
}
