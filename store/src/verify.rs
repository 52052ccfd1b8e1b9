//! `verify`: re-reads every partition and seal and names each problem (DESIGN §3).

use crate::chain::read_entries;
use crate::checkpoint::Checkpoint;
use crate::concurrent::{cores, map_bounded};
use crate::error::StoreError;
use crate::keys::Keyring;
use crate::layout::{CHAIN, COMPACTED, EVENTS, INDEX, REJECTIONS, TABLES, index_path};
use crate::location::StoreLocation;
use crate::manifest::{FileKind, Manifest};
use crate::reindex::IndexState;
use crate::seal::{GENESIS, Seal, SealKind};
use futures::TryStreamExt;
use iris_ingest::IntervalSet;
use object_store::ObjectStoreExt;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The kinds of problems, with the stable code printed at the start of each finding line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingKind {
    /// A partition's bytes differ from its seal's digest.
    Changed,
    /// A sealed partition is gone.
    Deleted,
    /// A partition file that no seal names.
    Unsealed,
    /// A seal number is absent from the chain.
    SealMissing,
    /// A seal stands at another slot than its number.
    SealReordered,
    /// A seal's `prev` is not the digest of the seal before it.
    ChainBroken,
    /// A seal or an object under `chain/` that cannot be read.
    Unreadable,
    /// A signature that does not verify.
    BadSignature,
    /// A seal signed by a key the keyring does not know.
    UnknownKey,
    /// A seal signed outside its key's validity.
    ExpiredKey,
    /// Sequence numbers of a source that never arrived (neither stored nor refused).
    SeqGap,
    /// A sequence number sealed twice.
    SeqDuplicate,
    /// Fewer seals than a checkpoint counted.
    Truncated,
    /// The chain differs from what a checkpoint recorded.
    Diverged,
    /// A sealed event partition has no lookup index (derived data, `iris reindex`).
    IndexMissing,
    /// A lookup index was built from other bytes than the sealed partition's, or is damaged.
    IndexStale,
    /// A compaction seal names a replaced file that was not live with those bytes, or changes the row count.
    CompactionMismatch,
    /// A lookup index blob whose bytes differ from the digest sealed for it.
    IndexChanged,
    /// Acknowledged events lost to write-ahead log damage, as `iris recover` recorded them.
    Lost,
    /// The write-ahead log is damaged before its acknowledged end (`iris recover`).
    WalDamaged,
    /// Seals signed by a key the chain never trusted: not introduced by a rotation entry signed by its
    /// predecessor, or not the published key given with `--key`.
    UntrustedKey,
    /// `keys/keyring.json` differs from the keys the chain's rotation entries introduced (a key added,
    /// removed, swapped, or its validity edited).
    KeyringMismatch,
    /// A file a signed retention run deleted (a notice: its seal and head stay in the log).
    Pruned,
    /// A retention seal names a file that was not live with those bytes.
    RetentionMismatch,
}

impl FindingKind {
    /// The code printed for this kind.
    pub fn code(self) -> &'static str {
        match self {
            FindingKind::Changed => "CHANGED",
            FindingKind::Deleted => "DELETED",
            FindingKind::Unsealed => "UNSEALED",
            FindingKind::SealMissing => "SEAL-MISSING",
            FindingKind::SealReordered => "SEAL-REORDERED",
            FindingKind::ChainBroken => "CHAIN-BROKEN",
            FindingKind::Unreadable => "UNREADABLE",
            FindingKind::BadSignature => "BAD-SIGNATURE",
            FindingKind::UnknownKey => "UNKNOWN-KEY",
            FindingKind::ExpiredKey => "EXPIRED-KEY",
            FindingKind::SeqGap => "SEQ-GAP",
            FindingKind::SeqDuplicate => "SEQ-DUPLICATE",
            FindingKind::Truncated => "TRUNCATED",
            FindingKind::Diverged => "DIVERGED",
            FindingKind::IndexMissing => "INDEX-MISSING",
            FindingKind::IndexStale => "INDEX-STALE",
            FindingKind::CompactionMismatch => "COMPACTION-MISMATCH",
            FindingKind::IndexChanged => "INDEX-CHANGED",
            FindingKind::Lost => "LOST",
            FindingKind::WalDamaged => "WAL-DAMAGED",
            FindingKind::UntrustedKey => "UNTRUSTED-KEY",
            FindingKind::KeyringMismatch => "KEYRING-MISMATCH",
            FindingKind::Pruned => "PRUNED",
            FindingKind::RetentionMismatch => "RETENTION-MISMATCH",
        }
    }

    /// Whether this kind only informs (listed, but the store still verifies).
    pub fn is_notice(self) -> bool {
        matches!(self, FindingKind::Pruned)
    }
}

