//! A witness (C2SP `tlog-witness`, `add-checkpoint`) and witness cosignatures (C2SP
//! `tlog-cosignature`, `cosignature/v1`).
//!
//! A witness keeps, per log (origin), the last size and head it cosigned. It cosigns a checkpoint
//! only if it is signed by the log's key and a consistency proof shows it extends that head; it
//! records the new head (atomically, synced) *before* answering, so it never cosigns two heads for
//! one size, nor a log that went back.
//!
//! A cosignature is a note signature line whose key hash is `SHA-256(name || "\n" || 0x04 ||
//! key)[:4]` and whose bytes are the timestamp (8 bytes big-endian, seconds) then the Ed25519
//! signature of `"cosignature/v1\ntime <timestamp>\n" || checkpoint text`.

use crate::ProofError;
use crate::merkle::{Hash, verify_consistency};
use crate::note::{Note, NoteSignature, NoteVerifier, SignedCheckpoint};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Key type byte of a `cosignature/v1` key.
const ALG_COSIGNATURE_V1: u8 = 0x04;

fn cosig_key_hash(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    crate::note::key_hash_of(ALG_COSIGNATURE_V1, name, public_key)
}

fn cosigned_message(text: &str, time: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {time}\n{text}").into_bytes()
}

/// A witness's public key: checks its cosignatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CosignatureVerifier {
    /// The witness's name.
    pub name: String,
    /// Its Ed25519 public key.
    pub public_key: [u8; 32],
}

impl CosignatureVerifier {
    /// Parses `<name>+<hash hex>+<base64(0x04 || key)>`, checking the hash.
    pub fn parse(text: &str) -> Result<CosignatureVerifier, ProofError> {
        let bad = |why: &str| ProofError::Note(format!("witness key: {why}"));
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("NAME+HASH+KEY"));
        };
        let raw = B64.decode(key).map_err(|_| bad("key is not base64"))?;
        if raw.len() != 33 || raw[0] != ALG_COSIGNATURE_V1 {
            return Err(bad("not a cosignature/v1 key (type 0x04, 32 bytes)"));
        }
        let public_key: [u8; 32] = raw[1..].try_into().map_err(|_| bad("key length"))?;
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
            return Err(bad("bad name"));
        }
        if hex::encode(cosig_key_hash(name, &public_key)) != hash {
            return Err(bad("its hash does not match its name and key"));
        }
        Ok(CosignatureVerifier {
            name: name.to_owned(),
            public_key,
        })
    }

    /// `<name>+<hash hex>+<base64(0x04 || key)>`.
    pub fn to_text(&self) -> String {
        let mut raw = vec![ALG_COSIGNATURE_V1];
        raw.extend_from_slice(&self.public_key);
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(cosig_key_hash(&self.name, &self.public_key)),
            B64.encode(raw)
        )
    }

    /// Whether `note` carries a valid cosignature by this witness; its timestamp if so.
    pub fn verify(&self, note: &Note) -> Option<u64> {
        let key = VerifyingKey::from_bytes(&self.public_key).ok()?;
        let hash = cosig_key_hash(&self.name, &self.public_key);
        note.signatures
            .iter()
            .filter(|s| s.name == self.name && s.key_hash == hash && s.signature.len() == 72)
            .find_map(|s| {
                let time = u64::from_be_bytes(s.signature[..8].try_into().ok()?);
                let sig = Signature::from_bytes(&s.signature[8..].try_into().ok()?);
                key.verify_strict(&cosigned_message(&note.text, time), &sig)
                    .ok()
                    .map(|()| time)
            })
    }
}

/// Counts the witnesses among `witnesses` that cosigned `note`; an error if fewer than `quorum`.
pub fn check_quorum(
    note: &Note,
    witnesses: &[CosignatureVerifier],
    quorum: usize,
) -> Result<Vec<String>, ProofError> {
    let signed: Vec<String> = witnesses
        .iter()
        .filter(|w| w.verify(note).is_some())
        .map(|w| w.name.clone())
        .collect();
    if signed.len() < quorum {
        return Err(ProofError::Checkpoint(format!(
            "{} of the {} witnesses cosigned it ({}), {quorum} required",
            signed.len(),
            witnesses.len(),
            if signed.is_empty() {
                "none".to_owned()
            } else {
                signed.join(", ")
            }
        )));
    }
    Ok(signed)
}

