//! Group commit: one thread owns the [`Wal`] and the [`Sequencer`], so sequencing decisions follow WAL
//! order; batches that arrive while a sync is running are appended together and share the next fsync.
//!
//! Failure never acknowledges what is not durable: if a write or sync fails, every batch of the group is
//! refused and the sequencer goes back to what the last successful sync made durable. The next batch
//! starts a fresh segment (the failed one keeps only its acknowledged frames for sealing), so a full disk
//! is recovered from without a restart once space is back; until then every batch is refused.
//!
//! Bounded backlog ([`IngestLimits`]): a segment is closed once it holds `max_segment_bytes` (the sealer
//! then seals it), and while the log's segments not yet sealed hold `max_backlog_bytes` a collector's
//! batch is refused whole, before it is sequenced or written ([`CommitError::Backlog`]): nothing of it
//! is stored, nothing refused is half-written, and the collector sends it again later. Iris's own
//! audit events are never refused for backlog (one small record per request; refusing them would
//! refuse every request, reads included).

use crate::event::{Event, Rejection};
use crate::sequencer::{Admission, Sequencer};
use crate::wal::{Wal, WalError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use tokio::sync::oneshot;

/// What one WAL record holds.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct WalRecord {
    pub events: Vec<Event>,
    pub rejections: Vec<Rejection>,
}

/// A validated batch, ready to be sequenced and made durable.
#[derive(Debug, Default)]
pub struct Batch {
    /// When the batch was received (µs since epoch), stamped on rejections.
    pub received_at: i64,
    /// Valid events with their 1-based line number.
    pub events: Vec<(u64, Event)>,
    /// Records already refused by validation.
    pub rejections: Vec<Rejection>,
    /// Number the events here, each taking the next `source_seq` of its source (Iris's own audit
    /// events, which have no collector to number them).
    pub assign_seq: bool,
}

/// What became of a batch.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutcome {
    /// Events newly stored.
    pub accepted: u64,
    /// Events already stored before (a resend), acknowledged but not stored twice.
    pub duplicates: u64,
    /// Refused records: line and reason, in line order.
    pub rejected: Vec<(u64, String)>,
}

/// Errors of the committer.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(
        "the write-ahead log failed ({0}); nothing of this batch was acknowledged, send it again"
    )]
    Failed(String),
    #[error("the committer has stopped")]
    Stopped,
    #[error("cannot encode WAL record: {0}")]
    Encode(#[from] serde_json::Error),
    /// The unsealed backlog is over its limit: nothing of the batch was stored.
    #[error(
        "the write-ahead log holds {backlog} bytes not yet sealed, over the limit of {limit}: nothing of this batch was stored; send it again later"
    )]
    Backlog {
        /// Bytes in the log's segments not yet sealed.
        backlog: u64,
        /// The limit ([`IngestLimits::max_backlog_bytes`]).
        limit: u64,
    },
}

/// Default [`IngestLimits::max_segment_bytes`]: 64 MiB.
pub const DEFAULT_MAX_SEGMENT_BYTES: u64 = 64 << 20;
/// Default [`IngestLimits::max_backlog_bytes`]: 1 GiB.
pub const DEFAULT_MAX_BACKLOG_BYTES: u64 = 1 << 30;

/// Bounds of the write-ahead log under ingest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IngestLimits {
    /// A segment is closed, for the sealer, once it holds this many bytes (0: only on rotation).
    pub max_segment_bytes: u64,
    /// Collectors' batches are refused while the log's segments not yet sealed (closed and current)
    /// hold this many bytes (0: never).
    pub max_backlog_bytes: u64,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_segment_bytes: DEFAULT_MAX_SEGMENT_BYTES,
            max_backlog_bytes: DEFAULT_MAX_BACKLOG_BYTES,
        }
    }
}

/// What the committer thread tells its handles.
#[derive(Default)]
struct Shared {
    /// Events made durable since the last rotation.
    pending: AtomicU64,
    /// Bytes in the log's segments not yet sealed, as of the last group commit.
    backlog: AtomicU64,
    /// Segments closed for size since the last rotation.
    closed: AtomicU64,
}

