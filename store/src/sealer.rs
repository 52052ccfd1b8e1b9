//! Sealing: events and rejections become Parquet partitions (one per day and source), each appended to
//! the chain with a signed seal. Sealing is idempotent on `source`/`source_seq`: what a seal already
//! covers is dropped, so replaying a write-ahead log after a crash never stores an event twice.

use crate::chain::{self, ChainHead};
use crate::concurrent::{cores, map_bounded};
use crate::error::StoreError;
use crate::keys::Signer;
use crate::layout::{
    COMPACTED, EVENTS, INDEX, REJECTIONS, TABLES, index_path, nonce, partition_path, table_path,
};
use crate::location::StoreLocation;
use crate::manifest::Manifest;
use crate::partition::{events_batch, rejections_batch, to_parquet, to_parquet_with_row_groups};
use crate::seal::{Seal, SealKind, sha256_hex};
use crate::wal_replay::{self, SeqRisk, WalCorrupt, WalDamage};
use arrow::record_batch::RecordBatch;
use futures::TryStreamExt;
use iris_ingest::event::day_of_micros;
use iris_ingest::{Event, IntervalSet, Rejection, Sequencer};
use object_store::{ObjectStoreExt, PutPayload};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

/// Source name of rejections whose source could not be read.
pub const UNATTRIBUTED: &str = "unattributed";

/// What one sealing run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SealSummary {
    pub partitions: u64,
    pub events: u64,
    pub rejections: u64,
    /// Events dropped because a seal already covered them (replay after a crash).
    pub duplicates: u64,
    pub bytes: u64,
}

impl SealSummary {
    fn add(&mut self, other: &SealSummary) {
        self.partitions += other.partitions;
        self.events += other.events;
        self.rejections += other.rejections;
        self.duplicates += other.duplicates;
        self.bytes += other.bytes;
    }
}

/// State of what is sealed, for idempotency.
pub fn sealed_state(seals: &[Seal]) -> Sequencer {
    let mut q = Sequencer::default();
    for s in seals {
        apply_to_state(&mut q, s);
    }
    q
}

/// What one seal tells the sequencer: numbers stored, refused or lost, or a reset.
fn apply_to_state(q: &mut Sequencer, s: &Seal) {
    for [a, b] in &s.seq_ranges {
        match s.kind {
            SealKind::Events => q.load_accepted(&s.source, *a, *b),
            SealKind::Rejections | SealKind::Loss => q.load_rejected(&s.source, *a, *b),
            SealKind::Compaction
            | SealKind::Table
            | SealKind::Index
            | SealKind::Reset
            | SealKind::Rotation
            | SealKind::Retention => {}
        }
    }
    if let (SealKind::Reset, Some(next)) = (s.kind, s.next_seq) {
        q.reset(&s.source, next);
    }
}

/// What `iris recover` did.
#[derive(Clone, Debug, Default)]
pub struct RecoverySummary {
    /// What sealing the intact frames did.
    pub sealed: SealSummary,
    /// Intact frames read.
    pub frames: u64,
    /// The damage found, with what was at risk.
    pub damage: Vec<WalDamage>,
    /// What was lost for good (at risk and not found intact anywhere), recorded in loss seals.
    pub lost: Vec<SeqRisk>,
    /// Segments moved aside (kept for inspection) instead of deleted.
    pub kept: Vec<PathBuf>,
}

/// Appends sealed partitions to the store. One sealer at a time per store (the data-directory lock).
pub struct Sealer {
    loc: StoreLocation,
    signer: Signer,
    head: ChainHead,
    sealed: Sequencer,
    manifest: Manifest,
    /// The write-ahead log's second copy, if any.
    wal_mirror: Option<PathBuf>,
    /// Records sealed at once when replaying the write-ahead log.
    chunk_events: usize,
}

/// Default of [`Sealer::set_chunk_events`]: events (and rejections) of the write-ahead log sealed at
/// once. About 100 MB of decoded events, Arrow and Parquet at its peak.
pub const DEFAULT_CHUNK_EVENTS: usize = 100_000;

/// A partition encoded and ready to be written and sealed.
struct Encoded {
    kind: SealKind,
    day: String,
    source: String,
    rows: u64,
    ranges: IntervalSet,
    path: String,
    bytes: Vec<u8>,
    sha256: String,
    /// The lookup index blob (event partitions only).
    index: Option<Vec<u8>>,
}

