//! C2SP `signed-note` (Ed25519 signatures only) and the C2SP `tlog-checkpoint` body it carries.
//!
//! A note is its text (UTF-8, ending with a newline), a blank line, and one line per signature:
//! `— <key name> <base64(key hash (4 bytes) || Ed25519 signature (64 bytes))>`. The key hash is the
//! first four bytes of `SHA-256(key name || "\n" || 0x01 || public key)`. A verifier key is written
//! `<name>+<key hash, hex>+<base64(0x01 || public key)>`.
//!
//! A checkpoint's text is `<origin>\n<tree size>\n<base64 root hash>\n`, then optional extension
//! lines.

use crate::ProofError;
use crate::merkle::Hash;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

/// Signature type byte of Ed25519 in signed-note.
const ALG_ED25519: u8 = 0x01;
/// What starts a signature line: an em dash and a space.
const SIG_PREFIX: &str = "\u{2014} ";

fn bad(why: impl Into<String>) -> ProofError {
    ProofError::Note(why.into())
}

/// Whether `name` may name a key: not empty, no spaces, no `+`, no newlines.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// The 4-byte key hash of an Ed25519 key named `name`.
pub fn key_hash(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    key_hash_of(ALG_ED25519, name, public_key)
}

/// The C2SP key hash: the first 4 bytes of SHA-256(name || "\n" || key type || public key).
pub fn key_hash_of(alg: u8, name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([alg]);
    h.update(public_key);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// A public key that checks note signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerifier {
    /// The key's name (for a log, its origin).
    pub name: String,
    /// The raw Ed25519 public key.
    pub public_key: [u8; 32],
}

impl NoteVerifier {
    /// A verifier for `public_key` under `name`.
    pub fn new(name: &str, public_key: [u8; 32]) -> Result<NoteVerifier, ProofError> {
        if !valid_name(name) {
            return Err(bad(format!("`{name}` cannot name a key")));
        }
        Ok(NoteVerifier {
            name: name.to_owned(),
            public_key,
        })
    }

    /// Parses `<name>+<hash hex>+<base64(0x01 || key)>`, checking the hash.
    pub fn parse(text: &str) -> Result<NoteVerifier, ProofError> {
        let text = text.trim();
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("a verifier key is NAME+HASH+KEY"));
        };
        let raw = B64
            .decode(key)
            .map_err(|e| bad(format!("verifier key: {e}")))?;
        if raw.len() != 33 || raw[0] != ALG_ED25519 {
            return Err(bad(
                "verifier key: not an Ed25519 key (type 0x01, 32 bytes)",
            ));
        }
        let public_key: [u8; 32] = raw[1..].try_into().map_err(|_| bad("key length"))?;
        let v = NoteVerifier::new(name, public_key)?;
        if hex::encode(v.key_hash()) != hash {
            return Err(bad(
                "verifier key: its hash does not match its name and key",
            ));
        }
        Ok(v)
    }

    /// This key's 4-byte hash.
    pub fn key_hash(&self) -> [u8; 4] {
        key_hash(&self.name, &self.public_key)
    }

    /// `<name>+<hash hex>+<base64(0x01 || key)>`.
    pub fn to_text(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(&self.public_key);
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_hash()),
            B64.encode(raw)
        )
    }

    /// Checks that `note` carries a valid signature by this key; returns the note's text.
    pub fn verify<'a>(&self, note: &'a Note) -> Result<&'a str, ProofError> {
        let key = VerifyingKey::from_bytes(&self.public_key)
            .map_err(|e| bad(format!("public key: {e}")))?;
        let hash = self.key_hash();
        let mut seen = false;
        for s in note
            .signatures
            .iter()
            .filter(|s| s.name == self.name && s.key_hash == hash)
        {
            seen = true;
            let Ok(sig) = <[u8; 64]>::try_from(s.signature.as_slice()) else {
                continue;
            };
            let sig = Signature::from_bytes(&sig);
            if key.verify_strict(note.text.as_bytes(), &sig).is_ok() {
                return Ok(&note.text);
            }
        }
        Err(bad(if seen {
            format!("the signature by `{}` does not verify", self.name)
        } else {
            format!("no signature by `{}`", self.name)
        }))
    }
}