/// One problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    /// What it is about: a partition path, `seal #n`, `source S`, `chain`.
    pub subject: String,
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.kind.code(), self.subject, self.detail)
    }
}

/// The result of a verification.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub seals: u64,
    pub partitions: u64,
    pub bytes: u64,
    /// Bytes read and hashed: the live files and their index blobs.
    pub hashed: u64,
    /// The keys the chain trusts (genesis, then each one a rotation introduced).
    pub trusted: Keyring,
}

impl Report {
    fn add(&mut self, kind: FindingKind, subject: impl Into<String>, detail: impl Into<String>) {
        self.findings.push(Finding {
            kind,
            subject: subject.into(),
            detail: detail.into(),
        });
    }

    /// Whether everything holds (notices such as `PRUNED` aside).
    pub fn ok(&self) -> bool {
        self.findings.iter().all(|f| f.kind.is_notice())
    }
}

/// Verifies the whole store, the genesis key taken from the keyring. `progress` receives the bytes
/// hashed so far.
pub async fn verify(
    loc: &StoreLocation,
    keyring: &Keyring,
    checkpoint: Option<&Checkpoint>,
    progress: Arc<AtomicU64>,
) -> Result<Report, StoreError> {
    verify_anchored(loc, keyring, None, checkpoint, progress).await
}

