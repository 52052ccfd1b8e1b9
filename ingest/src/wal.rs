//! Write-ahead log: acknowledged events survive `kill -9`, and damage is told apart from a torn tail.
//!
//! Segments `wal-NNNNNNNNNN.log` hold frames `[magic "IWF1"][len u32 LE][crc32 u32 LE][payload]`, the CRC
//! covering the length and the payload. The magic lets a scan find the next intact frame after damage
//! (resynchronisation): one bad frame never hides the frames after it.
//!
//! Beside each segment, `wal-NNNNNNNNNN.ack` records how far the segment is acknowledged:
//! `[magic "IWA2"][acked bytes u64][acked frames u64][sources u16]` then per source
//! `[name length u8][name][highest acknowledged source_seq u64][acknowledged numbers u64]` and
//! `[crc32 u32]` (little-endian), rewritten and synced after every sync of the segment and before any
//! acknowledgement is sent. The per-source high-water marks let recovery name exactly what a cut-off
//! end of a segment held (no intact frame after the damage is needed). Records of the first format
//! (`IWA1`, 24 bytes, no sources) are still read. On recovery:
//! - bytes after the acknowledged end that do not form intact frames are a *torn tail* (never
//!   acknowledged) and may be dropped;
//! - a damaged frame before the acknowledged end, a segment shorter than it, or damage in a segment whose
//!   acknowledgement record is missing or unreadable is *corruption*: acknowledged events may be lost, and
//!   the caller must refuse to go on silently (see [`SegmentScan::corruption`]).
//!
//! Segments written by earlier versions (no magic, no acknowledgement record) are still read, with the
//! old rule (everything after the first bad record is a torn tail).

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

mod reader;
use reader::Source as _;
pub use reader::{FrameSpan, WINDOW};

/// Errors of the write-ahead log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// Reading or writing a segment failed.
    #[error("write-ahead log {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A record larger than [`MAX_RECORD`].
    #[error("write-ahead log record of {0} bytes is too large")]
    TooLarge(usize),
    /// A segment-number marker (`segments.created` / `segments.sealed`) is damaged.
    #[error(
        "write-ahead log marker {path} is damaged ({why}): which segments must exist cannot be told"
    )]
    Marker {
        /// The marker file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Largest record accepted (a batch is bounded well below this).
pub const MAX_RECORD: usize = 1 << 30;

/// The first bytes of every frame.
pub const FRAME_MAGIC: [u8; 4] = *b"IWF1";
/// Bytes of a frame header: magic, length, CRC.
pub const FRAME_HEADER: usize = 12;
const ACK_MAGIC_V1: [u8; 4] = *b"IWA1";
const ACK_LEN_V1: usize = 24;
const ACK_MAGIC: [u8; 4] = *b"IWA2";

/// What a segment's acknowledgement record says about one source: the numbers it acknowledged in the
/// segment (events and numbered rejections).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AckedSource {
    /// The source code.
    pub source: String,
    /// Highest `source_seq` acknowledged in the segment.
    pub highest: u64,
    /// How many numbers of the source were acknowledged in the segment.
    pub count: u64,
}

/// A decoded acknowledgement record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AckRecord {
    /// Bytes acknowledged from the start of the segment.
    pub bytes: u64,
    /// Frames in those bytes.
    pub frames: u64,
    /// Per source, what was acknowledged (`None` for a record of the first format, which had none).
    pub sources: Option<Vec<AckedSource>>,
}

/// Per-source numbers appended to the current segment: `source -> (highest, count)`.
type SourceMarks = std::collections::BTreeMap<String, (u64, u64)>;

/// The log being appended to.
pub struct Wal {
    dir: PathBuf,
    id: u64,
    path: PathBuf,
    out: BufWriter<File>,
    ack_path: PathBuf,
    ack: File,
    bytes: u64,
    frames: u64,
    /// Per source, the numbers appended to this segment (recorded in its acknowledgement record).
    marks: SourceMarks,
    /// The second copy, if any.
    mirror: Option<Box<Wal>>,
    /// Tests: fail this many syncs.
    #[cfg(test)]
    pub(crate) fail_syncs: u32,
}

impl Wal {
    /// Opens the log in `dir`, starting a new segment after any existing ones (which stay for recovery).
    pub fn open(dir: &Path) -> Result<Wal, WalError> {
        Wal::open_mirrored(dir, None)
    }

    /// Opens the log in `dir`, and when `mirror` is given a second copy there (another device): every
    /// frame is written and synced to both before it is acknowledged, segment for segment with the same
    /// names, so recovery can take a segment from either copy.
    pub fn open_mirrored(dir: &Path, mirror: Option<&Path>) -> Result<Wal, WalError> {
        let next_in = |d: &Path| -> Result<u64, WalError> {
            fs::create_dir_all(d).map_err(io(d))?;
            let listed = segments(d)?.last().map(|(id, _)| id + 1).unwrap_or(1);
            // A number once used is never used again (the markers say which segments must exist).
            let created = read_marker(d, CREATED)?.unwrap_or(0);
            let sealed = read_marker(d, SEALED)?.unwrap_or(0);
            Ok(listed.max(created.max(sealed).saturating_add(1)))
        };
        let mut next = next_in(dir)?;
        if let Some(m) = mirror {
            next = next.max(next_in(m)?);
        }
        let mut wal = Wal::open_at(dir, next)?;
        if let Some(m) = mirror {
            wal.mirror = Some(Box::new(Wal::open_at(m, next)?));
        }
        Ok(wal)
    }

    fn open_at(dir: &Path, id: u64) -> Result<Wal, WalError> {
        let seg = create_segment(dir, id)?;
        Ok(Wal {
            dir: dir.to_owned(),
            id,
            path: seg.path,
            out: seg.out,
            ack_path: seg.ack_path,
            ack: seg.ack,
            bytes: 0,
            frames: 0,
            marks: SourceMarks::new(),
            mirror: None,
            #[cfg(test)]
            fail_syncs: 0,
        })
    }

