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