/// Verifies the whole store; `anchor` is the published genesis public key (hex), when given: the
/// chain's keys are then derived from it and its rotation entries, never from the keyring alone.
pub async fn verify_anchored(
    loc: &StoreLocation,
    keyring: &Keyring,
    anchor: Option<&str>,
    checkpoint: Option<&Checkpoint>,
    progress: Arc<AtomicU64>,
) -> Result<Report, StoreError> {
    let mut report = Report::default();
    let entries = read_entries(loc).await?;

    // 1. The chain: slots contiguous, numbers in place, links, keys and signatures.
    let mut seals: Vec<Seal> = Vec::new();
    let mut prev: Option<(u64, String)> = None; // (slot, digest) of the last readable seal
    let mut expected_slot = 0u64;
    for e in entries {
        let Some(slot) = e.slot else {
            report.add(
                FindingKind::Unreadable,
                e.path,
                "object under chain/ is not a seal file",
            );
            continue;
        };
        while expected_slot < slot {
            report.add(
                FindingKind::SealMissing,
                format!("seal #{expected_slot}"),
                "removed from the chain",
            );
            expected_slot += 1;
        }
        expected_slot = slot + 1;
        let seal = match e.seal {
            Ok(s) => s,
            Err(why) => {
                report.add(FindingKind::Unreadable, format!("seal #{slot}"), why);
                prev = None;
                continue;
            }
        };
        report.seals += 1;
        if seal.n != slot {
            report.add(
                FindingKind::SealReordered,
                format!("seal #{slot}"),
                format!("the file of seal #{slot} holds seal #{}", seal.n),
            );
        }
        let expected_prev = match &prev {
            Some((p, digest)) if *p + 1 == slot => Some(digest.clone()),
            None if slot == 0 => Some(GENESIS.to_owned()),
            _ => None, // the seal before is missing or unreadable: already reported
        };
        if let Some(want) = expected_prev
            && seal.prev != want
        {
            report.add(
                FindingKind::ChainBroken,
                format!("seal #{slot}"),
                "does not follow the seal before it (a seal was removed, inserted, reordered or changed)",
            );
        }
        prev = Some((slot, seal.digest()));
        seals.push(seal);
    }

    // Keys and signatures: trust derived from the chain's rotation entries (crate::trust).
    let trust = crate::trust::derive(&seals, keyring, anchor);
    report.findings.extend(trust.findings.iter().cloned());
    report.trusted = trust.keyring();

    // 2. Against the checkpoint, when one is given.
    if let Some(cp) = checkpoint {
        if let Err(why) = cp.check_signature(&report.trusted) {
            report.add(FindingKind::BadSignature, "checkpoint", why);
        }
        let count = expected_slot;
        if count < cp.seals {
            report.add(
                FindingKind::Truncated,
                "chain",
                format!(
                    "has {count} seals, the checkpoint of {} counted {}",
                    iris_ingest::event::format_micros(cp.created),
                    cp.seals
                ),
            );
        } else if cp.seals > 0 {
            let at = seals.iter().find(|s| s.n == cp.seals - 1).map(Seal::digest);
            if at.as_deref() != Some(cp.head.as_str()) {
                report.add(
                    FindingKind::Diverged,
                    format!("seal #{}", cp.seals - 1),
                    "differs from the checkpoint's head (history rewritten)",
                );
            }
        }
    }

    // 3. The live files (what the seals added, minus what compactions replaced, each compaction checked
    //    against the files it names): present, same bytes, with their index.
    let mut manifest = Manifest::default();
    for seal in &seals {
        let kind = if seal.kind == SealKind::Retention {
            FindingKind::RetentionMismatch
        } else {
            FindingKind::CompactionMismatch
        };
        for m in manifest.apply(seal) {
            report.add(
                kind,
                format!("seal #{}", seal.n),
                format!("{}: {}", m.path, m.why),
            );
        }
    }
    let workers = cores();
    let jobs: Vec<_> = manifest
        .files
        .iter()
        .map(|(path, f)| {
            let index = f.is_events().then(|| loc.path(&index_path(path)));
            (
                loc.store.clone(),
                loc.path(path),
                index,
                path.clone(),
                progress.clone(),
            )
        })
        .collect();
    type Check = (String, Option<String>, Option<IndexState>, u64);
    // Every file streamed through SHA-256 (never whole in memory), one per core at a time.
    let checks: Vec<Check> = map_bounded(
        jobs,
        workers,
        |(store, full, index, rel, progress)| async move {
            let (index, index_bytes) = match index {
                Some(path) => {
                    let (state, len) = index_state_streamed(store.as_ref(), &path).await?;
                    (Some(state), len)
                }
                None => (None, 0),
            };
            progress.fetch_add(index_bytes, Ordering::Relaxed);
            let Some(hashed) = hash_object(store.as_ref(), &full, 0).await? else {
                return Ok((rel, None, index, index_bytes));
            };
            progress.fetch_add(hashed.len, Ordering::Relaxed);
            Ok::<_, StoreError>((rel, Some(hashed.sha256), index, index_bytes + hashed.len))
        },
    )
    .await?
    .into_iter()
    .collect::<Result<_, _>>()?;
    for (path, digest, index, hashed) in checks {
        report.hashed += hashed;
        let Some(file) = manifest.files.get(&path) else {
            continue;
        };
        let n = file.seal;
        report.partitions += 1;
        report.bytes += file.bytes;
        // The index is judged against the seal, not the file: a tampered partition with a good index is
        // CHANGED, an untouched partition with a bad index is only an index problem.
        match (index, &file.index_sha256) {
            (Some(IndexState::Missing), _) => report.add(
                FindingKind::IndexMissing,
                index_path(&path),
                "no lookup index for this sealed partition (derived data: `iris reindex` rebuilds it)",
            ),
            // The index digest is sealed: the blob must be exactly those bytes.
            (Some(IndexState::Built { sha256, .. } | IndexState::Damaged { sha256, .. }), Some(want))
                if sha256 != *want =>
            {
                report.add(
                    FindingKind::IndexChanged,
                    index_path(&path),
                    format!(
                        "index bytes differ from their sealed digest (sha256 {} sealed, {} found); queries scan the partition instead, `iris reindex` rebuilds it",
                        short(want),
                        short(&sha256)
                    ),
                )
            }
            (Some(IndexState::Built { from, .. }), _) if from != file.sha256 => report.add(
                FindingKind::IndexStale,
                index_path(&path),
                "built from other bytes than the sealed partition (`iris reindex` rebuilds it)",
            ),
            (Some(IndexState::Damaged { why, .. }), _) => report.add(
                FindingKind::IndexStale,
                index_path(&path),
                format!("unreadable ({why}); `iris reindex` rebuilds it"),
            ),
            _ => {}
        }
        match digest {
            None => report.add(
                FindingKind::Deleted,
                path,
                format!("sealed by seal #{n}, no longer in the store"),
            ),
            Some(d) if d != file.sha256 => report.add(
                FindingKind::Changed,
                path,
                format!(
                    "bytes differ from seal #{n} (sha256 {} sealed, {} found)",
                    short(&file.sha256),
                    short(&d)
                ),
            ),
            Some(_) => {}
        }
    }

    // 4. Files nobody sealed, everywhere Iris stores data. (Files a compaction replaced but an
    //    interrupted run left behind are named by their seals; no query reads them and the next
    //    compaction deletes them. `quarantine/` holds what recovery set aside on purpose.)
    let live_indexes: std::collections::BTreeSet<String> =
        manifest.event_files().map(|(p, _)| index_path(p)).collect();
    let mut found: Vec<String> = loc
        .store
        .list(Some(&loc.path("")))
        .map_ok(|m| loc.relative(&m.location))
        .try_collect()
        .await?;
    found.sort();
    // Files a signed retention run deleted: listed as notices, not DELETED.
    for (path, n) in &manifest.pruned {
        let before = seals
            .iter()
            .find(|s| s.n == *n)
            .map(|s| s.day.clone())
            .unwrap_or_default();
        // A retention seal prunes only files whose rows all fall before its cut-off: one naming a
        // later file (a forged or selective "retention") is a mismatch, not a notice.
        let kind = match path.split('/').next().unwrap_or_default() {
            COMPACTED => FileKind::Compacted,
            REJECTIONS => FileKind::Rejections,
            EVENTS => FileKind::Events,
            _ => FileKind::Table,
        };
        let cut = chrono::NaiveDate::parse_from_str(&before, "%Y-%m-%d").ok();
        match (crate::retention::day_range(path, kind), cut) {
            (Some((_, last)), Some(cut)) if last < cut => {}
            (days, _) => {
                report.add(
                    FindingKind::RetentionMismatch,
                    format!("seal #{n}"),
                    format!(
                        "{path}: pruned though its rows reach {} (cut-off {before})",
                        days.map(|d| d.1.to_string())
                            .unwrap_or_else(|| "an unknown day".into())
                    ),
                );
                continue;
            }
        }
        let pending = if found.binary_search(path).is_ok() {
            " (its deletion was interrupted: `iris retention` again removes it)"
        } else {
            ""
        };
        report.add(
            FindingKind::Pruned,
            path.clone(),
            format!(
                "deleted by the retention run of seal #{n} (before {before}); its seal and Merkle head stay in the log{pending}"
            ),
        );
    }
    for rel in found {
        let top = rel.split('/').next().unwrap_or_default();
        let why = match top {
            EVENTS | REJECTIONS | COMPACTED | TABLES if !manifest.is_named(&rel) => {
                "present in the store but named by no seal"
            }
            INDEX if !live_indexes.contains(&rel) => "an index blob of no live partition",
            EVENTS | REJECTIONS | COMPACTED | TABLES | INDEX | CHAIN | "quarantine" => continue,
            _ => "outside every directory Iris writes",
        };
        report.add(FindingKind::Unsealed, rel, why);
    }

    // 5. Sequence numbers per source: stored, refused, lost (recorded by `iris recover`) or skipped by a
    //    reset, each stored once, no holes below the highest stored number. A reset voids, for gaps,
    //    the numbers at or above its next one that came before it (a wild number it undid).
    #[derive(Default)]
    struct SeqCheck {
        stored: IntervalSet,
        counted: IntervalSet,
        events: IntervalSet,
    }
    let mut per_source: BTreeMap<&str, SeqCheck> = BTreeMap::new();
    for seal in &seals {
        if matches!(
            seal.kind,
            SealKind::Compaction
                | SealKind::Table
                | SealKind::Index
                | SealKind::Rotation
                | SealKind::Retention
        ) {
            continue;
        }
        let st = per_source.entry(seal.source.as_str()).or_default();
        if let (SealKind::Reset, Some(next)) = (seal.kind, seal.next_seq) {
            st.counted = st.counted.split_at(next).0;
            st.events = st.events.split_at(next).0;
        }
        for [a, b] in &seal.seq_ranges {
            if seal.kind == SealKind::Events {
                if st.stored.overlaps(*a, *b) {
                    report.add(
                        FindingKind::SeqDuplicate,
                        format!("source {}", seal.source),
                        format!(
                            "seal #{} covers source_seq in {a}–{b} already sealed",
                            seal.n
                        ),
                    );
                }
                st.stored.insert_range(*a, *b);
                st.events.insert_range(*a, *b);
            }
            st.counted.insert_range(*a, *b);
        }
        if seal.kind == SealKind::Loss {
            report.add(
                FindingKind::Lost,
                format!("source {}", seal.source),
                format!(
                    "source_seq {} ({} numbers) recorded lost by seal #{}: {}",
                    seal.seq_ranges
                        .iter()
                        .map(|[a, b]| if a == b {
                            a.to_string()
                        } else {
                            format!("{a}–{b}")
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                    seal.rows,
                    seal.n,
                    seal.note
                ),
            );
        }
    }
    for (source, st) in per_source {
        let Some(top) = st.events.max() else { continue };
        for (a, b) in st.counted.gaps() {
            if b >= top {
                continue;
            }
            let what = if a == b {
                format!("source_seq {a} never arrived")
            } else {
                format!("source_seq {a}–{b} never arrived ({} numbers)", b - a + 1)
            };
            report.add(FindingKind::SeqGap, format!("source {source}"), what);
        }
    }
    Ok(report)
}

fn short(sha: &str) -> &str {
    sha.get(..16).unwrap_or(sha)
}

/// Bytes kept from the start of an index blob, for its header.
const INDEX_HEAD: usize = 1 << 20;
/// Read buffer of a local file being hashed.
const HASH_BUFFER: usize = 1 << 20;

/// What streaming an object through SHA-256 found.
struct Hashed {
    /// SHA-256, hex.
    sha256: String,
    /// Bytes read.
    len: u64,
    /// Its first bytes (as many as asked for).
    head: Vec<u8>,
}

/// Streams an object through SHA-256, keeping its first `keep` bytes; `None` when it does not exist.
/// A local file is read on a blocking thread a buffer at a time; another store's stream chunk by
/// chunk. Memory: one buffer, whatever the file's size.
async fn hash_object(
    store: &dyn object_store::ObjectStore,
    path: &object_store::path::Path,
    keep: usize,
) -> Result<Option<Hashed>, StoreError> {
    use sha2::{Digest, Sha256};
    let got = match store.get(path).await {
        Ok(r) => r,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(StoreError::from(e)),
    };
    // The first `keep` bytes of what has been read.
    let keep_head = move |head: &mut Vec<u8>, chunk: &[u8]| {
        let room = keep.saturating_sub(head.len()).min(chunk.len());
        head.extend_from_slice(&chunk[..room]);
    };
    match got.payload {
        object_store::GetResultPayload::File(mut file, local) => {
            tokio::task::spawn_blocking(move || {
                use std::io::Read;
                let (mut h, mut len, mut head) = (Sha256::new(), 0u64, Vec::new());
                let mut buf = vec![0u8; HASH_BUFFER];
                loop {
                    let n = match file.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(StoreError::io(&local)(e)),
                    };
                    keep_head(&mut head, &buf[..n]);
                    h.update(&buf[..n]);
                    len += n as u64;
                }
                Ok(Some(Hashed {
                    sha256: hex::encode(h.finalize()),
                    len,
                    head,
                }))
            })
            .await
            .map_err(|e| StoreError::Other(format!("hashing task failed: {e}")))?
        }
        object_store::GetResultPayload::Stream(mut chunks) => {
            let (mut h, mut len, mut head) = (Sha256::new(), 0u64, Vec::new());
            while let Some(chunk) = chunks.try_next().await? {
                keep_head(&mut head, &chunk);
                h.update(&chunk);
                len += chunk.len() as u64;
            }
            Ok(Some(Hashed {
                sha256: hex::encode(h.finalize()),
                len,
                head,
            }))
        }
    }
}

/// [`crate::reindex::index_state`] without reading the blob into memory: hashed as a stream, its header read from
/// its first bytes.
/// Returns the bytes hashed too.
async fn index_state_streamed(
    store: &dyn object_store::ObjectStore,
    path: &object_store::path::Path,
) -> Result<(IndexState, u64), StoreError> {
    let Some(hashed) = hash_object(store, path, INDEX_HEAD).await? else {
        return Ok((IndexState::Missing, 0));
    };
    let state = match iris_index::read_header_prefix(&hashed.head, hashed.len) {
        Ok(h) => IndexState::Built {
            from: h.partition_sha256,
            sha256: hashed.sha256,
        },
        Err(e) => IndexState::Damaged {
            why: e.to_string(),
            sha256: hashed.sha256,
        },
    };
    Ok((state, hashed.len))
}