/// One signature line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// The signer's key name.
    pub name: String,
    /// The signer's key hash.
    pub key_hash: [u8; 4],
    /// What follows the key hash: an Ed25519 signature over the note's text (64 bytes), or for a
    /// witness cosignature (`cosignature/v1`) a timestamp (8 bytes) and the signature.
    pub signature: Vec<u8>,
}

/// A signed note, parsed (signatures not yet checked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The signed text, ending with a newline.
    pub text: String,
    /// Its signatures, in order.
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Signs `text` (which must end with a newline and hold no blank line) with a key named `name`
    /// whose public half is `public_key`; `sign` returns the Ed25519 signature of its argument.
    pub fn sign(
        text: &str,
        name: &str,
        public_key: &[u8; 32],
        sign: impl Fn(&[u8]) -> Result<[u8; 64], ProofError>,
    ) -> Result<Note, ProofError> {
        if !text.ends_with('\n') || text.contains("\n\n") || text.starts_with('\n') {
            return Err(bad(
                "a note's text ends with a newline and has no blank line",
            ));
        }
        let v = NoteVerifier::new(name, *public_key)?;
        let signature = sign(text.as_bytes())?;
        Ok(Note {
            text: text.to_owned(),
            signatures: vec![NoteSignature {
                name: name.to_owned(),
                key_hash: v.key_hash(),
                signature: signature.to_vec(),
            }],
        })
    }

    /// The note as it is written out.
    pub fn to_text(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            let mut raw = s.key_hash.to_vec();
            raw.extend_from_slice(&s.signature);
            out.push_str(&format!("{SIG_PREFIX}{} {}\n", s.name, B64.encode(raw)));
        }
        out
    }

    /// Parses a note. Strict: the text is what precedes the last blank line, every line after it is
    /// a well-formed Ed25519 signature line, and writing the note out again gives the same bytes.
    pub fn parse(input: &str) -> Result<Note, ProofError> {
        let split = input
            .rfind("\n\n")
            .ok_or_else(|| bad("no blank line between the text and the signatures"))?;
        let text = &input[..split + 1];
        let sigs = &input[split + 2..];
        if !sigs.ends_with('\n') {
            return Err(bad("a note ends with a newline"));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            let rest = line
                .strip_prefix(SIG_PREFIX)
                .ok_or_else(|| bad(format!("not a signature line: {line:?}")))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or_else(|| bad("a signature line is `— NAME SIGNATURE`"))?;
            if !valid_name(name) {
                return Err(bad(format!("`{name}` cannot name a key")));
            }
            let raw = B64
                .decode(b64)
                .map_err(|e| bad(format!("signature: {e}")))?;
            if raw.len() < 5 {
                return Err(bad("a note signature is a key hash and a signature"));
            }
            signatures.push(NoteSignature {
                name: name.to_owned(),
                key_hash: raw[..4].try_into().map_err(|_| bad("key hash"))?,
                signature: raw[4..].to_vec(),
            });
        }
        if signatures.is_empty() {
            return Err(bad("a note carries at least one signature"));
        }
        let note = Note {
            text: text.to_owned(),
            signatures,
        };
        if note.to_text() != input {
            return Err(bad("not in canonical form"));
        }
        Ok(note)
    }
}

/// The body of a C2SP `tlog-checkpoint`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointBody {
    /// The log's origin: names it, and names the key that signs it.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// The tree head.
    pub root: Hash,
    /// Extension lines (without their newline).
    pub extensions: Vec<String>,
}

