//! Replaying the write-ahead log: the one place that decides what its bytes mean.
//!
//! Every segment is scanned before anything is sealed ([`check_segments`]). A torn tail — bytes after a
//! segment's acknowledged end that do not form intact frames — was never acknowledged and is dropped with
//! a warning. Damage before the acknowledged end is corruption: sealing stops with a [`WalDamage`] naming
//! the segment, the offset and the `source`/`source_seq` ranges at risk, and only `iris recover`
//! ([`crate::sealer::Sealer::recover_wal`]) goes on, sealing every intact frame and recording what was lost.

use crate::error::StoreError;
use iris_ingest::commit::WalRecord;
use iris_ingest::wal::{self, Corruption};
use iris_ingest::{IntervalSet, Sequencer};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Sequence numbers of one source that may have been in damaged bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeqRisk {
    /// The source.
    pub source: String,
    /// The numbers, as inclusive ranges: between the last intact number before the damage and the first
    /// after it, minus those found intact or already sealed.
    pub ranges: Vec<[u64; 2]>,
}

impl SeqRisk {
    /// How many numbers.
    pub fn count(&self) -> u64 {
        self.ranges.iter().map(|[a, b]| b - a + 1).sum()
    }

    /// `source hub source_seq 4001–5000 (1000 numbers)`.
    pub fn describe(&self) -> String {
        let ranges: Vec<String> = self
            .ranges
            .iter()
            .map(|[a, b]| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}–{b}")
                }
            })
            .collect();
        format!(
            "source `{}` source_seq {} ({} numbers)",
            self.source,
            ranges.join(", "),
            self.count()
        )
    }
}

/// One damaged place in the write-ahead log that may have cost acknowledged events.
#[derive(Clone, Debug)]
pub struct WalDamage {
    /// The segment file.
    pub segment: PathBuf,
    /// First damaged byte.
    pub offset: u64,
    /// Damaged (or missing) bytes.
    pub len: u64,
    /// What is wrong.
    pub why: String,
    /// What may have been in it.
    pub at_risk: Vec<SeqRisk>,
    /// The loss cannot be named in full: the segment's acknowledgement record does not say what each
    /// source acknowledged in it (missing, damaged or of the first format), or nothing at risk could be
    /// identified. `iris recover` seals such a loss by segment and offset and needs
    /// `--accept-unidentified-loss` to go on.
    pub unidentified: bool,
}

impl fmt::Display for WalDamage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "segment {} at offset {} ({} bytes): {}; ",
            self.segment.display(),
            self.offset,
            self.len,
            self.why
        )?;
        if self.at_risk.is_empty() {
            write!(
                f,
                "UNIDENTIFIED LOSS: neither the acknowledgement record nor an intact frame tells which events it held"
            )
        } else {
            let risks: Vec<String> = self.at_risk.iter().map(SeqRisk::describe).collect();
            write!(f, "at risk: {}", risks.join("; "))?;
            if self.unidentified {
                write!(
                    f,
                    "; more may be lost (UNIDENTIFIED: the acknowledgement record does not say what the segment's end held)"
                )?;
            }
            Ok(())
        }
    }
}

/// The error when the log is corrupt: every damaged place.
#[derive(Clone, Debug)]
pub struct WalCorrupt {
    /// The damaged places, in log order.
    pub damage: Vec<WalDamage>,
}

impl fmt::Display for WalCorrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the write-ahead log is damaged where acknowledged events were written; nothing was sealed from it and Iris will not start until it is recovered:"
        )?;
        for d in &self.damage {
            write!(f, "\n  {d}")?;
        }
        write!(
            f,
            "\nRun `iris recover` to seal every intact frame and record exactly what was lost (the damaged segments are kept in wal-damaged/)."
        )
    }
}

impl std::error::Error for WalCorrupt {}

/// A `(source, source_seq)` pair.
type Pair = (String, u64);