/// What a witness remembers of one log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct LogHead {
    size: u64,
    #[serde(with = "crate::hexhash")]
    root: Hash,
    /// The last checkpoint it cosigned, with the log's signature and its own cosignature: served at
    /// `GET /latest`, so a verifier holding no file of its own learns how far the log had grown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    note: String,
}

/// Why a witness refuses, with the HTTP status of `tlog-witness`.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    /// 400, 403, 404, 409 (with the witness's size as body) or 422; 500 for its own failures.
    pub status: u16,
    /// The body to answer.
    pub body: String,
}

fn refuse(status: u16, body: impl Into<String>) -> Refusal {
    Refusal {
        status,
        body: body.into(),
    }
}

/// A witness: its key, the logs it knows, and its state file.
pub struct Witness {
    name: String,
    key: SigningKey,
    logs: BTreeMap<String, NoteVerifier>,
    state_path: PathBuf,
    state: Mutex<BTreeMap<String, LogHead>>,
}

impl Witness {
    /// Opens a witness whose key and state live in `dir` (`witness.key`, created if missing;
    /// `state.json`), knowing the logs `logs` (their verifier keys; the key's name is the origin).
    pub fn open(dir: &Path, name: &str, logs: &[String]) -> Result<Witness, ProofError> {
        let io = |p: &Path| {
            let p = p.display().to_string();
            move |source| ProofError::Io { path: p, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let key_path = dir.join("witness.key");
        let seed: [u8; 32] = match std::fs::read_to_string(&key_path) {
            Ok(t) => hex::decode(t.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| ProofError::Store(format!("{}: not a key", key_path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed)
                    .map_err(|e| ProofError::Store(format!("no randomness: {e}")))?;
                write_synced(&key_path, hex::encode(seed).as_bytes())?;
                seed
            }
            Err(e) => return Err(io(&key_path)(e)),
        };
        let mut known = BTreeMap::new();
        for l in logs {
            let v = NoteVerifier::parse(l)?;
            known.insert(v.name.clone(), v);
        }
        let state_path = dir.join("state.json");
        let state = match std::fs::read(&state_path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| ProofError::File {
                path: state_path.display().to_string(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io(&state_path)(e)),
        };
        Ok(Witness {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
            logs: known,
            state_path,
            state: Mutex::new(state),
        })
    }

    /// This witness's public key.
    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier {
            name: self.name.clone(),
            public_key: self.key.verifying_key().to_bytes(),
        }
    }

    /// `add-checkpoint`: the request body is `old <size>\n`, the consistency proof (one base64 hash
    /// per line), a blank line, and the signed checkpoint. Returns the cosignature line.
    pub fn add_checkpoint(&self, body: &str, now: u64) -> Result<String, Refusal> {
        let (head, note_text) = body
            .split_once("\n\n")
            .ok_or_else(|| refuse(400, "no blank line after the proof"))?;
        let mut lines = head.split('\n');
        let old: u64 = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| refuse(400, "first line: old SIZE"))?;
        let proof: Vec<Hash> = lines
            .map(|l| B64.decode(l).ok().and_then(|b| b.try_into().ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| refuse(400, "proof lines are base64 hashes"))?;
        let unsigned =
            SignedCheckpoint::parse(note_text).map_err(|e| refuse(400, e.to_string()))?;
        let log = self
            .logs
            .get(&unsigned.body.origin)
            .ok_or_else(|| refuse(404, format!("unknown log `{}`", unsigned.body.origin)))?;
        let cp = SignedCheckpoint::open(note_text, log).map_err(|e| refuse(403, e.to_string()))?;
        if old > cp.body.size {
            return Err(refuse(400, "old size larger than the checkpoint's"));
        }
        let mut state = self
            .state
            .lock()
            .map_err(|_| refuse(500, "state lock poisoned"))?;
        let known = state.get(&cp.body.origin).cloned();
        let (known_size, known_root) = match &known {
            Some(h) => (h.size, h.root),
            None => (0, crate::merkle::empty_root()),
        };
        if old != known_size {
            return Err(refuse(409, format!("{known_size}\n")));
        }
        verify_consistency(known_size, &known_root, cp.body.size, &cp.body.root, &proof)
            .map_err(|e| refuse(422, e.to_string()))?;
        // The cosignature first: the state remembers the cosigned note it answers with.
        let sig = self.key.sign(&cosigned_message(&cp.note.text, now));
        let mut raw = now.to_be_bytes().to_vec();
        raw.extend_from_slice(&sig.to_bytes());
        let cosignature = NoteSignature {
            name: self.name.clone(),
            key_hash: cosig_key_hash(&self.name, &self.key.verifying_key().to_bytes()),
            signature: raw,
        };
        let mut cosigned = cp.note.clone();
        cosigned.signatures.push(cosignature.clone());
        let mut next = state.clone();
        next.insert(
            cp.body.origin.clone(),
            LogHead {
                size: cp.body.size,
                root: cp.body.root,
                note: cosigned.to_text(),
            },
        );
        let bytes = serde_json::to_vec_pretty(&next).map_err(|e| refuse(500, e.to_string()))?;
        write_synced(&self.state_path, &bytes).map_err(|e| refuse(500, e.to_string()))?;
        *state = next;
        drop(state);
        let line = Note {
            text: String::new(),
            signatures: vec![cosignature],
        }
        .to_text();
        // `to_text` wrote the (empty) text and a blank line first.
        Ok(line.trim_start_matches('\n').to_owned())
    }
}

/// Writes through a temporary file, synced, then renamed (and the directory synced).
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), ProofError> {
    use std::io::Write;
    let err = |source| ProofError::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The body of an `add-checkpoint` request.
pub fn add_checkpoint_body(old: u64, proof: &[Hash], note: &str) -> String {
    let mut out = format!("old {old}\n");
    for h in proof {
        out.push_str(&B64.encode(h));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(note);
    out
}

impl Witness {
    /// The last checkpoint of log `origin` this witness cosigned (log signature and cosignature), if
    /// any: what `iris verify --witness-url` compares the store with.
    pub fn latest(&self, origin: &str) -> Option<String> {
        let state = self.state.lock().ok()?;
        state
            .get(origin)
            .map(|h| h.note.clone())
            .filter(|n| !n.is_empty())
    }
}

/// The witness's routes: `POST /add-checkpoint` (C2SP tlog-witness) and `GET /latest?origin=ORIGIN`
/// (the last checkpoint it cosigned for that log), for a listener of the caller's, TLS or not.
pub fn router(witness: std::sync::Arc<Witness>) -> axum::Router {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let reader = witness.clone();
    axum::Router::new()
        .route(
            "/latest",
            axum::routing::get(
                move |q: axum::extract::Query<std::collections::HashMap<String, String>>| {
                    let w = reader.clone();
                    async move {
                        let origin = q.get("origin").cloned().unwrap_or_default();
                        match w.latest(&origin) {
                            Some(note) => (StatusCode::OK, note).into_response(),
                            None => (
                                StatusCode::NOT_FOUND,
                                format!("no checkpoint of `{origin}` cosigned here"),
                            )
                                .into_response(),
                        }
                    }
                },
            ),
        )
        .route(
            "/add-checkpoint",
            axum::routing::post(move |body: String| {
                let w = witness.clone();
                async move {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or_default();
                    match w.add_checkpoint(&body, now) {
                        Ok(lines) => (StatusCode::OK, lines).into_response(),
                        Err(r) => {
                            let status = StatusCode::from_u16(r.status)
                                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                            if r.status == 409 {
                                (status, [(header::CONTENT_TYPE, "text/x.tlog.size")], r.body)
                                    .into_response()
                            } else {
                                (status, r.body).into_response()
                            }
                        }
                    }
                }
            }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{consistency_proof, leaf_hash, root};
    use crate::note::CheckpointBody;

    fn log_note(leaves: &[Hash], sk: &SigningKey) -> String {
        let body = CheckpointBody {
            origin: "example.org/log".into(),
            size: leaves.len() as u64,
            root: root(leaves),
            extensions: vec![],
        };
        Note::sign(
            &body.to_text(),
            "example.org/log",
            &sk.verifying_key().to_bytes(),
            |m| Ok(sk.sign(m).to_bytes()),
        )
        .expect("sign")
        .to_text()
    }

    #[test]
    fn cosigns_only_consistent_growth_and_remembers_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log_key = SigningKey::from_bytes(&[3; 32]);
        let vkey = NoteVerifier::new("example.org/log", log_key.verifying_key().to_bytes())
            .expect("vkey")
            .to_text();
        let w = Witness::open(dir.path(), "w1.example", std::slice::from_ref(&vkey)).expect("open");
        let leaves: Vec<Hash> = (0u8..10).map(|i| leaf_hash(&[i])).collect();
        let n4 = log_note(&leaves[..4], &log_key);
        let lines = w
            .add_checkpoint(&add_checkpoint_body(0, &[], &n4), 1000)
            .expect("first checkpoint");
        let cosigned = Note::parse(&format!("{n4}{lines}")).expect("note + cosignature");
        assert_eq!(w.verifier().verify(&cosigned), Some(1000));
        let wv = CosignatureVerifier::parse(&w.verifier().to_text()).expect("round trip");
        assert_eq!(
            check_quorum(&cosigned, std::slice::from_ref(&wv), 1).expect("quorum"),
            ["w1.example"]
        );
        assert!(check_quorum(&Note::parse(&n4).expect("note"), &[wv], 1).is_err());

        // Growth to 7 with the right proof: cosigned. A stale `old`: 409 with the size.
        let n7 = log_note(&leaves[..7], &log_key);
        let p = consistency_proof(&leaves[..7], 4).expect("proof");
        assert_eq!(
            w.add_checkpoint(&add_checkpoint_body(0, &[], &n7), 1)
                .unwrap_err(),
            refuse(409, "4\n")
        );
        w.add_checkpoint(&add_checkpoint_body(4, &p, &n7), 1001)
            .expect("consistent growth");
        // A fork at size 7 (another head) or a bad proof: refused; state unchanged (reopened).
        let forked: Vec<Hash> = (100u8..110).map(|i| leaf_hash(&[i])).collect();
        let f7 = log_note(&forked[..7], &log_key);
        assert_eq!(
            w.add_checkpoint(&add_checkpoint_body(7, &[], &f7), 2)
                .unwrap_err()
                .status,
            422
        );
        let n9 = log_note(&leaves[..9], &log_key);
        let mut bad = consistency_proof(&leaves[..9], 7).expect("proof");
        bad[0][0] ^= 1;
        assert_eq!(
            w.add_checkpoint(&add_checkpoint_body(7, &bad, &n9), 2)
                .unwrap_err()
                .status,
            422
        );
        drop(w);
        let w = Witness::open(dir.path(), "w1.example", &[vkey]).expect("reopen");
        assert_eq!(
            w.add_checkpoint(&add_checkpoint_body(4, &p, &n7), 3)
                .unwrap_err(),
            refuse(409, "7\n"),
            "the state survived"
        );
        // Another log's key: 403; unknown origin: 404.
        let other = SigningKey::from_bytes(&[4; 32]);
        assert_eq!(
            w.add_checkpoint(
                &add_checkpoint_body(7, &[], &log_note(&leaves[..7], &other)),
                3
            )
            .unwrap_err()
            .status,
            403
        );
    }
}