enum Command {
    Commit(Batch, oneshot::Sender<Result<BatchOutcome, CommitError>>),
    Rotate(oneshot::Sender<Result<Vec<PathBuf>, CommitError>>),
}

/// Handle to the group-commit thread.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    limits: IngestLimits,
}

impl Committer {
    /// Starts the thread that owns `wal` and `sequencer`, with the default [`IngestLimits`].
    pub fn start(wal: Wal, sequencer: Sequencer) -> Committer {
        Committer::start_with(wal, sequencer, IngestLimits::default())
    }

    /// Starts the thread that owns `wal` and `sequencer`, within `limits`.
    pub fn start_with(wal: Wal, sequencer: Sequencer, limits: IngestLimits) -> Committer {
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("iris-wal".into())
            .spawn(move || run(wal, sequencer, rx, thread_shared, limits))
            .expect("spawning the WAL thread");
        Committer { tx, shared, limits }
    }

    /// The bounds it runs within.
    pub fn limits(&self) -> IngestLimits {
        self.limits
    }

    /// Bytes in the log's segments not yet sealed, as of the last group commit.
    pub fn backlog_bytes(&self) -> u64 {
        self.shared.backlog.load(Ordering::Relaxed)
    }

    /// Whether the backlog was over its limit at the last group commit (the group-commit thread
    /// decides on each batch; this is what the sealer looks at).
    pub fn over_backlog(&self) -> Option<CommitError> {
        let (backlog, limit) = (self.backlog_bytes(), self.limits.max_backlog_bytes);
        (limit > 0 && backlog >= limit).then_some(CommitError::Backlog { backlog, limit })
    }

    /// Segments closed for their size since the last [`Committer::rotate`]: ready for the sealer.
    pub fn closed_segments(&self) -> u64 {
        self.shared.closed.load(Ordering::Relaxed)
    }

    /// Sequences the batch and returns once it is durable.
    pub async fn commit(&self, batch: Batch) -> Result<BatchOutcome, CommitError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Commit(batch, reply))
            .map_err(|_| CommitError::Stopped)?;
        rx.await.map_err(|_| CommitError::Stopped)?
    }

    /// [`Committer::commit`] for callers outside an async runtime.
    pub fn commit_blocking(&self, batch: Batch) -> Result<BatchOutcome, CommitError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Commit(batch, reply))
            .map_err(|_| CommitError::Stopped)?;
        rx.blocking_recv().map_err(|_| CommitError::Stopped)?
    }

    /// Closes the current segment; returns all closed segments for the sealer.
    pub async fn rotate(&self) -> Result<Vec<PathBuf>, CommitError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Rotate(reply))
            .map_err(|_| CommitError::Stopped)?;
        rx.await.map_err(|_| CommitError::Stopped)?
    }

    /// Events made durable since the last rotation (what the next seal will pick up).
    pub fn pending_events(&self) -> u64 {
        self.shared.pending.load(Ordering::Relaxed)
    }
}

/// Bytes of the log not yet sealed (every segment still in its directory), or 0 when it cannot be
/// listed (said in the log: a listing error must not stop ingest).
fn backlog_of(wal: &Wal) -> u64 {
    match crate::wal::segments_bytes(wal.dir()) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("cannot measure the write-ahead log backlog: {e}");
            0
        }
    }
}