    /// Appends one record (not yet durable: call [`Wal::sync`]).
    pub fn append(&mut self, payload: &[u8]) -> Result<(), WalError> {
        self.append_numbered(payload, std::iter::empty())
    }

    /// Appends one record holding the `(source, source_seq)` numbers given: once synced, the segment's
    /// acknowledgement record carries each source's highest number and count, so a lost end of the
    /// segment can be named.
    pub fn append_numbered<'a>(
        &mut self,
        payload: &[u8],
        numbers: impl Iterator<Item = (&'a str, u64)> + Clone,
    ) -> Result<(), WalError> {
        let frame = encode_frame(payload)?;
        if let Some(m) = &mut self.mirror {
            note_numbers(&mut m.marks, numbers.clone());
        }
        note_numbers(&mut self.marks, numbers);
        self.out.write_all(&frame).map_err(io(&self.path))?;
        self.bytes += frame.len() as u64;
        self.frames += 1;
        if let Some(m) = &mut self.mirror {
            m.out.write_all(&frame).map_err(io(&m.path))?;
            m.bytes += frame.len() as u64;
            m.frames += 1;
        }
        Ok(())
    }

    /// Makes everything appended so far durable, then records it as acknowledged (the acknowledgement
    /// record is synced too, and the mirror's: only then may the caller acknowledge).
    pub fn sync(&mut self) -> Result<(), WalError> {
        #[cfg(test)]
        if self.fail_syncs > 0 {
            self.fail_syncs -= 1;
            return Err(io(&self.path)(std::io::Error::other(
                "injected: no space left",
            )));
        }
        self.out.flush().map_err(io(&self.path))?;
        if let Some(m) = &mut self.mirror {
            // Start the mirror's writes before waiting on the first device.
            m.out.flush().map_err(io(&m.path))?;
        }
        self.out.get_ref().sync_data().map_err(io(&self.path))?;
        write_ack(
            &self.ack,
            &self.ack_path,
            self.bytes,
            self.frames,
            &self.marks,
        )?;
        if let Some(m) = &mut self.mirror {
            m.sync()?;
        }
        Ok(())
    }

    /// After a failed write or sync: leaves the current segment as it is (only its acknowledged frames
    /// will be sealed) and starts the next one, here and in the mirror.
    pub fn restart_segment(&mut self) -> Result<(), WalError> {
        let next = self.id + 1;
        if let Some(m) = &mut self.mirror {
            m.restart_segment()?;
        }
        let seg = create_segment(&self.dir, next)?;
        // Drop what was buffered for the failed segment without writing it.
        let old = std::mem::replace(&mut self.out, seg.out);
        let _ = old.into_parts();
        self.id = next;
        self.path = seg.path;
        self.ack_path = seg.ack_path;
        self.ack = seg.ack;
        self.bytes = 0;
        self.frames = 0;
        self.marks.clear();
        Ok(())
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes appended to the current segment.
    pub fn current_bytes(&self) -> u64 {
        self.bytes
    }

    /// Syncs, closes the current segment and starts a new one. Returns every closed segment
    /// (including ones left from before a restart), oldest first, for sealing.
    pub fn rotate(&mut self) -> Result<Vec<PathBuf>, WalError> {
        self.sync()?;
        let next = self.id + 1;
        if let Some(m) = &mut self.mirror {
            m.rotate()?;
        }
        let seg = create_segment(&self.dir, next)?;
        self.id = next;
        self.path = seg.path;
        self.out = seg.out;
        self.ack_path = seg.ack_path;
        self.ack = seg.ack;
        self.bytes = 0;
        self.frames = 0;
        self.marks.clear();
        Ok(segments(&self.dir)?
            .into_iter()
            .filter(|(id, _)| *id < next)
            .map(|(_, p)| p)
            .collect())
    }
}

/// One frame around `payload`.
pub fn encode_frame(payload: &[u8]) -> Result<Vec<u8>, WalError> {
    if payload.len() > MAX_RECORD {
        return Err(WalError::TooLarge(payload.len()));
    }
    let len = (payload.len() as u32).to_le_bytes();
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    let mut out = Vec::with_capacity(FRAME_HEADER + payload.len());
    out.extend_from_slice(&FRAME_MAGIC);
    out.extend_from_slice(&len);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

struct NewSegment {
    path: PathBuf,
    out: BufWriter<File>,
    ack_path: PathBuf,
    ack: File,
}

fn create_segment(dir: &Path, id: u64) -> Result<NewSegment, WalError> {
    let path = dir.join(format!("wal-{id:010}.log"));
    let ack_path = ack_path_of(&path);
    // The acknowledgement record exists before the segment, so a segment with frames always has one.
    let ack = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&ack_path)
        .map_err(io(&ack_path))?;
    write_ack(&ack, &ack_path, 0, 0, &SourceMarks::new())?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io(&path))?;
    // The new names must be durable too, or a crash could lose the whole segment.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    // Only then is the segment recorded as one that must exist until it is sealed.
    write_marker(dir, CREATED, id)?;
    Ok(NewSegment {
        path,
        out: BufWriter::with_capacity(1 << 20, file),
        ack_path,
        ack,
    })
}

/// The acknowledgement record beside segment `path`.
pub fn ack_path_of(path: &Path) -> PathBuf {
    path.with_extension("ack")
}

fn note_numbers<'a>(marks: &mut SourceMarks, numbers: impl Iterator<Item = (&'a str, u64)>) {
    for (source, n) in numbers {
        match marks.get_mut(source) {
            Some((high, count)) => {
                *high = (*high).max(n);
                *count += 1;
            }
            None => {
                marks.insert(source.to_owned(), (n, 1));
            }
        }
    }
}

