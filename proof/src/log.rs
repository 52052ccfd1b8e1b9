//! The trees of a store: one per sealed event file (its rows, in file order) and one over the seals
//! of the chain (the log), whose head a checkpoint signs.
//!
//! A seal's leaf commits to the heads of the event files it brought in. Those heads are computed
//! once from the sealed files (their bytes checked against the seal) and remembered in a cache
//! outside the store (`DATA/proofs/roots.json`), because a compaction later deletes the daily files
//! while their seals stay in the log. A seal whose files were already compacted away when its heads
//! were first asked for commits to no file (its events are proven through the compacted files).

use crate::ProofError;
use crate::bundle::{Bundle, EventProof, FORMAT};
use crate::leaf::{FileRoot, LeafEvent, seal_leaf};
use crate::merkle::{self, Hash, leaf_hash};
use crate::note::{CheckpointBody, Note, SignedCheckpoint};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type, UInt64Type};
use iris_store::StoreLocation;
use iris_store::keys::Signer;
use iris_store::manifest::{FileKind, Manifest};
use iris_store::seal::{Seal, SealKind, sha256_hex};
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// One remembered seal: its digest (a rewritten chain does not reuse it) and its files' heads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct CacheEntry {
    digest: String,
    roots: Vec<FileRoot>,
}

/// The remembered heads of sealed files, by seal number.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct RootCache {
    seals: BTreeMap<u64, CacheEntry>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProofError + '_ {
    move |source| ProofError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl RootCache {
    fn load(path: &Path) -> Result<RootCache, ProofError> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| ProofError::File {
                path: path.display().to_string(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RootCache::default()),
            Err(e) => Err(io(path)(e)),
        }
    }

    fn save(&self, path: &Path) -> Result<(), ProofError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let bytes = serde_json::to_vec(self).map_err(|e| ProofError::Store(e.to_string()))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))
    }
}

/// Reads a sealed event file (checking its bytes against `sha256`) into its events, in row order.
/// A daily partition stores its source in its path, `source` (a compacted file in a column).
pub async fn read_events(
    loc: &StoreLocation,
    path: &str,
    sha256: &str,
    source: Option<&str>,
) -> Result<Vec<LeafEvent>, ProofError> {
    let bytes = fetch(loc, path)
        .await?
        .ok_or_else(|| ProofError::Store(format!("{path}: missing; run `iris verify`")))?;
    if sha256_hex(&bytes) != sha256 {
        return Err(ProofError::Store(format!(
            "{path}: bytes differ from its seal; run `iris verify`"
        )));
    }
    let file_err = |reason: String| ProofError::File {
        path: path.to_owned(),
        reason,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.with_batch_size(64 * 1024).build())
        .map_err(|e| file_err(e.to_string()))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| file_err(e.to_string()))?;
        decode_batch(&batch, source, &mut out).map_err(file_err)?;
    }
    Ok(out)
}

fn decode_batch(
    batch: &RecordBatch,
    source: Option<&str>,
    out: &mut Vec<LeafEvent>,
) -> Result<(), String> {
    let col = |name: &str, ty: &DataType| -> Result<arrow::array::ArrayRef, String> {
        let c = batch
            .column_by_name(name)
            .ok_or_else(|| format!("no column `{name}`"))?;
        arrow::compute::cast(c, ty).map_err(|e| format!("column `{name}`: {e}"))
    };
    let ts = col("ts", &DataType::Int64)?;
    let ts = ts.as_primitive::<Int64Type>();
    let seq = col("source_seq", &DataType::UInt64)?;
    let seq = seq.as_primitive::<UInt64Type>();
    const NAMES: [&str; 14] = [
        "actor_id",
        "actor_kind",
        "actor_org",
        "actor_role",
        "subject_id",
        "subject_kind",
        "ticket",
        "message_type",
        "application",
        "operation",
        "result",
        "error_code",
        "channel",
        "purpose",
    ];
    let strings = NAMES
        .iter()
        .map(|n| col(n, &DataType::Utf8))
        .collect::<Result<Vec<_>, _>>()?;
    let s: Vec<_> = strings.iter().map(|a| a.as_string::<i32>()).collect();
    let src = match source {
        Some(_) => None,
        None => Some(col("source", &DataType::Utf8)?),
    };
    let src = src.as_ref().map(|a| a.as_string::<i32>());
    let opt = |i: usize, r: usize| (!s[i].is_null(r)).then(|| s[i].value(r).to_owned());
    let req = |i: usize, r: usize| -> Result<String, String> {
        opt(i, r).ok_or_else(|| format!("row {r}: `{}` is null", NAMES[i]))
    };
    for r in 0..batch.num_rows() {
        if ts.is_null(r) || seq.is_null(r) {
            return Err(format!("row {r}: null ts or source_seq"));
        }
        let source = match (source, src) {
            (Some(s), _) => s.to_owned(),
            (None, Some(a)) if !a.is_null(r) => a.value(r).to_owned(),
            _ => return Err(format!("row {r}: no source")),
        };
        out.push(LeafEvent {
            ts_us: ts.value(r),
            source,
            source_seq: seq.value(r),
            actor_id: req(0, r)?,
            actor_kind: req(1, r)?,
            actor_org: req(2, r)?,
            actor_role: opt(3, r),
            subject_id: req(4, r)?,
            subject_kind: req(5, r)?,
            ticket: req(6, r)?,
            message_type: req(7, r)?,
            application: req(8, r)?,
            operation: req(9, r)?,
            result: req(10, r)?,
            error_code: opt(11, r),
            channel: req(12, r)?,
            purpose: opt(13, r),
        });
    }
    Ok(())
}

