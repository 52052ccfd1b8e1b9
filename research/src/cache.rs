//! Released figure sets, kept per project: the same aggregate over the same cells of the same data
//! version is answered from here, with the same noise, and spends nothing again. Asking one figure
//! many times therefore averages nothing away.
//!
//! `DATA/research/<project>/released/<sha256 of the key>.json`, written atomically (temporary file,
//! fsync, rename). A file that does not read back, or whose key differs, is an error, never a
//! fresh draw: drawing again would give the researcher a second sample of the same figure.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One figure set as released: a noisy value per finest cell.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Released {
    pub values: Vec<Option<f64>>,
    /// ρ it cost when it was drawn.
    pub rho: f64,
    /// The noise's scale (σ of the Gaussian, or the quantile mechanism's Gumbel scale).
    pub sigma: f64,
    pub mechanism: String,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    key: String,
    release: Released,
}

/// A project's released figure sets.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache of `project` under `data`.
    pub fn new(data: &Path, project: &str) -> Cache {
        Cache {
            dir: data.join("research").join(project).join("released"),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!(
            "{}.json",
            hex::encode(Sha256::digest(key.as_bytes()))
        ))
    }

    /// The release made under `key`, if any.
    pub fn get(&self, key: &str) -> std::io::Result<Option<Released>> {
        let path = self.path(key);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let stored: Stored = serde_json::from_slice(&bytes).map_err(|e| {
            std::io::Error::other(format!(
                "released figures {} are damaged ({e}); an operator must look before this figure is released again",
                path.display()
            ))
        })?;
        if stored.key != key {
            return Err(std::io::Error::other(format!(
                "released figures {} belong to another release",
                path.display()
            )));
        }
        Ok(Some(stored.release))
    }

    /// Keeps `release` under `key`.
    pub fn put(&self, key: &str, release: &Released) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(key);
        let tmp = path.with_extension("tmp");
        let bytes = serde_json::to_vec(&Stored {
            key: key.to_owned(),
            release: release.clone(),
        })
        .map_err(std::io::Error::other)?;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_reads_back_and_damage_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = Cache::new(dir.path(), "P");
        assert_eq!(c.get("k").expect("get"), None);
        let r = Released {
            values: vec![Some(1.0), None],
            rho: 0.1,
            sigma: 2.0,
            mechanism: "m".into(),
        };
        c.put("k", &r).expect("put");
        assert_eq!(c.get("k").expect("get"), Some(r));
        std::fs::write(c.path("k"), b"{").expect("write");
        assert!(c.get("k").is_err());
    }
}