/// Scans every segment; returns the damage that may have cost acknowledged events (empty when the log
/// is sound, torn tails aside).
pub fn check_segments(
    segments: &[PathBuf],
    sealed: &Sequencer,
) -> Result<Vec<WalDamage>, StoreError> {
    // (segment, corruption, pairs readable in the damaged bytes)
    let mut found: Vec<(usize, Corruption, Vec<Pair>)> = Vec::new();
    // Per damaged segment, what its acknowledgement record says each source acknowledged in it.
    let mut acked: BTreeMap<usize, Option<Vec<wal::AckedSource>>> = BTreeMap::new();
    for (i, path) in segments.iter().enumerate() {
        // Where the frames and the damage lie, read in bounded memory.
        let layout = wal::scan_layout(path)?;
        let bad = layout.corruption();
        if bad.is_empty() {
            continue;
        }
        acked.insert(
            i,
            match &layout.acked {
                wal::Acked::Known { sources, .. } => sources.clone(),
                _ => None,
            },
        );
        for c in bad {
            let pairs =
                readable_pairs(&read_range(path, c.offset, c.offset.saturating_add(c.len))?);
            found.push((i, c, pairs));
        }
    }
    if found.is_empty() {
        return Ok(Vec::new());
    }
    // Only now read every record (one frame at a time), to say what the damage may have held.
    let mut positions: Vec<((usize, u64), Vec<Pair>)> = Vec::new();
    for (i, path) in segments.iter().enumerate() {
        let mut reader = wal::SegmentReader::open(path)?;
        while let Some((span, payload)) = reader.next_frame()? {
            let rec = decode_record(path, span.offset, payload)?;
            positions.push(((i, span.offset), numbers(&rec)));
        }
    }
    let mut present: BTreeMap<String, IntervalSet> = BTreeMap::new();
    for (_, nums) in &positions {
        for (s, n) in nums {
            present.entry(s.clone()).or_default().insert(*n);
        }
    }
    // The last damaged place of each segment carries the loss at the segment's end: per source, the
    // numbers above the highest intact one up to the acknowledged high-water mark.
    let last_of: BTreeMap<usize, u64> = found.iter().map(|(i, c, _)| (*i, c.offset)).collect();
    Ok(found
        .into_iter()
        .map(|(i, c, pairs)| {
            let at = (i, c.offset);
            let ack_sources = acked.get(&i).cloned().flatten();
            let mut tail: Vec<(String, u64, u64)> = Vec::new();
            if last_of.get(&i) == Some(&c.offset) {
                for a in ack_sources.iter().flatten() {
                    let intact_high = positions
                        .iter()
                        .filter(|((seg, _), _)| *seg <= i)
                        .flat_map(|(_, nums)| nums)
                        .filter(|(s, _)| *s == a.source)
                        .map(|(_, n)| *n)
                        .max()
                        .or_else(|| sealed.source(&a.source).and_then(|s| s.highest()))
                        .unwrap_or(0);
                    if a.highest > intact_high {
                        tail.push((a.source.clone(), intact_high + 1, a.highest));
                    }
                }
            }
            let mut before: BTreeMap<&str, u64> = BTreeMap::new();
            let mut after: BTreeMap<&str, u64> = BTreeMap::new();
            for (pos, nums) in &positions {
                let side = if *pos < at { &mut before } else { &mut after };
                for (s, n) in nums {
                    let e = side.entry(s.as_str()).or_insert(*n);
                    *e = if *pos < at {
                        (*e).max(*n)
                    } else {
                        (*e).min(*n)
                    };
                }
            }
            // What the damaged bytes still show, then the holes between the intact frames around them.
            let mut risky: BTreeMap<String, IntervalSet> = BTreeMap::new();
            for (source, n) in &pairs {
                risky.entry(source.clone()).or_default().insert(*n);
            }
            for (source, a, b) in &tail {
                risky
                    .entry(source.clone())
                    .or_default()
                    .insert_range(*a, *b);
            }
            for (source, first_after) in &after {
                let last_before = before
                    .get(source)
                    .copied()
                    .or_else(|| sealed.source(source).and_then(|s| s.highest()))
                    .unwrap_or(0);
                if *first_after <= last_before.saturating_add(1) {
                    continue;
                }
                let mut covered = present.get(*source).cloned().unwrap_or_default();
                if let Some(st) = sealed.source(source) {
                    covered.extend(&st.accepted);
                    covered.extend(&st.stale);
                }
                for [a, b] in complement_within(last_before + 1, first_after - 1, &covered) {
                    risky
                        .entry((*source).to_owned())
                        .or_default()
                        .insert_range(a, b);
                }
            }
            let mut at_risk = Vec::new();
            for (source, set) in risky {
                let mut covered = present.get(&source).cloned().unwrap_or_default();
                if let Some(st) = sealed.source(&source) {
                    covered.extend(&st.accepted);
                    covered.extend(&st.stale);
                }
                let ranges: Vec<[u64; 2]> = set
                    .iter()
                    .flat_map(|(a, b)| complement_within(a, b, &covered))
                    .collect();
                if !ranges.is_empty() {
                    at_risk.push(SeqRisk { source, ranges });
                }
            }
            WalDamage {
                segment: segments[i].clone(),
                offset: c.offset,
                len: c.len,
                why: c.why,
                unidentified: ack_sources.is_none() || at_risk.is_empty(),
                at_risk,
            }
        })
        .collect())
}

