//! Keyed pseudonyms per project: HMAC-SHA256 of the identifier under the project's own secret key.
//! The valid-NISS space is small enough to enumerate, so an unkeyed hash would be reversible; with a
//! key kept apart from the researcher (`DATA/keys/projects/<project>.key`), pseudonyms cannot be
//! reversed nor linked across projects.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::path::{Path, PathBuf};

/// Turns identifiers into a project's pseudonyms.
#[derive(Clone)]
pub struct Pseudonymizer {
    key: [u8; 32],
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(<key withheld>)")
    }
}

/// Where a project's key lives under the data directory.
pub fn key_path(data: &Path, project: &str) -> PathBuf {
    data.join("keys")
        .join("projects")
        .join(format!("{project}.key"))
}

impl Pseudonymizer {
    /// A pseudonymizer with this key.
    pub fn new(key: [u8; 32]) -> Pseudonymizer {
        Pseudonymizer { key }
    }

    /// The project's key, created (32 random bytes, readable by the owner only) on first use.
    pub fn for_project(data: &Path, project: &str) -> std::io::Result<Pseudonymizer> {
        let path = key_path(data, project);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let bytes = hex::decode(text.trim()).map_err(std::io::Error::other)?;
                let key: [u8; 32] = bytes.try_into().map_err(|_| {
                    std::io::Error::other(format!("{}: not a 32-byte key", path.display()))
                })?;
                Ok(Pseudonymizer { key })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(std::io::Error::other)?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                write_private(&path, &hex::encode(key))?;
                Ok(Pseudonymizer { key })
            }
            Err(e) => Err(e),
        }
    }

    /// The pseudonym of `id`: 128 bits of HMAC-SHA256, hex.
    pub fn pseudonym(&self, id: &str) -> String {
        hex::encode(&self.digest(id)[..16])
    }

    /// The pseudonym as a number (for sets of persons).
    pub fn pseudonym_u64(&self, id: &str) -> u64 {
        let d = self.digest(id);
        u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    }

    fn digest(&self, id: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes a key of any length");
        mac.update(id.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_within_a_project_and_differ_across_projects() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = Pseudonymizer::for_project(dir.path(), "LM-A").expect("key");
        let a_again = Pseudonymizer::for_project(dir.path(), "LM-A").expect("key");
        let b = Pseudonymizer::for_project(dir.path(), "LM-B").expect("key");
        let niss = "85073003328";
        assert_eq!(a.pseudonym(niss), a_again.pseudonym(niss));
        assert_ne!(a.pseudonym(niss), b.pseudonym(niss));
        assert_ne!(a.pseudonym(niss), a.pseudonym("85073003409"));
        // Not the unkeyed hash, which anyone could compute for every valid NISS.
        let unkeyed = hex::encode(&<Sha256 as sha2::Digest>::digest(niss.as_bytes())[..16]);
        assert_ne!(a.pseudonym(niss), unkeyed);
        assert!(!a.pseudonym(niss).contains(niss));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(key_path(dir.path(), "LM-A"))
                .expect("key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key is readable by others: {mode:o}");
        }
    }
}
