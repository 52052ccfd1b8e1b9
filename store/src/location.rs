//! Where the partitions and the chain live: a local directory (default), memory (tests) or S3.

use crate::error::StoreError;
use object_store::ObjectStore;
use object_store::memory::InMemory;
use object_store::path::Path;
use std::sync::Arc;
use url::Url;

/// An object store plus the prefix under which Iris keeps its objects.
#[derive(Clone, Debug)]
pub struct StoreLocation {
    /// The store.
    pub store: Arc<dyn ObjectStore>,
    /// Prefix of every Iris object inside the store (empty for the root).
    pub prefix: Path,
    /// URL of the store's root (scheme and authority), as DataFusion registers it.
    pub root_url: Url,
}

impl StoreLocation {
    /// A local directory (created if missing).
    pub fn local(dir: &std::path::Path) -> Result<StoreLocation, StoreError> {
        std::fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
        let abs = dir.canonicalize().map_err(StoreError::io(dir))?;
        let prefix = Path::from_absolute_path(&abs).map_err(|e| StoreError::Url {
            url: abs.display().to_string(),
            reason: e.to_string(),
        })?;
        let store = object_store::local::LocalFileSystem::new();
        let root_url = Url::parse("file:///").map_err(|e| StoreError::Url {
            url: "file:///".into(),
            reason: e.to_string(),
        })?;
        Ok(StoreLocation {
            store: Arc::new(store),
            prefix,
            root_url,
        })
    }

    /// A fresh in-memory store, for tests.
    pub fn memory() -> StoreLocation {
        StoreLocation {
            store: Arc::new(InMemory::new()),
            prefix: Path::default(),
            root_url: Url::parse("memory:///").expect("static URL"),
        }
    }

    /// Opens a store from a URL: `file:///dir`, `memory://`, or `s3://bucket/prefix` (credentials,
    /// region and endpoint from the usual `AWS_*` environment variables, e.g. `AWS_ENDPOINT` for MinIO).
    pub fn from_url(text: &str) -> Result<StoreLocation, StoreError> {
        let bad = |reason: String| StoreError::Url {
            url: text.to_owned(),
            reason,
        };
        let url = Url::parse(text).map_err(|e| bad(e.to_string()))?;
        match url.scheme() {
            "file" => {
                let path = url
                    .to_file_path()
                    .map_err(|()| bad("not a local path".into()))?;
                StoreLocation::local(&path)
            }
            "memory" => Ok(StoreLocation::memory()),
            "s3" | "s3a" => {
                let bucket = url.host_str().ok_or_else(|| bad("missing bucket".into()))?;
                let s3 = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_allow_http(true)
                    .build()
                    .map_err(|e| bad(e.to_string()))?;
                let prefix = Path::from(url.path().trim_matches('/'));
                let root_url =
                    Url::parse(&format!("s3://{bucket}/")).map_err(|e| bad(e.to_string()))?;
                Ok(StoreLocation {
                    store: Arc::new(s3),
                    prefix,
                    root_url,
                })
            }
            other => Err(bad(format!(
                "unsupported scheme `{other}` (use file, s3 or memory)"
            ))),
        }
    }

    /// The full object path of `rel` (a path relative to the Iris prefix).
    pub fn path(&self, rel: &str) -> Path {
        if self.prefix.as_ref().is_empty() {
            Path::from(rel)
        } else {
            Path::from(format!("{}/{rel}", self.prefix.as_ref()))
        }
    }

    /// The path relative to the Iris prefix of a full object path.
    pub fn relative(&self, full: &Path) -> String {
        let p = full.as_ref();
        let pre = self.prefix.as_ref();
        if pre.is_empty() {
            p.to_owned()
        } else {
            p.strip_prefix(pre)
                .map(|r| r.trim_start_matches('/'))
                .unwrap_or(p)
                .to_owned()
        }
    }

    /// URL of a directory under the Iris prefix, e.g. `events/`, for DataFusion's listing tables.
    pub fn dir_url(&self, rel: &str) -> String {
        let base = self.root_url.as_str().trim_end_matches('/');
        let pre = self.prefix.as_ref();
        if pre.is_empty() {
            format!("{base}/{rel}/")
        } else {
            format!("{base}/{pre}/{rel}/")
        }
    }
}