impl Sealer {
    /// Opens the chain (every seal must be readable) and prepares to append.
    pub async fn open(loc: StoreLocation, signer: Signer) -> Result<Sealer, StoreError> {
        let seals = chain::read_chain(&loc).await?;
        Ok(Sealer {
            head: ChainHead::after(&seals),
            sealed: sealed_state(&seals),
            manifest: Manifest::from_seals(&seals),
            loc,
            signer,
            wal_mirror: None,
            chunk_events: DEFAULT_CHUNK_EVENTS,
        })
    }

    /// What is sealed so far.
    pub fn sealed(&self) -> &Sequencer {
        &self.sealed
    }

    /// Number of seals in the chain.
    pub fn seal_count(&self) -> u64 {
        self.head.next
    }

    /// The live files, as of the last seal.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The store this sealer appends to.
    pub fn location(&self) -> &StoreLocation {
        &self.loc
    }

    /// Numbers, links, signs and appends a seal, then records it. Returns it as written.
    pub(crate) async fn append(&mut self, mut seal: Seal) -> Result<Seal, StoreError> {
        seal.n = self.head.next;
        seal.prev = self.head.prev.clone();
        seal.sealed_at = chrono::Utc::now().timestamp_micros();
        seal.sign(&self.signer);
        chain::append(&self.loc, &seal).await?;
        self.head = ChainHead {
            next: seal.n + 1,
            prev: seal.digest(),
        };
        apply_to_state(&mut self.sealed, &seal);
        self.manifest.apply(&seal);
        Ok(seal)
    }

    /// Seals events and rejections; events a seal already covers are dropped.
    pub async fn seal(
        &mut self,
        events: Vec<Event>,
        rejections: Vec<Rejection>,
    ) -> Result<SealSummary, StoreError> {
        let mut summary = SealSummary::default();
        let mut groups: BTreeMap<(String, String), Vec<Event>> = BTreeMap::new();
        let mut seen: HashSet<(String, u64)> = HashSet::new();
        for e in events {
            if self.sealed.is_accepted(&e.source, e.source_seq)
                || !seen.insert((e.source.clone(), e.source_seq))
            {
                summary.duplicates += 1;
                continue;
            }
            groups
                .entry((e.day(), e.source.clone()))
                .or_default()
                .push(e);
        }
        let mut rejected: BTreeMap<(String, String), Vec<Rejection>> = BTreeMap::new();
        for r in rejections {
            // The source names a directory: anything but a plain code goes to `unattributed`.
            let source = r
                .source
                .clone()
                .filter(|s| iris_ingest::validate::is_token(s))
                .unwrap_or_else(|| UNATTRIBUTED.to_owned());
            rejected
                .entry((day_of_micros(r.received_at), source))
                .or_default()
                .push(r);
        }
        let jobs: Vec<Job> = groups
            .into_iter()
            .map(|((day, source), rows)| Job::Events(day, source, rows))
            .chain(
                rejected
                    .into_iter()
                    .map(|((day, source), rows)| Job::Rejections(day, source, rows)),
            )
            .collect();
        let encoded: Vec<Encoded> = map_bounded(jobs, cores(), |job| async move {
            tokio::task::spawn_blocking(move || job.encode())
                .await
                .map_err(|e| StoreError::Other(format!("encoding task failed: {e}")))?
        })
        .await?
        .into_iter()
        .collect::<Result<_, _>>()?;
        // Write every partition first, then the seals in order: a crash in between leaves unsealed
        // files (quarantined at the next start, the WAL still holds their events), never a seal
        // without its partition.
        // Index blobs go with their partitions; an index left by a crash is removed with them.
        let writes: Vec<_> = encoded
            .iter()
            .flat_map(|p| {
                let part = (
                    self.loc.store.clone(),
                    self.loc.path(&p.path),
                    PutPayload::from(p.bytes.clone()),
                );
                let index = p.index.as_ref().map(|blob| {
                    (
                        self.loc.store.clone(),
                        self.loc.path(&index_path(&p.path)),
                        PutPayload::from(blob.clone()),
                    )
                });
                std::iter::once(part).chain(index)
            })
            .collect();
        map_bounded(writes, 8, |(store, path, payload)| async move {
            store.put(&path, payload).await.map(|_| ())
        })
        .await?
        .into_iter()
        .collect::<Result<Vec<()>, _>>()?;
        for p in encoded {
            let seal = self
                .append(Seal {
                    kind: p.kind,
                    path: p.path,
                    day: p.day,
                    source: p.source,
                    rows: p.rows,
                    bytes: p.bytes.len() as u64,
                    seq_ranges: p.ranges.iter().map(|(a, b)| [a, b]).collect(),
                    sha256: p.sha256,
                    index_sha256: p.index.as_deref().map(sha256_hex).unwrap_or_default(),
                    ..Seal::default()
                })
                .await?;
            summary.partitions += 1;
            summary.bytes += seal.bytes;
            match seal.kind {
                SealKind::Events => summary.events += seal.rows,
                SealKind::Rejections => summary.rejections += seal.rows,
                _ => {}
            }
        }
        Ok(summary)
    }