/// Encodes an acknowledgement record (sources whose name does not fit a byte of length are left out:
/// Iris's source codes are short tokens).
pub fn encode_ack(bytes: u64, frames: u64, marks: &SourceMarks) -> Vec<u8> {
    let named: Vec<_> = marks
        .iter()
        .filter(|(s, _)| s.len() <= usize::from(u8::MAX))
        .take(usize::from(u16::MAX))
        .collect();
    let mut rec = Vec::with_capacity(26 + named.len() * 32);
    rec.extend_from_slice(&ACK_MAGIC);
    rec.extend_from_slice(&bytes.to_le_bytes());
    rec.extend_from_slice(&frames.to_le_bytes());
    rec.extend_from_slice(&(named.len() as u16).to_le_bytes());
    for (source, (high, count)) in named {
        rec.push(source.len() as u8);
        rec.extend_from_slice(source.as_bytes());
        rec.extend_from_slice(&high.to_le_bytes());
        rec.extend_from_slice(&count.to_le_bytes());
    }
    let crc = crc32fast::hash(&rec);
    rec.extend_from_slice(&crc.to_le_bytes());
    rec
}

fn write_ack(
    file: &File,
    path: &Path,
    bytes: u64,
    frames: u64,
    marks: &SourceMarks,
) -> Result<(), WalError> {
    let rec = encode_ack(bytes, frames, marks);
    // The record only grows within a segment (sources are never forgotten), so rewriting it in place
    // leaves no stale bytes after it; the length is checked by the decoder all the same.
    file.write_all_at(&rec, 0).map_err(io(path))?;
    file.sync_data().map_err(io(path))
}

/// Decodes an acknowledgement record of either format. Never panics, on any input.
pub fn decode_ack(rec: &[u8]) -> Result<AckRecord, String> {
    let word = |at: usize| -> Option<u64> {
        let mut b = [0u8; 8];
        b.copy_from_slice(rec.get(at..at.checked_add(8)?)?);
        Some(u64::from_le_bytes(b))
    };
    if rec.starts_with(&ACK_MAGIC_V1) {
        if rec.len() != ACK_LEN_V1 {
            return Err(format!("{} bytes instead of {ACK_LEN_V1}", rec.len()));
        }
        let crc = u32::from_le_bytes([rec[20], rec[21], rec[22], rec[23]]);
        if crc32fast::hash(&rec[..20]) != crc {
            return Err("checksum mismatch".into());
        }
        return Ok(AckRecord {
            bytes: word(4).unwrap_or(0),
            frames: word(12).unwrap_or(0),
            sources: None,
        });
    }
    if !rec.starts_with(&ACK_MAGIC) {
        return Err("no IWA2 magic".into());
    }
    let short = || format!("cut short at {} bytes", rec.len());
    let (Some(bytes), Some(frames), Some(n)) = (word(4), word(12), rec.get(20..22)) else {
        return Err(short());
    };
    let n = u16::from_le_bytes([n[0], n[1]]);
    let mut at = 22usize;
    let mut sources = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        let len = usize::from(*rec.get(at).ok_or_else(short)?);
        let name = rec.get(at + 1..at + 1 + len).ok_or_else(short)?;
        let (Some(highest), Some(count)) = (word(at + 1 + len), word(at + 9 + len)) else {
            return Err(short());
        };
        let source = String::from_utf8(name.to_vec()).map_err(|_| "a source name is not UTF-8")?;
        sources.push(AckedSource {
            source,
            highest,
            count,
        });
        at += 17 + len;
    }
    let crc = rec.get(at..at + 4).ok_or_else(short)?;
    if crc32fast::hash(&rec[..at]) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err("checksum mismatch".into());
    }
    Ok(AckRecord {
        bytes,
        frames,
        sources: Some(sources),
    })
}

/// Marker of the highest segment number created in a log directory.
pub const CREATED: &str = "segments.created";
/// Marker of the highest segment number sealed (written before sealed segments are deleted).
pub const SEALED: &str = "segments.sealed";
const MARKER_MAGIC: [u8; 4] = *b"IWS1";

/// Records `id` in marker `name` of `dir` if it is higher than what the marker holds, synced. Every
/// segment numbered above `segments.sealed` and up to `segments.created` must exist: one that does not
/// was deleted or lost, and [`missing_segments`] names it.
pub fn write_marker(dir: &Path, name: &str, id: u64) -> Result<(), WalError> {
    let current = read_marker(dir, name)?;
    if current.is_some_and(|c| c >= id) {
        return Ok(());
    }
    let path = dir.join(name);
    let mut rec = [0u8; 16];
    rec[..4].copy_from_slice(&MARKER_MAGIC);
    rec[4..12].copy_from_slice(&id.to_le_bytes());
    let crc = crc32fast::hash(&rec[..12]);
    rec[12..].copy_from_slice(&crc.to_le_bytes());
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
    file.write_all_at(&rec, 0).map_err(io(&path))?;
    file.sync_data().map_err(io(&path))?;
    if current.is_none() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(())
}

/// Reads marker `name` of `dir` (`None`: no marker, a log of an earlier version).
pub fn read_marker(dir: &Path, name: &str) -> Result<Option<u64>, WalError> {
    let path = dir.join(name);
    let rec = match fs::read(&path) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path)(e)),
    };
    let damaged = |why: &str| WalError::Marker {
        path: path.clone(),
        why: why.to_owned(),
    };
    if rec.len() != 16 || rec[..4] != MARKER_MAGIC {
        return Err(damaged("not a 16-byte IWS1 record"));
    }
    let crc = u32::from_le_bytes([rec[12], rec[13], rec[14], rec[15]]);
    if crc32fast::hash(&rec[..12]) != crc {
        return Err(damaged("checksum mismatch"));
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&rec[4..12]);
    Ok(Some(u64::from_le_bytes(id)))
}