async fn fetch(loc: &StoreLocation, path: &str) -> Result<Option<bytes::Bytes>, ProofError> {
    let store_err = |e: object_store::Error| ProofError::Store(format!("{path}: {e}"));
    match loc.store.get(&loc.path(path)).await {
        Ok(r) => Ok(Some(r.bytes().await.map_err(store_err)?)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(store_err(e)),
    }
}

/// The event files a seal brings into the log: `(path, sha256, source of a daily partition)`.
fn sealed_files(seal: &Seal) -> Vec<(String, String, Option<String>)> {
    match seal.kind {
        SealKind::Events => vec![(
            seal.path.clone(),
            seal.sha256.clone(),
            Some(seal.source.clone()),
        )],
        SealKind::Compaction => seal
            .written
            .iter()
            .map(|w| (w.path.clone(), w.sha256.clone(), None))
            .collect(),
        _ => Vec::new(),
    }
}

/// The heads of the event files of one seal.
async fn file_roots(
    loc: &StoreLocation,
    seal: &Seal,
    manifest: &Manifest,
) -> Result<Vec<FileRoot>, ProofError> {
    let files = sealed_files(seal);
    let mut roots = Vec::with_capacity(files.len());
    for (path, sha, source) in files {
        if !manifest.files.contains_key(&path)
            && (manifest.replaced.contains_key(&path) || manifest.pruned.contains_key(&path))
        {
            // Compacted away or pruned before its head was first computed: this seal commits to no
            // file (retention remembers the heads first, so this happens only if roots.json was lost).
            return Ok(Vec::new());
        }
        let events = read_events(loc, &path, &sha, source.as_deref()).await?;
        let hashes: Vec<Hash> = events.iter().map(|e| leaf_hash(&e.leaf())).collect();
        roots.push(FileRoot {
            rows: hashes.len() as u64,
            root: merkle::root(&hashes),
        });
    }
    Ok(roots)
}

/// The log: every seal with its stored bytes, its files' heads and its leaf hash.
pub struct LogTree {
    /// The seals, in chain order.
    pub seals: Vec<Seal>,
    /// Each seal's files' heads.
    pub roots: Vec<Vec<FileRoot>>,
    /// Each seal's leaf hash.
    pub leaves: Vec<Hash>,
    manifest: Manifest,
}

impl LogTree {
    /// Reads the chain and the heads of its files (from `cache`, computing and remembering those not
    /// there yet).
    pub async fn build(loc: &StoreLocation, cache: &Path) -> Result<LogTree, ProofError> {
        let seals = iris_store::chain::read_chain(loc).await?;
        let manifest = Manifest::from_seals(&seals);
        let mut cached = RootCache::load(cache)?;
        let mut changed = false;
        let mut roots = Vec::with_capacity(seals.len());
        let mut leaves = Vec::with_capacity(seals.len());
        for seal in &seals {
            let json = seal.to_json();
            let digest = sha256_hex(&json);
            let r = match cached.seals.get(&seal.n) {
                Some(e) if e.digest == digest => e.roots.clone(),
                _ => {
                    let r = file_roots(loc, seal, &manifest).await?;
                    cached.seals.insert(
                        seal.n,
                        CacheEntry {
                            digest,
                            roots: r.clone(),
                        },
                    );
                    changed = true;
                    r
                }
            };
            leaves.push(leaf_hash(&seal_leaf(&r, &json)));
            roots.push(r);
        }
        if changed {
            cached.save(cache)?;
        }
        Ok(LogTree {
            seals,
            roots,
            leaves,
            manifest,
        })
    }

    /// Number of seals.
    pub fn size(&self) -> u64 {
        self.leaves.len() as u64
    }

    /// The head of the first `size` seals.
    pub fn root_at(&self, size: u64) -> Option<Hash> {
        let n = usize::try_from(size).ok()?;
        (n <= self.leaves.len()).then(|| merkle::root(&self.leaves[..n]))
    }

    /// A checkpoint of the whole log signed by `signer` under `origin`.
    pub fn checkpoint(&self, origin: &str, signer: &Signer) -> Result<String, ProofError> {
        let body = CheckpointBody {
            origin: origin.to_owned(),
            size: self.size(),
            root: merkle::root(&self.leaves),
            extensions: Vec::new(),
        };
        sign_note(&body.to_text(), origin, signer)
    }

    /// Checks that `cp` (parsed, signature checked by the caller) is a head of this log: its size is
    /// at most ours and its head is that of our first `size` seals.
    pub fn check_head(&self, cp: &SignedCheckpoint) -> Result<(), ProofError> {
        match self.root_at(cp.body.size) {
            None => Err(ProofError::Consistency(format!(
                "the checkpoint covers {} seals, the store holds {}",
                cp.body.size,
                self.size()
            ))),
            Some(r) if r != cp.body.root => Err(ProofError::Consistency(format!(
                "the store's first {} seals do not have the checkpoint's head",
                cp.body.size
            ))),
            Some(_) => Ok(()),
        }
    }

    /// The consistency proof from the first `old` seals to the first `new`.
    pub fn consistency(&self, old: u64, new: u64) -> Option<Vec<Hash>> {
        let new = usize::try_from(new).ok()?;
        let old = usize::try_from(old).ok()?;
        merkle::consistency_proof(self.leaves.get(..new)?, old)
    }

    /// Where the event `source:seq` is stored now: `(file path, seal number)`.
    pub async fn locate(
        &self,
        loc: &StoreLocation,
        source: &str,
        seq: u64,
    ) -> Result<(String, u64), ProofError> {
        let covers = |s: &Seal| {
            s.kind == SealKind::Events
                && s.source == source
                && s.seq_ranges.iter().any(|[a, b]| (*a..=*b).contains(&seq))
        };
        let Some(daily) = self.seals.iter().find(|s| covers(s)) else {
            return Err(ProofError::Store(format!(
                "no seal covers event {source}:{seq}"
            )));
        };
        if let Some(f) = self.manifest.files.get(&daily.path) {
            return Ok((daily.path.clone(), f.seal));
        }
        let pruned = |by: u64| {
            let before = self
                .seals
                .get(by as usize)
                .map(|s| s.day.clone())
                .unwrap_or_default();
            ProofError::Store(format!(
                "event {source}:{seq} was pruned by the retention run of seal #{by} (before {before}): its record is deleted, so no proof of it can be made (its seal #{} stays in the log)",
                daily.n
            ))
        };
        if let Some(by) = self.manifest.pruned.get(&daily.path) {
            return Err(pruned(*by));
        }
        // Compacted: look in the live compacted files of its month.
        let month = daily.day.get(..7).unwrap_or_default();
        let prefix = format!("compacted/month={month}/");
        for (path, f) in &self.manifest.files {
            if f.kind != FileKind::Compacted || !path.starts_with(&prefix) {
                continue;
            }
            let events = read_events(loc, path, &f.sha256, None).await?;
            if events
                .iter()
                .any(|e| e.source == source && e.source_seq == seq)
            {
                return Ok((path.clone(), f.seal));
            }
        }
        if let Some((_, by)) = self
            .manifest
            .pruned
            .iter()
            .find(|(p, _)| p.starts_with(&prefix))
        {
            return Err(pruned(*by));
        }
        Err(ProofError::Store(format!(
            "event {source}:{seq} is in no live file (its partition {} was replaced)",
            daily.path
        )))
    }

    /// The proof bundle of the events `(source, seq)` against `checkpoint` (signed text; the caller
    /// made it or checked its signature), which must be a head of this log covering their seals.
    pub async fn prove(
        &self,
        loc: &StoreLocation,
        events: &[(String, u64)],
        checkpoint: &str,
    ) -> Result<Bundle, ProofError> {
        let cp = SignedCheckpoint::parse(checkpoint)?;
        self.check_head(&cp)?;
        let size = cp.body.size as usize;
        let mut files: HashMap<String, (Vec<LeafEvent>, Vec<Hash>)> = HashMap::new();
        let mut proofs = Vec::with_capacity(events.len());
        for (source, seq) in events {
            let (path, n) = self.locate(loc, source, *seq).await?;
            let seal = &self.seals[n as usize];
            if n as usize >= size {
                return Err(ProofError::Store(format!(
                    "{source}:{seq} was sealed (#{n}) after the checkpoint ({size} seals)"
                )));
            }
            let file_index = sealed_files(seal)
                .iter()
                .position(|(p, _, _)| *p == path)
                .ok_or_else(|| ProofError::Store(format!("seal #{n} does not name {path}")))?;
            let roots = &self.roots[n as usize];
            let froot = roots.get(file_index).ok_or_else(|| {
                ProofError::Store(format!("seal #{n} commits to no head for {path}"))
            })?;
            if !files.contains_key(&path) {
                let f = self
                    .manifest
                    .files
                    .get(&path)
                    .ok_or_else(|| ProofError::Store(format!("{path} is not live")))?;
                let source = (f.kind == FileKind::Events).then_some(seal.source.as_str());
                let evs = read_events(loc, &path, &f.sha256, source).await?;
                let hashes: Vec<Hash> = evs.iter().map(|e| leaf_hash(&e.leaf())).collect();
                files.insert(path.clone(), (evs, hashes));
            }
            let (evs, hashes) = &files[&path];
            if merkle::root(hashes) != froot.root || hashes.len() as u64 != froot.rows {
                return Err(ProofError::Store(format!(
                    "{path}: its rows no longer have the head sealed in the log"
                )));
            }
            let row = evs
                .iter()
                .position(|e| e.source == *source && e.source_seq == *seq)
                .ok_or_else(|| ProofError::Store(format!("{source}:{seq} is not in {path}")))?;
            let file_path = merkle::inclusion_proof(hashes, row)
                .ok_or_else(|| ProofError::Store("row outside its file".into()))?;
            let log_path = merkle::inclusion_proof(&self.leaves[..size], n as usize)
                .ok_or_else(|| ProofError::Store("seal outside the checkpoint".into()))?;
            let event = evs[row].clone();
            proofs.push(EventProof {
                leaf: hex::encode(event.leaf()),
                event,
                file: path.clone(),
                row: row as u64,
                file_path,
                seal: String::from_utf8(seal.to_json())
                    .map_err(|e| ProofError::Store(e.to_string()))?,
                file_roots: roots.clone(),
                file_index: file_index as u32,
                log_path,
            });
        }
        Ok(Bundle {
            format: FORMAT.to_owned(),
            checkpoint: checkpoint.to_owned(),
            proofs,
        })
    }
}

/// A retention run (`iris retention`, `iris serve --retention-days`): under the sealer's lock, the
/// Merkle heads of every sealed file are computed and remembered first (the pruned files can never be
/// read again, and their seals' leaves commit to those heads), then the expired files are pruned
/// under a signed retention seal (`Sealer::prune`). A head that cannot be computed stops the run
/// before anything is deleted.
pub async fn prune_expired(
    warehouse: &iris_store::warehouse::Warehouse,
    before: iris_store::retention::NaiveDate,
    by: &str,
    dry_run: bool,
) -> Result<iris_store::retention::RetentionSummary, ProofError> {
    let mut sealer = warehouse.sealer().lock().await;
    if !dry_run {
        // The dry run first: it refuses expired files that are missing or changed, before any head
        // is computed from changed bytes and remembered.
        sealer.prune(before, by, true).await?;
        LogTree::build(&warehouse.loc, &cache_path(&warehouse.dir.root)).await?;
    }
    Ok(sealer.prune(before, by, dry_run).await?)
}

/// Signs a note's text with a store signer (key name `name`).
pub fn sign_note(text: &str, name: &str, signer: &Signer) -> Result<String, ProofError> {
    let public: [u8; 32] = hex::decode(signer.info(0).public_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ProofError::Note("signer's public key".into()))?;
    let note = Note::sign(text, name, &public, |m| {
        hex::decode(signer.sign(m))
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ProofError::Note("signature is not 64 bytes".into()))
    })?;
    Ok(note.to_text())
}