    /// Writes one partition of statistics table `table` (a plain code) for `quarter` and seals it into
    /// the chain. Returns the seal.
    pub async fn seal_table(
        &mut self,
        table: &str,
        quarter: &str,
        batch: &RecordBatch,
    ) -> Result<Seal, StoreError> {
        if !iris_ingest::validate::is_token(table) || !iris_ingest::validate::is_quarter(quarter) {
            return Err(StoreError::Other(format!(
                "table `{table}` must be a plain code and quarter `{quarter}` of the form 2025-Q1"
            )));
        }
        let rows = batch.num_rows() as u64;
        let batch = batch.clone();
        let bytes = tokio::task::spawn_blocking(move || to_parquet(&batch))
            .await
            .map_err(|e| StoreError::Other(format!("encoding task failed: {e}")))??;
        let path = table_path(table, quarter, &nonce());
        let sha256 = sha256_hex(&bytes);
        let size = bytes.len() as u64;
        self.loc
            .store
            .put(&self.loc.path(&path), PutPayload::from(bytes))
            .await?;
        self.append(Seal {
            kind: SealKind::Table,
            path,
            day: quarter.to_owned(),
            source: table.to_owned(),
            rows,
            bytes: size,
            sha256,
            ..Seal::default()
        })
        .await
    }

    /// Seals the contents of closed WAL segments, then deletes them. Refuses, sealing nothing, when a
    /// segment is damaged before its acknowledged end ([`StoreError::WalCorrupt`]; `iris recover`).
    ///
    /// One segment after the other, in bounded memory (read a frame at a time, sealed every
    /// [`Sealer::set_chunk_events`] records), each deleted with its mirror copy once sealed: the
    /// backlog (what the committer measures on disk) shrinks as sealing goes.
    pub async fn seal_wal(&mut self, segments: &[PathBuf]) -> Result<SealSummary, StoreError> {
        if segments.is_empty() {
            return Ok(SealSummary::default());
        }
        let (chosen, copies) = self.choose_copies(segments)?;
        let damage = wal_replay::check_segments(&chosen, &self.sealed)?;
        if !damage.is_empty() {
            return Err(WalCorrupt { damage }.into());
        }
        let mut total = SealSummary::default();
        for segment in &chosen {
            let (summary, _) = self.seal_segments(std::slice::from_ref(segment)).await?;
            total.add(&summary);
            let name = segment.file_name();
            let its: Vec<PathBuf> = copies
                .iter()
                .filter(|c| c.file_name() == name)
                .cloned()
                .collect();
            iris_ingest::wal::remove_segments(&its)?;
        }
        // Copies with no readable counterpart chosen (none in practice): removed with the rest.
        let left: Vec<PathBuf> = copies
            .iter()
            .filter(|c| !chosen.iter().any(|s| s.file_name() == c.file_name()))
            .cloned()
            .collect();
        iris_ingest::wal::remove_segments(&left)?;
        Ok(total)
    }

    /// Seals a write-ahead log's records every `events` events (and rejections) at most: the memory of
    /// sealing is bounded by it, whatever the backlog (default [`DEFAULT_CHUNK_EVENTS`]).
    pub fn set_chunk_events(&mut self, events: usize) {
        self.chunk_events = events.max(1);
    }

    /// Keeps a second copy of the write-ahead log in `mirror`: a segment damaged in one copy is read
    /// from the other.
    pub fn set_wal_mirror(&mut self, mirror: Option<PathBuf>) {
        self.wal_mirror = mirror;
    }