/// Segment numbers of `dir` that must exist (above `segments.sealed`, up to `segments.created`) and are
/// in neither `dir` nor `mirror`: deleted or lost, with whatever was acknowledged in them.
pub fn missing_segments(dir: &Path, mirror: Option<&Path>) -> Result<Vec<u64>, WalError> {
    // The created marker first, the sealed one last: a segment sealed and deleted while this runs is
    // covered by the sealed marker, written before the deletion.
    let Some(created) = read_marker(dir, CREATED)? else {
        return Ok(Vec::new());
    };
    let mut present: std::collections::BTreeSet<u64> =
        segments(dir)?.into_iter().map(|(id, _)| id).collect();
    if let Some(m) = mirror {
        present.extend(segments(m)?.into_iter().map(|(id, _)| id));
    }
    let sealed = read_marker(dir, SEALED)?.unwrap_or(0);
    Ok((sealed.saturating_add(1)..=created)
        .filter(|id| !present.contains(id))
        .collect())
}

/// The path segment `id` has in `dir`.
pub fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("wal-{id:010}.log"))
}

/// The number of a segment path (`wal-0000000007.log` → 7).
pub fn segment_id(path: &Path) -> Option<u64> {
    path.file_name()?
        .to_str()?
        .strip_prefix("wal-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

/// Records, before they are deleted or moved aside, that segments `paths` are sealed (each directory's
/// `segments.sealed` marker moves up to the highest of them).
pub fn mark_sealed(paths: &[PathBuf]) -> Result<(), WalError> {
    let mut highest: std::collections::BTreeMap<PathBuf, u64> = Default::default();
    for p in paths {
        if let (Some(dir), Some(id)) = (p.parent(), segment_id(p)) {
            let e = highest.entry(dir.to_owned()).or_insert(id);
            *e = (*e).max(id);
        }
    }
    for (dir, id) in highest {
        if dir.is_dir() {
            write_marker(&dir, SEALED, id)?;
        }
    }
    Ok(())
}

/// The segments in `dir`, oldest first.
pub fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(id) = name
            .strip_prefix("wal-")
            .and_then(|r| r.strip_suffix(".log"))
            .and_then(|n| n.parse().ok())
        {
            out.push((id, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// An intact frame found by [`decode_frames`]: where it starts and its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawFrame<'a> {
    /// Offset of the frame's first byte.
    pub offset: usize,
    /// The payload.
    pub payload: &'a [u8],
}

/// What a scan of a segment's bytes found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Intact frames, in order.
    pub frames: Vec<RawFrame<'a>>,
    /// Byte ranges `[start, end)` that are not part of any intact frame, in order.
    pub damaged: Vec<(usize, usize)>,
}

/// Splits a segment's bytes into intact frames and damaged ranges. After damage the scan resynchronises
/// on the next frame magic whose length and checksum hold. Never panics, on any input.
pub fn decode_frames(buf: &[u8]) -> Decoded<'_> {
    decode_with(buf, false)
}

/// The same decoder as [`SegmentReader`], over bytes in memory.
fn decode_with(buf: &[u8], legacy: bool) -> Decoded<'_> {
    let mut d = reader::Decoder::new(reader::Slice(buf), legacy);
    let mut out = Decoded::default();
    // A slice source cannot fail: every read is a bounds-checked `get`.
    while let Ok(Some(span)) = d.next_span() {
        let header = if legacy { 8 } else { FRAME_HEADER };
        let from = span.offset as usize + header;
        out.frames.push(RawFrame {
            offset: span.offset as usize,
            payload: &buf[from..from + span.len as usize],
        });
    }
    out.damaged = d
        .damaged
        .iter()
        .map(|(s, e)| (*s as usize, *e as usize))
        .collect();
    out
}

/// What the acknowledgement record of a segment says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acked {
    /// Acknowledged up to this many bytes and frames.
    Known {
        /// Bytes from the start of the segment.
        bytes: u64,
        /// Frames in those bytes.
        frames: u64,
        /// Per source, the numbers acknowledged in the segment (`None`: a record of the first format).
        sources: Option<Vec<AckedSource>>,
    },
    /// There is no acknowledgement record.
    Missing,
    /// The record is damaged.
    Unreadable(String),
    /// A segment of the earlier format, which had none.
    Legacy,
}

/// An intact frame read back from a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Offset in the segment.
    pub offset: u64,
    /// The payload.
    pub payload: Vec<u8>,
}

/// Damage that may have destroyed acknowledged records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corruption {
    /// First damaged byte.
    pub offset: u64,
    /// Damaged bytes (for a truncation: bytes missing).
    pub len: u64,
    /// What is wrong.
    pub why: String,
}

/// Everything read back from one segment.
#[derive(Clone, Debug)]
pub struct SegmentScan {
    /// The segment file.
    pub path: PathBuf,
    /// Its size.
    pub len: u64,
    /// Intact frames, in order.
    pub frames: Vec<Frame>,
    /// Byte ranges `[start, end)` outside any intact frame.
    pub damaged: Vec<(u64, u64)>,
    /// How far it was acknowledged.
    pub acked: Acked,
}

impl SegmentScan {
    /// Where its frames lie, without their payloads.
    pub fn layout(&self) -> SegmentLayout {
        SegmentLayout {
            path: self.path.clone(),
            len: self.len,
            spans: self
                .frames
                .iter()
                .map(|f| FrameSpan {
                    offset: f.offset,
                    len: f.payload.len() as u64,
                })
                .collect(),
            damaged: self.damaged.clone(),
            acked: self.acked.clone(),
        }
    }

    /// Damage that may have cost acknowledged records (empty when only a torn tail is damaged).
    pub fn corruption(&self) -> Vec<Corruption> {
        self.layout().corruption()
    }