fn run(
    mut wal: Wal,
    mut seq: Sequencer,
    rx: mpsc::Receiver<Command>,
    shared: Arc<Shared>,
    limits: IngestLimits,
) {
    let pending = &shared.pending;
    // The sequencer as of the last successful sync: what a failure goes back to.
    let mut durable = seq.clone();
    let mut failed: Option<String> = None;
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < 4096 {
            match rx.try_recv() {
                Ok(c) => group.push(c),
                Err(_) => break,
            }
        }
        // After a failure, try again on a fresh segment (a full disk with space back, say).
        if let Some(why) = &failed {
            match wal.restart_segment() {
                Ok(()) => {
                    tracing::warn!("write-ahead log writable again (it failed: {why})");
                    failed = None;
                }
                Err(e) => tracing::error!("write-ahead log still failing: {e}"),
            }
        }
        let mut commits = Vec::new();
        let mut rotations = Vec::new();
        let mut appended = 0u64;
        // The backlog as the group starts (everything before it is written and synced), plus what the
        // group appends: a batch that finds it at the limit is refused before it is sequenced.
        let backlog = if limits.max_backlog_bytes > 0 {
            backlog_of(&wal)
        } else {
            0
        };
        shared.backlog.store(backlog, Ordering::Relaxed);
        let start_bytes = wal.current_bytes();
        for cmd in group {
            match cmd {
                Command::Commit(batch, reply) => {
                    if let Some(why) = &failed {
                        let _ = reply.send(Err(CommitError::Failed(why.clone())));
                        continue;
                    }
                    let now = backlog + wal.current_bytes().saturating_sub(start_bytes);
                    if limits.max_backlog_bytes > 0
                        && now >= limits.max_backlog_bytes
                        && !batch.assign_seq
                    {
                        let _ = reply.send(Err(CommitError::Backlog {
                            backlog: now,
                            limit: limits.max_backlog_bytes,
                        }));
                        continue;
                    }
                    match append(&mut wal, &mut seq, batch) {
                        Ok(outcome) => {
                            appended += outcome.accepted;
                            commits.push((reply, outcome));
                        }
                        Err(e) => {
                            failed = Some(e.to_string());
                            let _ = reply.send(Err(e));
                        }
                    }
                }
                Command::Rotate(reply) => rotations.push(reply),
            }
        }
        // Rotation syncs the closing segment, so the commits of this group are durable through it.
        let synced = if failed.is_some() {
            Err(failed.clone().unwrap_or_default())
        } else if rotations.is_empty() {
            wal.sync().map(|()| Vec::new()).map_err(|e| e.to_string())
        } else {
            wal.rotate().map_err(|e| e.to_string())
        };
        match synced {
            Ok(closed) => {
                durable = seq.clone();
                if rotations.is_empty() {
                    pending.fetch_add(appended, Ordering::Relaxed);
                } else {
                    pending.store(0, Ordering::Relaxed);
                }
                for (reply, outcome) in commits {
                    let _ = reply.send(Ok(outcome));
                }
                let rotated = !rotations.is_empty();
                for reply in rotations {
                    let _ = reply.send(Ok(closed.clone()));
                }
                if rotated {
                    shared.closed.store(0, Ordering::Relaxed);
                } else if limits.max_segment_bytes > 0
                    && wal.current_bytes() >= limits.max_segment_bytes
                {
                    // Full: close it for the sealer (what it holds is synced and acknowledged).
                    match wal.rotate() {
                        Ok(_) => {
                            shared.closed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            tracing::error!("closing a full write-ahead log segment failed: {e}");
                            failed = Some(e.to_string());
                        }
                    }
                }
            }
            Err(why) => {
                tracing::error!(
                    "write-ahead log failed, refusing events until a fresh segment can be written: {why}"
                );
                seq = durable.clone();
                failed = Some(why.clone());
                for (reply, _) in commits {
                    let _ = reply.send(Err(CommitError::Failed(why.clone())));
                }
                for reply in rotations {
                    let _ = reply.send(Err(CommitError::Failed(why.clone())));
                }
            }
        }
    }
}

/// Sequences one batch and appends what it keeps to the WAL (not yet synced).
fn append(wal: &mut Wal, seq: &mut Sequencer, batch: Batch) -> Result<BatchOutcome, CommitError> {
    let (record, outcome) = admit_batch(seq, batch);
    if !record.events.is_empty() || !record.rejections.is_empty() {
        let numbers = record
            .events
            .iter()
            .map(|e| (e.source.as_str(), e.source_seq))
            .chain(
                record
                    .rejections
                    .iter()
                    .filter_map(|r| Some((r.source.as_deref()?, r.source_seq?))),
            );
        wal.append_numbered(&serde_json::to_vec(&record)?, numbers)?;
    }
    Ok(outcome)
}