/// The signed-note verifier key of a store signer under `name`.
pub fn verifier_key(name: &str, signer: &Signer) -> Result<String, ProofError> {
    let public: [u8; 32] = hex::decode(signer.info(0).public_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ProofError::Note("signer's public key".into()))?;
    Ok(crate::note::NoteVerifier::new(name, public)?.to_text())
}

/// The log's origin when none is given: the first line of its checkpoints and its key's name.
pub const DEFAULT_ORIGIN: &str = "iris.local/log";

/// The origin set in the environment (`IRIS_ORIGIN`), else [`DEFAULT_ORIGIN`].
pub fn origin_from_env() -> String {
    std::env::var("IRIS_ORIGIN")
        .ok()
        .filter(|o| !o.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ORIGIN.to_owned())
}

/// A signed C2SP checkpoint of the whole log of a data directory and its verifier key, under
/// `origin`.
pub async fn note_checkpoint(
    loc: &StoreLocation,
    data_dir: &Path,
    origin: &str,
    signer: &Signer,
) -> Result<(String, String), ProofError> {
    let tree = LogTree::build(loc, &cache_path(data_dir)).await?;
    Ok((
        tree.checkpoint(origin, signer)?,
        verifier_key(origin, signer)?,
    ))
}

/// Where the heads of sealed files are remembered in a data directory.
pub fn cache_path(data_dir: &Path) -> PathBuf {
    data_dir.join("proofs").join("roots.json")
}