    /// The frames to seal: those within the acknowledged end (all of them for a segment without a
    /// readable acknowledgement record). Intact frames after it were never acknowledged.
    pub fn acknowledged_frames(&self) -> impl Iterator<Item = &Frame> {
        let end = self.acked.end();
        self.frames
            .iter()
            .filter(move |f| f.offset + (FRAME_HEADER + f.payload.len()) as u64 <= end)
    }

    /// Damaged bytes after the acknowledged end: a torn, never-acknowledged tail.
    pub fn torn_bytes(&self) -> u64 {
        self.layout().torn_bytes()
    }
}

impl Acked {
    /// The acknowledged end: frames ending after it were never acknowledged (no bound without a
    /// readable record).
    pub fn end(&self) -> u64 {
        match self {
            Acked::Known { bytes, .. } => *bytes,
            _ => u64::MAX,
        }
    }
}

/// Where a segment's intact frames and damaged ranges lie, and how far it was acknowledged: what
/// recovery decides on, read in bounded memory ([`scan_layout`]).
#[derive(Clone, Debug)]
pub struct SegmentLayout {
    /// The segment file.
    pub path: PathBuf,
    /// Its size.
    pub len: u64,
    /// Intact frames, in order.
    pub spans: Vec<FrameSpan>,
    /// Byte ranges `[start, end)` outside any intact frame.
    pub damaged: Vec<(u64, u64)>,
    /// How far it was acknowledged.
    pub acked: Acked,
}

impl SegmentLayout {
    /// Damage that may have cost acknowledged records (empty when only a torn tail is damaged).
    pub fn corruption(&self) -> Vec<Corruption> {
        let mut out = Vec::new();
        match &self.acked {
            Acked::Known { bytes, frames, .. } => {
                for (s, e) in &self.damaged {
                    if s < bytes {
                        out.push(Corruption {
                            offset: *s,
                            len: e - s,
                            why: format!(
                                "damaged bytes before the acknowledged end ({bytes} bytes, {frames} frames acknowledged)"
                            ),
                        });
                    }
                }
                if self.len < *bytes {
                    let why = format!(
                        "the segment is {} bytes long but {bytes} bytes were acknowledged: acknowledged bytes are missing",
                        self.len
                    );
                    match out.last_mut() {
                        // The frame cut short is the damage: name the truncation on it.
                        Some(last) if last.offset + last.len == self.len => {
                            last.why = why;
                            last.len = bytes - last.offset;
                        }
                        _ => out.push(Corruption {
                            offset: self.len,
                            len: bytes - self.len,
                            why,
                        }),
                    }
                } else if out.is_empty() {
                    let within = self.spans.iter().filter(|f| f.offset < *bytes).count() as u64;
                    if within != *frames {
                        out.push(Corruption {
                            offset: 0,
                            len: *bytes,
                            why: format!(
                                "{within} intact frames before the acknowledged end, {frames} acknowledged"
                            ),
                        });
                    }
                }
            }
            Acked::Missing | Acked::Unreadable(_) => {
                let why = match &self.acked {
                    Acked::Unreadable(w) => format!("acknowledgement record unreadable ({w})"),
                    _ => "acknowledgement record missing".to_owned(),
                };
                for (s, e) in &self.damaged {
                    out.push(Corruption {
                        offset: *s,
                        len: e - s,
                        why: format!("damaged bytes, and {why}: they may have been acknowledged"),
                    });
                }
                // Without the record nothing tells whether acknowledged frames are missing (a segment
                // cut to a frame boundary, or to nothing, looks intact): that is damage in itself.
                // An empty segment without a record may be one of the first format: left alone.
                let unreadable = matches!(self.acked, Acked::Unreadable(_));
                if out.is_empty() && (unreadable || self.len > 0) {
                    out.push(Corruption {
                        offset: self.len,
                        len: 0,
                        why: format!(
                            "{why}: whether acknowledged frames are missing from the segment cannot be told"
                        ),
                    });
                }
            }
            Acked::Legacy => {}
        }
        out
    }

    /// Damaged bytes after the acknowledged end: a torn, never-acknowledged tail.
    pub fn torn_bytes(&self) -> u64 {
        let from = match self.acked {
            Acked::Known { bytes, .. } => bytes,
            Acked::Legacy => 0,
            Acked::Missing | Acked::Unreadable(_) => return 0,
        };
        self.damaged
            .iter()
            .map(|(s, e)| e.saturating_sub(*s.max(&from)))
            .sum()
    }
}

/// Reads a segment one frame at a time (memory: a window of [`WINDOW`] bytes, or the largest frame):
/// what the sealer replays, however large the segment.
pub struct SegmentReader {
    path: PathBuf,
    decoder: reader::Decoder<reader::Windowed>,
    spans: Vec<FrameSpan>,
    acked: Acked,
}

impl SegmentReader {
    /// Opens segment `path`, its acknowledgement record first: it is written after the bytes it covers
    /// are synced, so a log still being appended to (`verify` beside a running server) never looks
    /// shorter than acknowledged.
    pub fn open(path: &Path) -> Result<SegmentReader, WalError> {
        let ack = read_acked(path)?;
        let mut src = reader::Windowed::open(path)?;
        let legacy = ack == Acked::Missing
            && src.len() > 0
            && src
                .get(0, FRAME_MAGIC.len().min(src.len() as usize))?
                .is_some_and(|head| head != FRAME_MAGIC);
        Ok(SegmentReader {
            path: path.to_owned(),
            decoder: reader::Decoder::new(src, legacy),
            spans: Vec::new(),
            acked: if legacy { Acked::Legacy } else { ack },
        })
    }

    /// How far the segment was acknowledged.
    pub fn acked(&self) -> &Acked {
        &self.acked
    }