    /// For each segment, the copy to read (the log's own unless it is missing or damaged and the
    /// mirror's is sound), and every copy (to delete once sealed).
    fn choose_copies(
        &self,
        segments: &[PathBuf],
    ) -> Result<(Vec<PathBuf>, Vec<PathBuf>), StoreError> {
        let Some(mirror_dir) = &self.wal_mirror else {
            return Ok((segments.to_vec(), segments.to_vec()));
        };
        let sound = |p: &PathBuf| -> Result<bool, StoreError> {
            Ok(iris_ingest::wal::scan_layout(p)?.corruption().is_empty())
        };
        let (mut chosen, mut copies) = (Vec::new(), Vec::new());
        for p in segments {
            let Some(name) = p.file_name() else { continue };
            let m = mirror_dir.join(name);
            let (has_p, has_m) = (p.exists(), m.exists());
            let pick = if has_p && sound(p)? {
                Some(p.clone())
            } else if has_m && sound(&m)? {
                tracing::warn!(
                    "{}: {}; reading its mirror copy {}",
                    p.display(),
                    if has_p { "damaged" } else { "missing" },
                    m.display()
                );
                Some(m.clone())
            } else if has_p {
                Some(p.clone())
            } else if has_m {
                Some(m.clone())
            } else {
                None
            };
            chosen.extend(pick);
            copies.push(p.clone());
            copies.push(m);
        }
        Ok((chosen, copies))
    }

    /// Seals every intact frame of the segments (torn tails dropped); returns the summary and frames read.
    async fn seal_segments(
        &mut self,
        segments: &[PathBuf],
    ) -> Result<(SealSummary, u64), StoreError> {
        let mut total = SealSummary::default();
        let mut frames = 0u64;
        let mut events = Vec::new();
        let mut rejections = Vec::new();
        for path in segments {
            let mut records = wal_replay::Records::open(path)?;
            while let Some(r) = records.next_record()? {
                events.extend(r.events);
                rejections.extend(r.rejections);
                // Bound memory whatever the backlog: seal every chunk (a crash between chunks is
                // safe: the segment stays until all of it is sealed, and what a seal covers is
                // dropped when it is read again).
                if events.len() + rejections.len() >= self.chunk_events {
                    total.add(
                        &self
                            .seal(std::mem::take(&mut events), std::mem::take(&mut rejections))
                            .await?,
                    );
                }
            }
            frames += records.frames();
            records.finish()?;
        }
        total.add(&self.seal(events, rejections).await?);
        Ok((total, frames))
    }