/// Decides on every event of a batch: new ones are kept, resent ones counted as duplicates, ones going
/// backwards refused. Returns what to store (events and rejections) and what to tell the sender.
pub fn admit_batch(seq: &mut Sequencer, batch: Batch) -> (WalRecord, BatchOutcome) {
    let mut record = WalRecord {
        events: Vec::with_capacity(batch.events.len()),
        rejections: batch.rejections,
    };
    let mut outcome = BatchOutcome::default();
    for (line, mut event) in batch.events {
        if batch.assign_seq {
            event.source_seq = seq.next(&event.source);
        }
        match seq.admit(&event.source, event.source_seq) {
            Admission::Accept => {
                outcome.accepted += 1;
                record.events.push(event);
            }
            Admission::Duplicate => outcome.duplicates += 1,
            refused @ (Admission::Backwards { .. } | Admission::Implausible { .. }) => {
                let reason = match refused {
                    Admission::Implausible { highest, max_jump } => format!(
                        "source_seq {} is implausible: more than {max_jump} ahead of source `{}`'s highest number {highest} (an administrator can move it with `iris source reset`)",
                        event.source_seq, event.source
                    ),
                    Admission::Backwards { highest } => format!(
                        "source_seq {} goes backwards: source `{}` is already at {highest}",
                        event.source_seq, event.source
                    ),
                    Admission::Accept | Admission::Duplicate => String::new(),
                };
                seq.record_rejected(&event.source, event.source_seq);
                record.rejections.push(Rejection {
                    received_at: batch.received_at,
                    source: Some(event.source),
                    source_seq: Some(event.source_seq),
                    line,
                    reason,
                });
            }
        }
    }
    // Refused numbers are accounted for after the batch's events are admitted, so that a bad record
    // does not make the good ones before it look as if they went backwards.
    for r in &record.rejections {
        if let (Some(source), Some(n)) = (&r.source, r.source_seq) {
            seq.record_rejected(source, n);
        }
    }
    outcome.rejected = record
        .rejections
        .iter()
        .map(|r| (r.line, r.reason.clone()))
        .collect();
    outcome.rejected.sort_by_key(|(line, _)| *line);
    (record, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ActorKind, Operation, Outcome, SubjectKind};
    use crate::wal;

    fn event(seq: u64) -> Event {
        Event {
            ts: 1_740_816_000_000_000,
            actor_id: "U1".into(),
            actor_kind: ActorKind::Person,
            actor_org: "org1".into(),
            actor_role: None,
            subject_id: "31050600120".into(),
            subject_kind: SubjectKind::Niss,
            ticket: "T1".into(),
            message_type: "L100".into(),
            application: "app".into(),
            operation: Operation::Consult,
            result: Outcome::Ok,
            error_code: None,
            channel: "batch".into(),
            purpose: None,
            source: "c".into(),
            source_seq: seq,
        }
    }

    fn batch(seqs: std::ops::RangeInclusive<u64>) -> Batch {
        Batch {
            received_at: 0,
            events: seqs.map(|n| (n, event(n))).collect(),
            rejections: Vec::new(),
            assign_seq: false,
        }
    }

    #[test]
    fn a_failed_sync_acknowledges_nothing_and_the_next_batch_gets_a_fresh_segment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Wal::open(dir.path()).expect("open");
        log.fail_syncs = 1;
        let committer = Committer::start(log, Sequencer::default());
        // The disk is full: refused, and nothing of it counts as stored.
        let err = committer
            .commit_blocking(batch(1..=3))
            .expect_err("refused");
        assert!(matches!(err, CommitError::Failed(_)), "{err}");
        // Space is back: the same batch is accepted (not taken for a resend), without a restart.
        let ok = committer.commit_blocking(batch(1..=3)).expect("accepted");
        assert_eq!((ok.accepted, ok.duplicates), (3, 0));
        let ok = committer.commit_blocking(batch(3..=4)).expect("accepted");
        assert_eq!((ok.accepted, ok.duplicates), (1, 1));
        // What is sealed from the log is exactly what was acknowledged.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let closed = rt.block_on(committer.rotate()).expect("rotate");
        assert_eq!(closed.len(), 2, "the failed segment and the fresh one");
        let mut seqs = Vec::new();
        for path in &closed {
            let scan = wal::scan_segment(path).expect("scan");
            assert!(scan.corruption().is_empty());
            for f in scan.acknowledged_frames() {
                let rec: WalRecord = serde_json::from_slice(&f.payload).expect("record");
                seqs.extend(rec.events.iter().map(|e| e.source_seq));
            }
        }
        assert_eq!(seqs, vec![1, 2, 3, 4]);
    }
}