    /// The next intact frame (acknowledged or not: compare its end with [`Acked::end`]) with its
    /// payload, or `None` at the end of the segment.
    pub fn next_frame(&mut self) -> Result<Option<(FrameSpan, &[u8])>, WalError> {
        let Some(span) = self.decoder.next_span()? else {
            return Ok(None);
        };
        self.spans.push(span);
        let path = &self.path;
        let payload = self.decoder.payload(span).map_err(|e| match e {
            WalError::Io { source, .. } => io(path)(source),
            other => other,
        })?;
        Ok(Some((span, payload)))
    }

    /// Reads to the end, then says where every frame and damaged range lay.
    pub fn finish(mut self) -> Result<SegmentLayout, WalError> {
        while let Some(span) = self.decoder.next_span()? {
            self.spans.push(span);
        }
        Ok(SegmentLayout {
            len: reader::Source::len(&self.decoder.src),
            path: self.path,
            spans: self.spans,
            damaged: std::mem::take(&mut self.decoder.damaged),
            acked: self.acked,
        })
    }
}

/// Where a segment's frames and damage lie, read in bounded memory (no payload kept).
pub fn scan_layout(path: &Path) -> Result<SegmentLayout, WalError> {
    SegmentReader::open(path)?.finish()
}

fn read_acked(path: &Path) -> Result<Acked, WalError> {
    let ack_path = ack_path_of(path);
    Ok(match fs::read(&ack_path) {
        Ok(rec) => match decode_ack(&rec) {
            Ok(r) => Acked::Known {
                bytes: r.bytes,
                frames: r.frames,
                sources: r.sources,
            },
            Err(why) => Acked::Unreadable(why),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Acked::Missing,
        Err(e) => return Err(io(&ack_path)(e)),
    })
}

/// Reads one segment: its intact frames (payloads in memory: for tests and tools; the sealer streams
/// with [`SegmentReader`]), its damaged ranges and its acknowledgement record.
pub fn scan_segment(path: &Path) -> Result<SegmentScan, WalError> {
    let mut reader = SegmentReader::open(path)?;
    let mut frames = Vec::new();
    while let Some((span, payload)) = reader.next_frame()? {
        frames.push(Frame {
            offset: span.offset,
            payload: payload.to_vec(),
        });
    }
    let layout = reader.finish()?;
    Ok(SegmentScan {
        path: layout.path,
        len: layout.len,
        frames,
        damaged: layout.damaged,
        acked: layout.acked,
    })
}

/// Bytes in the log's segments in `dir` (closed and current): the backlog not yet sealed.
pub fn segments_bytes(dir: &Path) -> Result<u64, WalError> {
    let mut total = 0u64;
    for (_, p) in segments(dir)? {
        match fs::metadata(&p) {
            Ok(m) => total += m.len(),
            // Sealed and deleted meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&p)(e)),
        }
    }
    Ok(total)
}

/// Deletes sealed segments and their acknowledgement records.
pub fn remove_segments(paths: &[PathBuf]) -> Result<(), WalError> {
    mark_sealed(paths)?;
    for p in paths {
        for f in [p.clone(), ack_path_of(p)] {
            match fs::remove_file(&f) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&f)(e)),
            }
        }
    }
    Ok(())
}

