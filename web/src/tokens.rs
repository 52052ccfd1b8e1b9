//! Bearer tokens: random secrets handed out once, stored only as SHA-256 digests in `tokens.json`,
//! each bound to a role (and a collector's to its source). The file is re-read when it changes, so
//! `iris token` works while the server runs.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// What a token lets its holder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs SQL, seals, manages the store.
    Admin,
    /// Appends events for one source; reads nothing.
    Collector,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "collector" => Ok(Role::Collector),
            other => Err(format!("unknown role `{other}` (admin or collector)")),
        }
    }
}

/// One stored token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    /// SHA-256 of the secret, hex.
    pub sha256: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub created: String,
    #[serde(default)]
    pub revoked: bool,
}

/// Who is asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub token_id: String,
    pub role: Role,
    pub source: Option<String>,
}

#[derive(Default, Serialize, Deserialize)]
struct TokenFile {
    tokens: Vec<TokenRecord>,
}

/// Errors of the token store.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a token file: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// The tokens of one data directory.
pub struct TokenStore {
    path: PathBuf,
    cache: Mutex<(Option<SystemTime>, Vec<TokenRecord>)>,
}

impl TokenStore {
    /// Tokens kept in `path`.
    pub fn new(path: &Path) -> TokenStore {
        TokenStore {
            path: path.to_owned(),
            cache: Mutex::new((None, Vec::new())),
        }
    }

    fn load(&self) -> Result<Vec<TokenRecord>, TokenError> {
        match std::fs::read(&self.path) {
            Ok(b) => Ok(serde_json::from_slice::<TokenFile>(&b)
                .map_err(|source| TokenError::Parse {
                    path: self.path.clone(),
                    source,
                })?
                .tokens),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(TokenError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Creates a token and returns its secret (shown once; only its digest is kept).
    pub fn create(
        &self,
        role: Role,
        source: Option<String>,
    ) -> Result<(TokenRecord, String), TokenError> {
        if role == Role::Collector {
            match &source {
                Some(s) if iris_ingest::validate::is_token(s) => {}
                Some(s) => {
                    return Err(TokenError::Invalid(format!(
                        "source `{s}` must be a lowercase code"
                    )));
                }
                None => {
                    return Err(TokenError::Invalid(
                        "a collector token needs --source".into(),
                    ));
                }
            }
        }
        let mut secret = [0u8; 24];
        getrandom::fill(&mut secret)
            .map_err(|e| TokenError::Invalid(format!("no randomness from the OS: {e}")))?;
        let secret = format!("iris_{}", hex::encode(secret));
        let mut tokens = self.load()?;
        let record = TokenRecord {
            id: format!("t{}", tokens.len() + 1),
            sha256: digest(&secret),
            role,
            source,
            created: chrono::Utc::now().to_rfc3339(),
            revoked: false,
        };
        tokens.push(record.clone());
        let bytes = serde_json::to_vec_pretty(&TokenFile { tokens })
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|source| TokenError::Io {
                path: self.path.clone(),
                source,
            })?;
        Ok((record, secret))
    }

    /// The principal a secret stands for, if it is a valid, unrevoked token.
    pub fn authenticate(&self, secret: &str) -> Option<Principal> {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.0 != mtime || mtime.is_none() {
            match self.load() {
                Ok(t) => *cache = (mtime, t),
                // Keep the last good tokens when the file is being rewritten or is broken.
                Err(e) => tracing::warn!("tokens not reloaded: {e}"),
            }
        }
        let d = digest(secret);
        cache
            .1
            .iter()
            .find(|t| !t.revoked && t.sha256 == d)
            .map(|t| Principal {
                token_id: t.id.clone(),
                role: t.role,
                source: t.source.clone(),
            })
    }
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_and_authenticate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TokenStore::new(&dir.path().join("tokens.json"));
        let (_, admin) = store.create(Role::Admin, None).expect("admin");
        let (_, coll) = store
            .create(Role::Collector, Some("hub".into()))
            .expect("collector");
        assert_eq!(
            store.authenticate(&admin).map(|p| p.role),
            Some(Role::Admin)
        );
        assert_eq!(
            store.authenticate(&coll).and_then(|p| p.source),
            Some("hub".into())
        );
        assert!(store.authenticate("iris_nope").is_none());
        assert!(store.create(Role::Collector, None).is_err());
        let text = std::fs::read_to_string(dir.path().join("tokens.json")).expect("file");
        assert!(!text.contains(&admin), "secrets are never stored");
    }
}