    /// `iris recover`: seals every intact frame of the segments, even after damage before their
    /// acknowledged end, records what was lost for good in one loss seal per source (and `missing`
    /// segments, see [`wal_replay::missing_damage`], as lost by name), and moves the segments into
    /// `keep` (not deleted: they are evidence).
    ///
    /// A loss that cannot be named ([`WalDamage::unidentified`]) refuses, sealing nothing
    /// ([`StoreError::UnidentifiedLoss`]), unless `accept_unidentified`: then it is sealed as a loss
    /// record naming the segment, offset and bytes (source `unattributed` when no source is known).
    pub async fn recover_wal(
        &mut self,
        segments: &[PathBuf],
        keep: &std::path::Path,
        accept_unidentified: bool,
        missing: Vec<WalDamage>,
    ) -> Result<RecoverySummary, StoreError> {
        let (segments, copies) = self.choose_copies(segments)?;
        let segments = segments.as_slice();
        let mut damage = missing;
        damage.extend(wal_replay::check_segments(segments, &self.sealed)?);
        let mut summary = RecoverySummary {
            damage,
            ..RecoverySummary::default()
        };
        let unidentified: Vec<String> = summary
            .damage
            .iter()
            .filter(|d| d.unidentified)
            .map(|d| format!("  {d}"))
            .collect();
        if !unidentified.is_empty() && !accept_unidentified {
            return Err(StoreError::UnidentifiedLoss(unidentified.join("\n")));
        }
        let (sealed, frames) = self.seal_segments(segments).await?;
        summary.sealed = sealed;
        summary.frames = frames;
        // What was at risk and is not sealed now is lost: one loss seal per damaged place and source.
        let mut recorded: BTreeMap<String, IntervalSet> = BTreeMap::new();
        for d in &summary.damage {
            let segment = d
                .segment
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if d.unidentified {
                // Named by place, since not (fully) by number: `verify` reports it as LOST for ever.
                self.append(Seal {
                    kind: SealKind::Loss,
                    path: format!("wal/{segment}@{}", d.offset),
                    day: chrono::Utc::now().format("%Y-%m-%d").to_string(),
                    source: UNATTRIBUTED.to_owned(),
                    note: format!(
                        "UNIDENTIFIED loss to write-ahead log damage (accepted by the operator): {} bytes at offset {} of {segment} ({}); acknowledged events in them could not be named",
                        d.len, d.offset, d.why
                    ),
                    ..Seal::default()
                })
                .await?;
            }
            for risk in &d.at_risk {
                // Numbers at risk were found neither intact nor sealed before: after sealing every
                // intact frame they are lost for good (each recorded once).
                let done = recorded.entry(risk.source.clone()).or_default();
                let mut ranges = Vec::new();
                for [a, b] in &risk.ranges {
                    for (x, y) in IntervalSet::from_ranges_outside(*a, *b, done) {
                        ranges.push([x, y]);
                    }
                }
                for [a, b] in &ranges {
                    done.insert_range(*a, *b);
                }
                if ranges.is_empty() {
                    continue;
                }
                let lost = SeqRisk {
                    source: risk.source.clone(),
                    ranges,
                };
                self.append(Seal {
                    kind: SealKind::Loss,
                    path: format!("wal/{segment}@{}", d.offset),
                    day: chrono::Utc::now().format("%Y-%m-%d").to_string(),
                    source: lost.source.clone(),
                    rows: lost.count(),
                    seq_ranges: lost.ranges.clone(),
                    note: format!(
                        "lost to write-ahead log damage: {} bytes at offset {} of {segment} ({})",
                        d.len, d.offset, d.why
                    ),
                    ..Seal::default()
                })
                .await?;
                summary.lost.push(lost);
            }
        }
        let damaged: Vec<PathBuf> = summary
            .damage
            .iter()
            .map(|d| d.segment.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let names: std::collections::BTreeSet<_> =
            damaged.iter().filter_map(|p| p.file_name()).collect();
        let (other_copies, clean): (Vec<PathBuf>, Vec<PathBuf>) = copies
            .iter()
            .filter(|p| !damaged.contains(p))
            .cloned()
            .partition(|p| p.file_name().is_some_and(|n| names.contains(n)));
        iris_ingest::wal::move_segments(&damaged, keep)?;
        iris_ingest::wal::move_segments(&other_copies, &keep.join("other-copy"))?;
        iris_ingest::wal::remove_segments(&clean)?;
        summary.kept = damaged;
        Ok(summary)
    }

    /// Sets the largest step a source's number may take (see [`Sequencer::max_jump`]).
    pub fn set_max_seq_jump(&mut self, max_jump: u64) {
        self.sealed.max_jump = max_jump;
    }

    /// `iris source reset`: seals that `source` now expects `next`. Numbers between its high-water mark
    /// and `next` are declared skipped (accounted for, so `verify` calls them no gap). Returns the seal.
    ///
    /// A reset only moves a source forward, to skip numbers that will never come: refused
    /// ([`StoreError::ResetRefused`]) when `next` is at or below the high-water mark — unless every
    /// number stored at or above `next` is a wild one (more than the `max_jump` bound above the numbers
    /// below it), which the reset then undoes — when `next` is more than `max_jump` past the high-water
    /// mark (that would jam the source itself), and for a source Iris has never seen unless `new`.
    pub async fn reset_source(
        &mut self,
        source: &str,
        next: u64,
        note: &str,
        new: bool,
    ) -> Result<Seal, StoreError> {
        if !iris_ingest::validate::is_token(source) || next == 0 {
            return Err(StoreError::ResetRefused(format!(
                "source `{source}` must be a plain code and --next at least 1"
            )));
        }
        let max_jump = self.sealed.max_jump;
        let state = self.sealed.source(source);
        if state.is_none() && !new {
            return Err(StoreError::ResetRefused(format!(
                "Iris has never seen source `{source}` (a typo?); pass --new to reset a source that has sent nothing yet"
            )));
        }
        let highest = state.and_then(|s| s.highest());
        // The high-water mark once wild numbers at or above `next` are set aside.
        let (below, above) = state.map(|s| s.accepted.split_at(next)).unwrap_or_default();
        let floor = state.and_then(|s| s.floor);
        let base = below.max().max(floor.filter(|f| *f < next)).unwrap_or(0);
        if let Some(first_above) = above.iter().next().map(|(a, _)| a)
            && first_above - base <= max_jump
        {
            return Err(StoreError::ResetRefused(format!(
                "--next {next} is at or below source `{source}`'s high-water mark {}: numbers {first_above}–{} are stored and within {max_jump} of the ones before them (not wild), and resetting below them would hide them and any gap before them. A reset only moves a source forward",
                highest.unwrap_or(0),
                above.max().unwrap_or(first_above)
            )));
        }
        if above.is_empty()
            && let Some(h) = highest
            && next <= h
        {
            return Err(StoreError::ResetRefused(format!(
                "--next {next} is at or below source `{source}`'s high-water mark {h} (set by an earlier reset); a reset only moves a source forward"
            )));
        }
        if next - 1 - base > max_jump {
            return Err(StoreError::ResetRefused(format!(
                "--next {next} is more than {max_jump} (the --max-seq-jump bound) past source `{source}`'s high-water mark {base}: it would jam the source"
            )));
        }
        let skipped = if next > base + 1 {
            vec![[base + 1, next - 1]]
        } else {
            Vec::new()
        };
        let by = note
            .strip_prefix("by ")
            .and_then(|r| r.split(':').next())
            .filter(|b| !b.is_empty())
            .unwrap_or("operator")
            .to_owned();
        let seal = self
            .append(Seal {
                kind: SealKind::Reset,
                path: format!("sources/{source}"),
                day: chrono::Utc::now().format("%Y-%m-%d").to_string(),
                source: source.to_owned(),
                seq_ranges: skipped,
                next_seq: Some(next),
                note: format!(
                    "next source_seq set to {next} (high-water mark was {}){}{}",
                    highest.map_or("none".to_owned(), |h| h.to_string()),
                    if note.is_empty() { "" } else { ": " },
                    note
                ),
                ..Seal::default()
            })
            .await?;
        // The decision is also an audit event of Iris's own source, as every HTTP request is: the
        // auditor finds it with SQL (`message_type = 'iris.source-reset'`) beside the seal.
        self.audit_action(
            &seal,
            &by,
            "iris.source-reset",
            "iris source reset",
            format!("source {source} next {next}"),
            iris_ingest::Operation::Modify,
        )
        .await?;
        Ok(seal)
    }

    /// Records an operator's action that `seal` holds (a reset, a rotation, a retention run) also as
    /// an audit event of Iris's own source `iris`, as every HTTP request is: the auditor finds it with
    /// SQL (`message_type = …`, ticket `iris-<what>-<seal number>`) beside the seal.
    pub(crate) async fn audit_action(
        &mut self,
        seal: &Seal,
        by: &str,
        message_type: &str,
        application: &str,
        subject: String,
        operation: iris_ingest::Operation,
    ) -> Result<(), StoreError> {
        let now = chrono::Utc::now().timestamp_micros();
        let what = message_type.rsplit(['.', '-']).next().unwrap_or("action");
        let event = Event {
            ts: now,
            actor_id: if by.is_empty() { "operator" } else { by }.to_owned(),
            actor_kind: iris_ingest::ActorKind::Person,
            actor_org: "iris".into(),
            actor_role: Some("admin".into()),
            subject_id: subject,
            subject_kind: iris_ingest::SubjectKind::Query,
            ticket: format!("iris-{what}-{}", seal.n),
            message_type: message_type.into(),
            application: application.into(),
            operation,
            result: iris_ingest::Outcome::Ok,
            error_code: Some(format!("seal={}", seal.n)),
            channel: "cli".into(),
            purpose: Some(seal.note.chars().take(500).collect()),
            source: "iris".into(),
            source_seq: self.sealed.next("iris"),
        };
        self.seal(vec![event], Vec::new()).await?;
        Ok(())
    }

    /// Key rotation (issue 16): appends a rotation seal naming `next`'s public key (valid from now),
    /// signed by the OUTGOING key, then signs every later seal with `next`. Returns the seal; its
    /// `key` is what the keyring must record ([`crate::keys::KeyDir::record_rotation`]).
    pub async fn rotate(&mut self, next: Signer, by: &str) -> Result<Seal, StoreError> {
        let info = next.info(chrono::Utc::now().timestamp_micros());
        let seal = self
            .append(Seal {
                kind: SealKind::Rotation,
                path: format!("keys/{}", next.id),
                day: chrono::Utc::now().format("%Y-%m-%d").to_string(),
                key: Some(info),
                note: format!(
                    "by {by}: signing key `{}` retired, `{}` signs from here on",
                    self.signer.id, next.id
                ),
                ..Seal::default()
            })
            .await?;
        self.signer = next;
        self.audit_action(
            &seal,
            by,
            "iris.key-rotation",
            "iris keygen",
            format!("signing key {}", self.signer.id),
            iris_ingest::Operation::Create,
        )
        .await?;
        Ok(seal)
    }

    /// Seals the digest of a rebuilt lookup index of live file `path` (`iris reindex`).
    pub async fn seal_index(
        &mut self,
        path: &str,
        index_sha256: &str,
        bytes: u64,
    ) -> Result<Seal, StoreError> {
        if !self.manifest.files.contains_key(path) {
            return Err(StoreError::Other(format!("{path} is not a live file")));
        }
        self.append(Seal {
            kind: SealKind::Index,
            path: path.to_owned(),
            day: chrono::Utc::now().format("%Y-%m-%d").to_string(),
            sha256: index_sha256.to_owned(),
            bytes,
            ..Seal::default()
        })
        .await
    }

    /// Moves partition files that no seal names (left by a crash between writing and sealing) to
    /// `quarantine/`. Only safe while the WAL still holds their events, i.e. at startup before sealing.
    pub async fn quarantine_unsealed(&self) -> Result<Vec<String>, StoreError> {
        let mut moved = Vec::new();
        for dir in [EVENTS, REJECTIONS, COMPACTED, TABLES] {
            let prefix = self.loc.path(dir);
            let metas: Vec<_> = self.loc.store.list(Some(&prefix)).try_collect().await?;
            for m in metas {
                let rel = self.loc.relative(&m.location);
                if !self.manifest.is_named(&rel) {
                    let to = self.loc.path(&format!("quarantine/{rel}"));
                    self.loc.store.copy(&m.location, &to).await?;
                    self.loc.store.delete(&m.location).await?;
                    moved.push(rel);
                }
            }
        }
        // Indexes of files that are not live are derived data of nothing: drop them.
        let sealed_indexes: HashSet<String> =
            self.manifest.files.keys().map(|p| index_path(p)).collect();
        let metas: Vec<_> = self
            .loc
            .store
            .list(Some(&self.loc.path(INDEX)))
            .try_collect()
            .await?;
        for m in metas {
            if !sealed_indexes.contains(&self.loc.relative(&m.location)) {
                self.loc.store.delete(&m.location).await?;
            }
        }
        Ok(moved)
    }
}

enum Job {
    Events(String, String, Vec<Event>),
    Rejections(String, String, Vec<Rejection>),
}

/// First and last sequence number of a partition, for its file name (0 when it has none).
fn seq_bounds(ranges: &IntervalSet) -> (u64, u64) {
    (
        ranges.iter().next().map(|r| r.0).unwrap_or(0),
        ranges.max().unwrap_or(0),
    )
}

impl Job {
    fn encode(self) -> Result<Encoded, StoreError> {
        match self {
            Job::Events(day, source, mut rows) => {
                rows.sort_by_key(|e| (e.ts, e.source_seq));
                let ranges = IntervalSet::from_values(rows.iter().map(|e| e.source_seq));
                let (first, last) = seq_bounds(&ranges);
                let batch = events_batch(&rows)?;
                let (bytes, row_groups) = to_parquet_with_row_groups(&batch)?;
                let sha256 = sha256_hex(&bytes);
                let index = iris_index::build_index(&[batch], &sha256, row_groups)?;
                let path = partition_path(EVENTS, &day, &source, first, last, &nonce());
                Ok(Encoded {
                    kind: SealKind::Events,
                    day,
                    source,
                    rows: rows.len() as u64,
                    ranges,
                    path,
                    sha256,
                    bytes,
                    index: Some(index),
                })
            }
            Job::Rejections(day, source, mut rows) => {
                rows.sort_by_key(|r| (r.received_at, r.line));
                let ranges = IntervalSet::from_values(rows.iter().filter_map(|r| r.source_seq));
                let (first, last) = seq_bounds(&ranges);
                let bytes = to_parquet(&rejections_batch(&rows)?)?;
                let path = partition_path(REJECTIONS, &day, &source, first, last, &nonce());
                Ok(Encoded {
                    kind: SealKind::Rejections,
                    day,
                    source,
                    rows: rows.len() as u64,
                    ranges,
                    path,
                    sha256: sha256_hex(&bytes),
                    bytes,
                    index: None,
                })
            }
        }
    }
}