/// Moves segments (and their acknowledgement records) into `to`, keeping damaged ones for inspection.
pub fn move_segments(paths: &[PathBuf], to: &Path) -> Result<(), WalError> {
    fs::create_dir_all(to).map_err(io(to))?;
    mark_sealed(paths)?;
    for p in paths {
        for f in [p.clone(), ack_path_of(p)] {
            let Some(name) = f.file_name() else { continue };
            match fs::rename(&f, to.join(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&f)(e)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed_segment(payloads: &[&[u8]]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut wal = Wal::open(dir.path()).expect("open");
        for p in payloads {
            wal.append(p).expect("append");
        }
        wal.sync().expect("sync");
        let closed = wal.rotate().expect("rotate");
        assert_eq!(closed.len(), 1);
        let path = closed[0].clone();
        (dir, path)
    }

    #[test]
    fn records_survive_and_a_torn_unacknowledged_tail_is_dropped() {
        let (dir, path) = closed_segment(&[b"one", b"two"]);
        // A crash in the middle of an unacknowledged write: half a frame after the acknowledged end.
        let mut f = OpenOptions::new().append(true).open(&path).expect("reopen");
        f.write_all(b"IWF1\x09\0\0").expect("write");
        let scan = scan_segment(&path).expect("scan");
        let payloads: Vec<&[u8]> = scan.frames.iter().map(|f| f.payload.as_slice()).collect();
        assert_eq!(payloads, vec![b"one".as_slice(), b"two".as_slice()]);
        assert_eq!(scan.torn_bytes(), 7);
        assert!(scan.corruption().is_empty(), "{:?}", scan.corruption());
        // An intact frame written after the acknowledged end was never acknowledged: not sealed.
        let mut bytes = fs::read(&path).expect("read");
        bytes.truncate(bytes.len() - 7);
        bytes.extend_from_slice(&encode_frame(b"three").expect("frame"));
        fs::write(&path, &bytes).expect("write");
        let scan = scan_segment(&path).expect("scan");
        assert_eq!(scan.frames.len(), 3);
        assert_eq!(scan.acknowledged_frames().count(), 2);
        assert!(scan.corruption().is_empty());
        // Reopening starts after the existing segments.
        let mut wal = Wal::open(dir.path()).expect("reopen");
        let closed = wal.rotate().expect("rotate");
        assert_eq!(closed.len(), 3);
        remove_segments(&closed).expect("remove");
        assert_eq!(segments(dir.path()).expect("list").len(), 1);
        assert!(!ack_path_of(&closed[0]).exists());
    }

    #[test]
    fn a_flipped_byte_is_corruption_and_the_frames_after_it_are_found_again() {
        let payloads: Vec<Vec<u8>> = (0..100)
            .map(|i| format!("{{\"record\":{i},\"pad\":\"{}\"}}", "x".repeat(i)).into_bytes())
            .collect();
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        let (_dir, path) = closed_segment(&refs);
        let mut bytes = fs::read(&path).expect("read");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x20;
        fs::write(&path, &bytes).expect("write");
        let scan = scan_segment(&path).expect("scan");
        assert_eq!(scan.frames.len(), 99, "every other frame is intact");
        let bad = scan.corruption();
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert!(bad[0].offset <= mid as u64 && mid as u64 <= bad[0].offset + bad[0].len);
        assert_eq!(scan.torn_bytes(), 0);
    }

    #[test]
    fn cutting_acknowledged_bytes_is_corruption_not_a_torn_tail() {
        let (_dir, path) = closed_segment(&[b"one", b"two", b"three"]);
        let bytes = fs::read(&path).expect("read");
        fs::write(&path, &bytes[..bytes.len() - 5]).expect("cut");
        let scan = scan_segment(&path).expect("scan");
        assert_eq!(scan.frames.len(), 2);
        let bad = scan.corruption();
        assert!(!bad.is_empty());
        assert!(
            bad.iter().any(|c| c.why.contains("acknowledged")),
            "{bad:?}"
        );
        // Without its acknowledgement record, damage cannot be called a torn tail either.
        fs::remove_file(ack_path_of(&path)).expect("rm ack");
        let scan = scan_segment(&path).expect("scan");
        assert!(!scan.corruption().is_empty());
        // A damaged acknowledgement record is named.
        fs::write(ack_path_of(&path), [0u8; 24]).expect("write");
        assert!(matches!(
            scan_segment(&path).expect("scan").acked,
            Acked::Unreadable(_)
        ));
    }

    #[test]
    fn the_acknowledgement_record_carries_each_sources_high_water_mark() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut wal = Wal::open(dir.path()).expect("open");
        wal.append_numbered(b"a", [("c", 7), ("c", 9), ("hub", 3)].into_iter())
            .expect("append");
        wal.append_numbered(b"b", [("c", 10)].into_iter())
            .expect("append");
        wal.sync().expect("sync");
        let closed = wal.rotate().expect("rotate");
        let rec = decode_ack(&fs::read(ack_path_of(&closed[0])).expect("read")).expect("decode");
        assert_eq!(rec.frames, 2);
        assert_eq!(
            rec.sources,
            Some(vec![
                AckedSource {
                    source: "c".into(),
                    highest: 10,
                    count: 3
                },
                AckedSource {
                    source: "hub".into(),
                    highest: 3,
                    count: 1
                },
            ])
        );
        // The next segment starts with no sources.
        let rec = decode_ack(&fs::read(ack_path_of(&wal.path)).expect("read")).expect("decode");
        assert_eq!(rec.sources, Some(Vec::new()));
        // A segment cut to nothing is not intact when its record is unreadable.
        fs::write(&closed[0], b"").expect("cut");
        fs::write(ack_path_of(&closed[0]), b"IWA2 junk").expect("damage");
        assert_eq!(
            scan_segment(&closed[0]).expect("scan").corruption().len(),
            1
        );
        // Every prefix and every flipped byte of a record decodes or is refused, never panics.
        let full = encode_ack(5, 1, &[("c".to_owned(), (4, 2))].into_iter().collect());
        for i in 0..full.len() {
            assert!(decode_ack(&full[..i]).is_err());
            let mut f = full.clone();
            f[i] ^= 0x41;
            assert!(decode_ack(&f).is_err());
        }
        // The first format is still read.
        let mut v1 = [0u8; 24];
        v1[..4].copy_from_slice(b"IWA1");
        v1[4] = 9;
        let crc = crc32fast::hash(&v1[..20]);
        v1[20..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode_ack(&v1),
            Ok(AckRecord {
                bytes: 9,
                frames: 0,
                sources: None
            })
        );
    }

    #[test]
    fn a_deleted_segment_is_missing_until_sealed_and_numbers_are_never_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut wal = Wal::open(dir.path()).expect("open");
        wal.append(b"one").expect("append");
        let closed = wal.rotate().expect("rotate");
        let _ = wal.rotate().expect("rotate");
        assert!(
            missing_segments(dir.path(), None)
                .expect("check")
                .is_empty()
        );
        // Segment 1 deleted behind Iris's back: missing.
        fs::remove_file(&closed[0]).expect("rm");
        fs::remove_file(ack_path_of(&closed[0])).expect("rm");
        assert_eq!(missing_segments(dir.path(), None).expect("check"), vec![1]);
        // Every segment deleted, the last one too: all named, and a new log does not reuse a number.
        for (_, p) in segments(dir.path()).expect("list") {
            fs::remove_file(&p).expect("rm");
        }
        assert_eq!(
            missing_segments(dir.path(), None).expect("check"),
            vec![1, 2, 3]
        );
        drop(wal);
        let wal = Wal::open(dir.path()).expect("reopen");
        assert_eq!(wal.id, 4);
        // Once sealed (or recorded lost), they are no longer expected.
        mark_sealed(&[segment_path(dir.path(), 3)]).expect("mark");
        assert!(
            missing_segments(dir.path(), None)
                .expect("check")
                .is_empty()
        );
        // A damaged marker is named, not taken for zero.
        fs::write(dir.path().join(SEALED), b"junk").expect("damage");
        assert!(matches!(
            missing_segments(dir.path(), None),
            Err(WalError::Marker { .. })
        ));
    }

    #[test]
    fn legacy_segments_are_still_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wal-0000000001.log");
        let mut bytes = Vec::new();
        for p in [b"one".as_slice(), b"two"] {
            bytes.extend_from_slice(&(p.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&crc32fast::hash(p).to_le_bytes());
            bytes.extend_from_slice(p);
        }
        bytes.extend_from_slice(&[9, 0, 0]);
        fs::write(&path, &bytes).expect("write");
        let scan = scan_segment(&path).expect("scan");
        assert_eq!(scan.acked, Acked::Legacy);
        assert_eq!(scan.frames.len(), 2);
        assert_eq!(scan.torn_bytes(), 3);
        assert!(scan.corruption().is_empty());
    }

    #[test]
    fn the_streaming_reader_finds_what_the_whole_buffer_decoder_finds() {
        // Frames of every size around the reader's window, damage anywhere: a file read a window at a
        // time gives the same frames and damaged ranges as its bytes decoded at once.
        let dir = tempfile::tempdir().expect("tempdir");
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for round in 0..6 {
            let mut bytes = Vec::new();
            while bytes.len() < 3 * WINDOW {
                let len = match next(4) {
                    0 => next(64) as usize,
                    1 => next(WINDOW as u64 / 3) as usize,
                    2 => WINDOW + next(4096) as usize - 2048,
                    _ => next(1 << 16) as usize,
                };
                let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
                bytes.extend_from_slice(&encode_frame(&payload).expect("frame"));
            }
            for _ in 0..round * 3 {
                let at = next(bytes.len() as u64) as usize;
                bytes[at] ^= 0x5a;
            }
            if round % 2 == 1 {
                let cut = next(bytes.len() as u64) as usize;
                bytes.truncate(bytes.len() - cut / 4);
            }
            let path = dir.path().join(format!("wal-{:010}.log", round + 1));
            fs::write(&path, &bytes).expect("write");
            let want = decode_frames(&bytes);
            let scan = scan_segment(&path).expect("scan");
            let got: Vec<(u64, usize)> = scan
                .frames
                .iter()
                .map(|f| (f.offset, f.payload.len()))
                .collect();
            let expected: Vec<(u64, usize)> = want
                .frames
                .iter()
                .map(|f| (f.offset as u64, f.payload.len()))
                .collect();
            assert_eq!(got, expected, "round {round}");
            assert!(
                scan.frames
                    .iter()
                    .zip(&want.frames)
                    .all(|(a, b)| a.payload == b.payload)
            );
            let damaged: Vec<(u64, u64)> = want
                .damaged
                .iter()
                .map(|(a, b)| (*a as u64, *b as u64))
                .collect();
            assert_eq!(scan.damaged, damaged, "round {round}");
            let layout = scan_layout(&path).expect("layout");
            assert_eq!(layout.damaged, damaged);
            assert_eq!(layout.spans.len(), expected.len());
        }
    }

    #[test]
    fn the_decoder_never_panics_on_junk() {
        let frame = encode_frame(b"payload").expect("frame");
        let mut inputs: Vec<Vec<u8>> = vec![
            vec![],
            b"IWF1".to_vec(),
            b"IWF1\xff\xff\xff\xff\0\0\0\0".to_vec(),
            frame[..frame.len() - 1].to_vec(),
        ];
        for i in 0..frame.len() {
            let mut f = frame.clone();
            f[i] ^= 0xff;
            inputs.push(f);
        }
        for input in inputs {
            let d = decode_frames(&input);
            let covered: usize = d
                .frames
                .iter()
                .map(|f| FRAME_HEADER + f.payload.len())
                .sum::<usize>()
                + d.damaged.iter().map(|(s, e)| e - s).sum::<usize>();
            assert_eq!(covered, input.len(), "every byte is a frame's or damaged");
        }
    }
}

/// What the acknowledgement record costs: `cargo test -p iris-ingest --release ack_latency -- --ignored
/// --nocapture` (set `IRIS_WAL_BENCH_DIR` to a directory on the disk the WAL will use).
#[cfg(test)]
mod latency {
    use super::*;
    use std::time::Instant;

    #[test]
    #[ignore = "a measurement, not a check"]
    fn ack_latency() {
        let base = std::env::var_os("IRIS_WAL_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::tempdir_in(base).expect("tempdir");
        let payload = vec![b'x'; 64 * 1024];
        let rounds = 300;
        // The segment alone: append + fdatasync (what the log did before the acknowledgement record).
        let path = dir.path().join("plain.log");
        let mut plain = BufWriter::new(File::create(&path).expect("create"));
        let started = Instant::now();
        for _ in 0..rounds {
            plain.write_all(&payload).expect("write");
            plain.flush().expect("flush");
            plain.get_ref().sync_data().expect("sync");
        }
        let before = started.elapsed() / rounds;
        // The log: append + sync of the segment and of its acknowledgement record.
        let mut wal = Wal::open(&dir.path().join("wal")).expect("open");
        let started = Instant::now();
        for _ in 0..rounds {
            wal.append(&payload).expect("append");
            wal.sync().expect("sync");
        }
        let after = started.elapsed() / rounds;
        // The same with each batch's numbers (500 events of three sources) in the record.
        let sources = ["collector-a", "collector-b", "iris"];
        let mut wal = Wal::open(&dir.path().join("wal3")).expect("open");
        let started = Instant::now();
        for r in 0..rounds as u64 {
            let numbers = (0..500u64).map(|i| (sources[(i % 3) as usize], r * 500 + i + 1));
            wal.append_numbered(&payload, numbers).expect("append");
            wal.sync().expect("sync");
        }
        let numbered = started.elapsed() / rounds;
        // With a mirror (on the same disk here; on another device the two syncs overlap less).
        let mut wal =
            Wal::open_mirrored(&dir.path().join("wal2"), Some(&dir.path().join("mirror")))
                .expect("open");
        let started = Instant::now();
        for _ in 0..rounds {
            wal.append(&payload).expect("append");
            wal.sync().expect("sync");
        }
        let mirrored = started.elapsed() / rounds;
        println!(
            "64 KiB group commit: segment fsync alone {before:?}, with the acknowledgement record {after:?}, with per-source marks of 500 numbers {numbered:?}, mirrored {mirrored:?}"
        );
    }
}