/// The `(source, source_seq)` pairs still readable in damaged bytes (`"source":"S","source_seq":N`, the
/// order events and rejections are written in): best effort, to name what a damaged frame held.
pub fn readable_pairs(bytes: &[u8]) -> Vec<(String, u64)> {
    const KEY: &[u8] = b"\"source\":\"";
    const SEQ: &[u8] = b"\",\"source_seq\":";
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(i) = find(&bytes[at..], KEY) {
        let start = at + i + KEY.len();
        at = start;
        let Some(end) = bytes[start..].iter().take(64).position(|b| *b == b'"') else {
            continue;
        };
        let source = &bytes[start..start + end];
        let rest = &bytes[start + end..];
        if !rest.starts_with(SEQ) {
            continue;
        }
        let digits: Vec<u8> = rest[SEQ.len()..]
            .iter()
            .take(20)
            .take_while(|b| b.is_ascii_digit())
            .copied()
            .collect();
        let (Ok(source), Some(n)) = (
            std::str::from_utf8(source),
            std::str::from_utf8(&digits)
                .ok()
                .and_then(|d| d.parse().ok()),
        ) else {
            continue;
        };
        if iris_ingest::validate::is_token(source) {
            out.push((source.to_owned(), n));
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The ranges of `a..=b` outside `covered`.
fn complement_within(a: u64, b: u64, covered: &IntervalSet) -> Vec<[u64; 2]> {
    IntervalSet::from_ranges_outside(a, b, covered)
        .into_iter()
        .map(|(x, y)| [x, y])
        .collect()
}

/// The `(source, source_seq)` pairs of a record (events and numbered rejections).
fn numbers(rec: &WalRecord) -> Vec<(String, u64)> {
    rec.events
        .iter()
        .map(|e| (e.source.clone(), e.source_seq))
        .chain(
            rec.rejections
                .iter()
                .filter_map(|r| Some((r.source.clone()?, r.source_seq?))),
        )
        .collect()
}

/// Decodes one intact frame's payload.
pub fn decode_record(path: &Path, offset: u64, payload: &[u8]) -> Result<WalRecord, StoreError> {
    serde_json::from_slice(payload).map_err(StoreError::json(format!(
        "{} frame at offset {offset}",
        path.display()
    )))
}

/// The bytes `[from, to)` of a file (clipped to its end): a damaged range, to name what it held.
fn read_range(path: &Path, from: u64, to: u64) -> Result<Vec<u8>, StoreError> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path).map_err(StoreError::io(path))?;
    let len = file.metadata().map_err(StoreError::io(path))?.len();
    let (from, to) = (from.min(len), to.min(len));
    let mut buf = vec![0u8; usize::try_from(to - from).unwrap_or(0)];
    file.read_exact_at(&mut buf, from)
        .map_err(StoreError::io(path))?;
    Ok(buf)
}

/// The acknowledged records of one segment, read one frame at a time (memory: one frame and the
/// reader's window, whatever the segment's size). Intact frames after the acknowledged end were never
/// acknowledged and are skipped; [`Records::finish`] warns about them and about a torn tail.
pub struct Records {
    path: PathBuf,
    reader: wal::SegmentReader,
    end: u64,
    unacked: u64,
    frames: u64,
}

impl Records {
    /// Opens segment `path`.
    pub fn open(path: &Path) -> Result<Records, StoreError> {
        let reader = wal::SegmentReader::open(path)?;
        Ok(Records {
            path: path.to_owned(),
            end: reader.acked().end(),
            reader,
            unacked: 0,
            frames: 0,
        })
    }

    /// The next acknowledged record, or `None` at the end of the segment.
    pub fn next_record(&mut self) -> Result<Option<WalRecord>, StoreError> {
        while let Some((span, payload)) = self.reader.next_frame()? {
            if span.end() > self.end {
                self.unacked += 1;
                continue;
            }
            self.frames += 1;
            return decode_record(&self.path, span.offset, payload).map(Some);
        }
        Ok(None)
    }

    /// Acknowledged frames read so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Reads to the end and says what was dropped (never acknowledged).
    pub fn finish(self) -> Result<(), StoreError> {
        let path = self.path;
        let unacked = self.unacked;
        let layout = self.reader.finish()?;
        let torn = layout.torn_bytes();
        if torn > 0 {
            tracing::warn!(
                "{}: dropped a torn tail of {torn} bytes after the acknowledged end (never acknowledged)",
                path.display()
            );
        }
        if unacked > 0 {
            tracing::warn!(
                "{}: dropped {unacked} intact frames after the acknowledged end (never acknowledged: their senders were refused or got no answer)",
                path.display()
            );
        }
        Ok(())
    }
}

/// Segments that must exist (numbered after the last sealed one, up to the last created) and are in
/// neither the log nor its mirror: each a loss that cannot be named (the segment is gone with its
/// acknowledgement record).
pub fn missing_damage(wal_dir: &Path, mirror: Option<&Path>) -> Result<Vec<WalDamage>, StoreError> {
    Ok(wal::missing_segments(wal_dir, mirror)?
        .into_iter()
        .map(|id| WalDamage {
            segment: wal::segment_path(wal_dir, id),
            offset: 0,
            len: 0,
            why: format!(
                "segment {id} is missing: it was created (segments.created) and never sealed (segments.sealed), so whatever was acknowledged in it is gone"
            ),
            at_risk: Vec::new(),
            unidentified: true,
        })
        .collect())
}

/// `verify`'s look at the write-ahead log of a data directory: one finding per damaged place.
pub async fn verify_wal(
    wal_dir: &Path,
    loc: &crate::StoreLocation,
) -> Result<Vec<crate::verify::Finding>, StoreError> {
    let mirror = wal_dir.parent().and_then(|root| {
        std::fs::read_to_string(root.join("wal-mirror"))
            .ok()
            .map(|s| PathBuf::from(s.trim()))
            .filter(|p| !p.as_os_str().is_empty())
    });
    let missing: Vec<crate::verify::Finding> = missing_damage(wal_dir, mirror.as_deref())?
        .into_iter()
        .map(|d| crate::verify::Finding {
            kind: crate::verify::FindingKind::WalDamaged,
            subject: d.segment.display().to_string(),
            detail: format!("{d} (`iris recover --accept-unidentified-loss` records the loss)"),
        })
        .collect();
    if wal::segments(wal_dir)?.is_empty() {
        return Ok(missing);
    }
    let sealed = crate::sealer::sealed_state(&crate::chain::read_chain(loc).await?);
    // A running server may seal and delete a segment while it is read: list again then.
    let mut tries = 0;
    let damage = loop {
        let segments: Vec<PathBuf> = wal::segments(wal_dir)?
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        match check_segments(&segments, &sealed) {
            Err(StoreError::Wal(wal::WalError::Io { source, .. }))
                if source.kind() == std::io::ErrorKind::NotFound && tries < 3 =>
            {
                tries += 1;
            }
            other => break other?,
        }
    };
    Ok(missing
        .into_iter()
        .chain(damage.into_iter().map(|d| crate::verify::Finding {
            kind: crate::verify::FindingKind::WalDamaged,
            subject: d.segment.display().to_string(),
            detail: format!("{d} (`iris recover` salvages the rest)"),
        }))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_bytes_still_name_their_numbers() {
        let text =
            br#"{"events":[{"x":1,"source":"hub","source_seq":41},{"source":"hub","source_seq":4"#;
        assert_eq!(
            readable_pairs(text),
            vec![("hub".to_owned(), 41), ("hub".to_owned(), 4)]
        );
        assert!(readable_pairs(br#""source":"Not A Token","source_seq":5"#).is_empty());
        assert!(readable_pairs(b"").is_empty());
    }

    #[test]
    fn what_is_at_risk_is_what_no_intact_frame_or_seal_holds() {
        let covered = IntervalSet::from_values([3, 4, 8]);
        assert_eq!(
            complement_within(1, 10, &covered),
            vec![[1, 2], [5, 7], [9, 10]]
        );
        assert_eq!(complement_within(3, 4, &covered), Vec::<[u64; 2]>::new());
        let top = IntervalSet::from_values([u64::MAX]);
        assert_eq!(
            complement_within(u64::MAX - 1, u64::MAX, &top),
            vec![[u64::MAX - 1, u64::MAX - 1]]
        );
        let risk = SeqRisk {
            source: "c".into(),
            ranges: vec![[4001, 4500], [7, 7]],
        };
        assert_eq!(risk.count(), 501);
        assert_eq!(
            risk.describe(),
            "source `c` source_seq 4001–4500, 7 (501 numbers)"
        );
    }
}
