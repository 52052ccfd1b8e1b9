//! Bearer tokens: random secrets handed out once, stored only as SHA-256 digests in `tokens.json`,
//! each bound to a role and a principal (an adviser's or inspector's user id, a citizen's NISS, a
//! researcher's project, a collector's source), with an expiry, revocable. The file is re-read when it
//! changes, so `iris token` works while the server runs.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// What a token lets its holder do (DESIGN §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs any SQL, seals, manages the store.
    Admin,
    /// Appends events for one source; reads nothing.
    Collector,
    /// A security adviser: the events of the users of the institutions they supervise.
    Adviser,
    /// A member of an inspection service: events within a deliberation, under a case reference.
    Inspector,
    /// A citizen: who consulted their own data in the last months.
    Citizen,
    /// A researcher of a project: anonymised aggregates of the labour-market tables only.
    Researcher,
    /// Verifies the chain and reads Iris's own audit events (who asked what); no event rows.
    Auditor,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 7] = [
        Role::Admin,
        Role::Collector,
        Role::Adviser,
        Role::Inspector,
        Role::Citizen,
        Role::Researcher,
        Role::Auditor,
    ];

    /// The role's name as written in tokens and commands.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Collector => "collector",
            Role::Adviser => "adviser",
            Role::Inspector => "inspector",
            Role::Citizen => "citizen",
            Role::Researcher => "researcher",
            Role::Auditor => "auditor",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Role::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown role `{s}` (one of {})", names.join(", "))
            })
    }
}

/// One stored token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    /// SHA-256 of the secret, hex.
    pub sha256: String,
    pub role: Role,
    /// Who holds it: a user id (adviser, inspector), a NISS (citizen), a project (researcher), a
    /// name (admin, auditor). Defaults to the token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub created: String,
    /// After this instant (RFC 3339) the token is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(default)]
    pub revoked: bool,
}

/// Who is asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub token_id: String,
    pub role: Role,
    /// The principal's id (see [`TokenRecord::principal`]).
    pub id: String,
    pub source: Option<String>,
}

/// What a new token is for.
#[derive(Clone, Debug)]
pub struct NewToken {
    pub role: Role,
    pub principal: Option<String>,
    pub source: Option<String>,
    /// Days until it expires (`None`: never).
    pub expires_in_days: Option<u32>,
}

/// Why a secret was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("unknown token")]
    Unknown,
    #[error("token {0} was revoked")]
    Revoked(String),
    #[error("token {0} expired at {1}")]
    Expired(String, String),
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

/// When a file was last modified, and its size.
type FileStamp = (SystemTime, u64);

/// The tokens of one data directory.
pub struct TokenStore {
    path: PathBuf,
    /// Tokens as last read, keyed on the file's modification time and size (a coarse clock may not
    /// tick between two writes; the size then tells them apart).
    cache: Mutex<(Option<FileStamp>, Vec<TokenRecord>)>,
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

    /// Creates a token and returns its secret (shown once; only its digest is kept). The caller
    /// checks the principal against the directory.
    pub fn create(&self, new: NewToken) -> Result<(TokenRecord, String), TokenError> {
        if new.role == Role::Collector {
            match &new.source {
                Some(s) if s == iris_ingest::validate::OWN_SOURCE => {
                    return Err(TokenError::Invalid(format!(
                        "source `{s}` is reserved for Iris's own audit events"
                    )));
                }
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
        let now = chrono::Utc::now();
        let record = TokenRecord {
            id: format!("t{}", tokens.len() + 1),
            sha256: digest(&secret),
            role: new.role,
            principal: new.principal,
            source: new.source,
            created: now.to_rfc3339(),
            expires: new
                .expires_in_days
                .map(|d| (now + chrono::Duration::days(i64::from(d))).to_rfc3339()),
            revoked: false,
        };
        tokens.push(record.clone());
        self.save(tokens)?;
        Ok((record, secret))
    }

    /// Revokes a token by id; from the next request on it is refused.
    pub fn revoke(&self, id: &str) -> Result<TokenRecord, TokenError> {
        let mut tokens = self.load()?;
        let t = tokens
            .iter_mut()
            .find(|t| t.id == id)
            .ok_or_else(|| TokenError::Invalid(format!("no token `{id}`")))?;
        t.revoked = true;
        let revoked = t.clone();
        self.save(tokens)?;
        Ok(revoked)
    }

    /// Every token (digests only).
    pub fn list(&self) -> Result<Vec<TokenRecord>, TokenError> {
        self.load()
    }

    fn save(&self, tokens: Vec<TokenRecord>) -> Result<(), TokenError> {
        let bytes = serde_json::to_vec_pretty(&TokenFile { tokens })
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|source| TokenError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// The principal a secret stands for, if it is a valid, unrevoked, unexpired token.
    pub fn authenticate(&self, secret: &str) -> Result<Principal, AuthError> {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| Ok((m.modified()?, m.len())))
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
        let t = cache
            .1
            .iter()
            .find(|t| t.sha256 == d)
            .ok_or(AuthError::Unknown)?;
        if t.revoked {
            return Err(AuthError::Revoked(t.id.clone()));
        }
        if let Some(expires) = &t.expires {
            let past = chrono::DateTime::parse_from_rfc3339(expires)
                .map_or(true, |at| at <= chrono::Utc::now());
            if past {
                return Err(AuthError::Expired(t.id.clone(), expires.clone()));
            }
        }
        Ok(Principal {
            token_id: t.id.clone(),
            role: t.role,
            id: t.principal.clone().unwrap_or_else(|| t.id.clone()),
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

    fn new(role: Role, principal: Option<&str>, source: Option<&str>) -> NewToken {
        NewToken {
            role,
            principal: principal.map(str::to_owned),
            source: source.map(str::to_owned),
            expires_in_days: None,
        }
    }

    #[test]
    fn create_authenticate_revoke_expire() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TokenStore::new(&dir.path().join("tokens.json"));
        let (_, admin) = store.create(new(Role::Admin, None, None)).expect("admin");
        let (_, coll) = store
            .create(new(Role::Collector, None, Some("hub")))
            .expect("collector");
        let (adv, adviser) = store
            .create(new(Role::Adviser, Some("U0003001"), None))
            .expect("adviser");
        assert_eq!(store.authenticate(&admin).map(|p| p.role), Ok(Role::Admin));
        assert_eq!(
            store.authenticate(&coll).map(|p| p.source),
            Ok(Some("hub".into()))
        );
        assert_eq!(
            store.authenticate(&adviser).map(|p| p.id),
            Ok("U0003001".into())
        );
        assert_eq!(store.authenticate("iris_nope"), Err(AuthError::Unknown));
        assert!(store.create(new(Role::Collector, None, None)).is_err());
        assert!(
            store
                .create(new(Role::Collector, None, Some("iris")))
                .is_err()
        );
        let text = std::fs::read_to_string(dir.path().join("tokens.json")).expect("file");
        assert!(!text.contains(&admin), "secrets are never stored");
        store.revoke(&adv.id).expect("revoke");
        assert_eq!(
            store.authenticate(&adviser),
            Err(AuthError::Revoked(adv.id.clone()))
        );
        let (old, expired) = store
            .create(NewToken {
                expires_in_days: Some(0),
                ..new(Role::Auditor, None, None)
            })
            .expect("auditor");
        assert!(
            matches!(store.authenticate(&expired), Err(AuthError::Expired(id, _)) if id == old.id)
        );
    }
}
