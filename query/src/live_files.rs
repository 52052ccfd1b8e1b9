//! The live files of the store as the query layer sees them: the chain's manifest, read once and then
//! brought up to date before each scan (one `GET` of the next seal number when nothing changed).

use iris_store::StoreLocation;
use iris_store::manifest::Manifest;
use std::sync::Arc;
use tokio::sync::Mutex;

/// A shared, refreshed manifest.
#[derive(Debug, Default)]
pub struct LiveFiles {
    current: Mutex<Arc<Manifest>>,
    /// Files whose bytes were hashed and matched their seal: path → (sealed digest, size, modified).
    verified: std::sync::Mutex<std::collections::HashMap<String, (String, u64, i64)>>,
}

impl LiveFiles {
    /// Nothing read yet: the first scan reads the chain.
    pub fn new() -> LiveFiles {
        LiveFiles::default()
    }

    /// The manifest including every seal written so far, and whether it changed since the last call.
    pub async fn current(
        &self,
        loc: &StoreLocation,
    ) -> Result<(Arc<Manifest>, bool), iris_store::StoreError> {
        let mut guard = self.current.lock().await;
        // Copies the manifest only while an earlier scan still holds it.
        let changed = Arc::make_mut(&mut guard).refresh(loc).await?;
        Ok((guard.clone(), changed))
    }
}

impl LiveFiles {
    /// Checks that `rel` (as listed: `meta`) has the bytes its seal names, hashing it the first time a
    /// query of this engine reads it (and again whenever its size or modification time changes). A
    /// damaged or replaced file is an error naming it, so that no answer is ever computed from bytes the
    /// chain did not seal.
    pub async fn check_sealed(
        &self,
        loc: &StoreLocation,
        rel: &str,
        sealed_sha256: &str,
        meta: &object_store::ObjectMeta,
    ) -> Result<(), String> {
        use futures::StreamExt;
        use object_store::ObjectStoreExt as _;
        use sha2::Digest;
        if self.is_verified(rel, sealed_sha256, meta) {
            return Ok(());
        }
        let fail = |why: String| format!("{rel}: {why}; run `iris verify`");
        let got = loc
            .store
            .get(&meta.location)
            .await
            .map_err(|e| fail(format!("cannot be read ({e})")))?;
        let mut stream = got.into_stream();
        let mut hasher = sha2::Sha256::new();
        while let Some(chunk) = stream.next().await {
            hasher.update(chunk.map_err(|e| fail(format!("cannot be read ({e})")))?);
        }
        let digest = hex::encode(hasher.finalize());
        if digest != sealed_sha256 {
            tracing::error!("{rel} does not match its seal: refused to queries");
            return Err(fail(
                "does not match its seal (damaged or replaced): no query reads it".into(),
            ));
        }
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                rel.to_owned(),
                (sealed_sha256.to_owned(), meta.size, stamp(meta)),
            );
        Ok(())
    }
}

impl LiveFiles {
    /// Whether `rel` was hashed already, with this digest, size and modification time (a look-up, no
    /// allocation: every scan asks it for every file it reads).
    pub fn is_verified(
        &self,
        rel: &str,
        sealed_sha256: &str,
        meta: &object_store::ObjectMeta,
    ) -> bool {
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(rel)
            .is_some_and(|(sha, size, at)| {
                sha == sealed_sha256 && *size == meta.size && *at == stamp(meta)
            })
    }
}

fn stamp(meta: &object_store::ObjectMeta) -> i64 {
    meta.last_modified.timestamp_nanos_opt().unwrap_or(0)
}