impl CheckpointBody {
    /// The checkpoint's text.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for e in &self.extensions {
            out.push_str(e);
            out.push('\n');
        }
        out
    }

    /// Parses a checkpoint's text (strict: canonical size and base64, writes back identically).
    pub fn parse(text: &str) -> Result<CheckpointBody, ProofError> {
        let bad = |why: &str| ProofError::Checkpoint(why.to_owned());
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("the text ends with a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(bad("the first line names the origin"));
        }
        let size_line = lines.next().ok_or_else(|| bad("no tree size"))?;
        let size: u64 = size_line
            .parse()
            .map_err(|_| bad("the tree size is a decimal number"))?;
        let root_line = lines.next().ok_or_else(|| bad("no root hash"))?;
        let root: Hash = B64
            .decode(root_line)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad("the root hash is 32 bytes in base64"))?;
        let cp = CheckpointBody {
            origin: origin.to_owned(),
            size,
            root,
            extensions: lines.map(str::to_owned).collect(),
        };
        if cp.extensions.iter().any(String::is_empty) || cp.to_text() != text {
            return Err(bad("not in canonical form"));
        }
        Ok(cp)
    }
}

/// A signed checkpoint: the note and the body it signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The whole note.
    pub note: Note,
    /// Its text, parsed.
    pub body: CheckpointBody,
}

impl SignedCheckpoint {
    /// Parses a signed checkpoint without checking signatures.
    pub fn parse(text: &str) -> Result<SignedCheckpoint, ProofError> {
        let note = Note::parse(text)?;
        let body = CheckpointBody::parse(&note.text)?;
        Ok(SignedCheckpoint { note, body })
    }

    /// Parses and checks the signature of `key` (whose name must be the origin).
    pub fn open(text: &str, key: &NoteVerifier) -> Result<SignedCheckpoint, ProofError> {
        let cp = SignedCheckpoint::parse(text)?;
        if cp.body.origin != key.name {
            return Err(ProofError::Checkpoint(format!(
                "checkpoint of `{}`, key of `{}`",
                cp.body.origin, key.name
            )));
        }
        key.verify(&cp.note)?;
        Ok(cp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};

    // golang.org/x/mod/sumdb/note's example (also in C2SP's signed-note tests).
    const SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const SIGNED: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    fn peter() -> SigningKey {
        let b64 = SKEY.splitn(5, '+').nth(4).expect("key part");
        let raw = B64.decode(b64).expect("base64");
        assert_eq!(raw[0], 1);
        SigningKey::from_bytes(&raw[1..].try_into().expect("32 bytes"))
    }

    #[test]
    fn signs_and_verifies_the_go_sumdb_vector() {
        let sk = peter();
        let v = NoteVerifier::parse(VKEY).expect("vkey");
        assert_eq!(v.public_key, sk.verifying_key().to_bytes());
        assert_eq!(v.to_text(), VKEY);
        let note = Note::sign(TEXT, "PeterNeumann", &v.public_key, |m| {
            Ok(sk.sign(m).to_bytes())
        })
        .expect("sign");
        assert_eq!(note.to_text(), SIGNED, "byte for byte the Go output");
        let parsed = Note::parse(SIGNED).expect("parse");
        assert_eq!(v.verify(&parsed).expect("verifies"), TEXT);
        // A changed text, a wrong key name, a key of another name.
        let tampered = SIGNED.replace("answer", "Answer");
        assert!(v.verify(&Note::parse(&tampered).expect("parses")).is_err());
        let other = NoteVerifier::new("EnochRoot", v.public_key).expect("name");
        assert!(other.verify(&parsed).is_err());
        assert!(
            NoteVerifier::parse(
                "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
            )
            .is_err()
        );
    }

    #[test]
    fn checkpoint_text_round_trips_and_is_strict() {
        let body = CheckpointBody {
            origin: "example.com/log".into(),
            size: 8,
            root: [7; 32],
            extensions: vec![],
        };
        let text = body.to_text();
        assert_eq!(
            text,
            "example.com/log\n8\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n"
        );
        assert_eq!(CheckpointBody::parse(&text).expect("parse"), body);
        for bad in [
            "example.com/log\n08\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "example.com/log\n8\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwd=\n",
            "example.com/log\n8\nBwcH\n",
            "\n8\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "example.com/log\n8\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
        ] {
            assert!(CheckpointBody::parse(bad).is_err(), "{bad:?}");
        }
    }
}
