//! Reading a segment frame by frame, in bounded memory: the one decoder of the log's bytes, used on a
//! file (a window of [`WINDOW`] bytes, or one frame when a frame is larger) and on bytes in memory.
//!
//! A frame is intact when its magic, length and CRC hold; after damage the decoder resynchronises on the
//! next occurrence of the magic's first byte whose frame holds. Segments of the earlier format (no magic)
//! are read up to their first bad record.

use super::{FRAME_HEADER, FRAME_MAGIC, MAX_RECORD, WalError, io};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes read from a file at a time (a larger frame is read whole).
pub const WINDOW: usize = 4 << 20;

/// Bytes searched at a time for the next frame magic after damage.
const SCAN: usize = 64 << 10;

/// Where an intact frame lies in its segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSpan {
    /// Offset of the frame's first byte.
    pub offset: u64,
    /// Length of its payload.
    pub len: u64,
}

impl FrameSpan {
    /// The offset just after the frame.
    pub fn end(&self) -> u64 {
        self.offset + FRAME_HEADER as u64 + self.len
    }

    /// Where the payload starts.
    pub fn payload_at(&self) -> u64 {
        self.offset + FRAME_HEADER as u64
    }
}

/// Random access to a segment's bytes.
pub(super) trait Source {
    /// Bytes in the segment.
    fn len(&self) -> u64;
    /// The `n` bytes at `at`, or `None` when they run past the end.
    fn get(&mut self, at: u64, n: usize) -> Result<Option<&[u8]>, WalError>;
}

/// Bytes in memory.
pub(super) struct Slice<'a>(pub &'a [u8]);

impl Source for Slice<'_> {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn get(&mut self, at: u64, n: usize) -> Result<Option<&[u8]>, WalError> {
        let Ok(at) = usize::try_from(at) else {
            return Ok(None);
        };
        Ok(at.checked_add(n).and_then(|end| self.0.get(at..end)))
    }
}

/// A file, read through a window (its length taken when opened: bytes appended later are not read).
pub(super) struct Windowed {
    file: File,
    path: PathBuf,
    len: u64,
    window: Vec<u8>,
    window_at: u64,
}

impl Windowed {
    pub(super) fn open(path: &Path) -> Result<Windowed, WalError> {
        let file = File::open(path).map_err(io(path))?;
        let len = file.metadata().map_err(io(path))?.len();
        Ok(Windowed {
            file,
            path: path.to_owned(),
            len,
            window: Vec::new(),
            window_at: 0,
        })
    }
}

impl Source for Windowed {
    fn len(&self) -> u64 {
        self.len
    }

    fn get(&mut self, at: u64, n: usize) -> Result<Option<&[u8]>, WalError> {
        let Some(end) = at.checked_add(n as u64).filter(|e| *e <= self.len) else {
            return Ok(None);
        };
        let have = self.window_at..=self.window_at + self.window.len() as u64;
        if !(have.contains(&at) && have.contains(&end)) {
            // Refill from `at`: a window, or the whole request when it is larger.
            let want = (n.max(WINDOW) as u64).min(self.len - at) as usize;
            self.window.clear();
            if self.window.capacity() > WINDOW.max(n) {
                // A large frame was read before: give its memory back.
                self.window.shrink_to(WINDOW.max(n));
            }
            self.window.resize(want, 0);
            self.file
                .read_exact_at(&mut self.window, at)
                .map_err(io(&self.path))?;
            self.window_at = at;
        }
        let from = (at - self.window_at) as usize;
        Ok(self.window.get(from..from + n))
    }
}

/// Walks a segment's frames in order, noting the damaged ranges between them.
pub(super) struct Decoder<S: Source> {
    pub(super) src: S,
    legacy: bool,
    pos: u64,
    damage_start: Option<u64>,
    /// Byte ranges `[start, end)` outside any intact frame, found so far.
    pub(super) damaged: Vec<(u64, u64)>,
    done: bool,
}

impl<S: Source> Decoder<S> {
    /// Frames of the current format (`legacy` false) or of the earlier one.
    pub(super) fn new(src: S, legacy: bool) -> Self {
        Decoder {
            src,
            legacy,
            pos: 0,
            damage_start: None,
            damaged: Vec::new(),
            done: false,
        }
    }

    /// The next intact frame, or `None` at the end (then [`Decoder::damaged`] is complete).
    pub(super) fn next_span(&mut self) -> Result<Option<FrameSpan>, WalError> {
        if self.done {
            return Ok(None);
        }
        let len = self.src.len();
        if self.legacy {
            let span = self.legacy_at(self.pos)?;
            return Ok(match span {
                Some(s) => {
                    self.pos = s.offset + 8 + s.len;
                    Some(s)
                }
                None => {
                    if self.pos < len {
                        self.damaged.push((self.pos, len));
                    }
                    self.done = true;
                    None
                }
            });
        }
        while self.pos < len {
            if let Some(span) = self.frame_at(self.pos)? {
                if let Some(s) = self.damage_start.take() {
                    self.damaged.push((s, self.pos));
                }
                self.pos = span.end();
                return Ok(Some(span));
            }
            if self.damage_start.is_none() {
                self.damage_start = Some(self.pos);
            }
            self.pos = self.next_candidate(self.pos + 1)?;
        }
        if let Some(s) = self.damage_start.take() {
            self.damaged.push((s, len));
        }
        self.done = true;
        Ok(None)
    }

    /// The payload of a span just returned by [`Decoder::next_span`].
    pub(super) fn payload(&mut self, span: FrameSpan) -> Result<&[u8], WalError> {
        let at = if self.legacy {
            span.offset + 8
        } else {
            span.payload_at()
        };
        let n = span.len as usize;
        self.src.get(at, n)?.ok_or_else(|| WalError::Io {
            path: PathBuf::new(),
            source: std::io::Error::other("frame payload past the end of the segment"),
        })
    }

    /// An intact frame at `pos`, if there is one.
    fn frame_at(&mut self, pos: u64) -> Result<Option<FrameSpan>, WalError> {
        let Some(head) = self.src.get(pos, FRAME_HEADER)? else {
            return Ok(None);
        };
        if head[..4] != FRAME_MAGIC {
            return Ok(None);
        }
        let len_bytes = [head[4], head[5], head[6], head[7]];
        let len = u32::from_le_bytes(len_bytes) as usize;
        let crc = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if len > MAX_RECORD {
            return Ok(None);
        }
        let start = pos + FRAME_HEADER as u64;
        let Some(payload) = self.src.get(start, len)? else {
            return Ok(None);
        };
        let mut h = crc32fast::Hasher::new();
        h.update(&len_bytes);
        h.update(payload);
        Ok((h.finalize() == crc).then_some(FrameSpan {
            offset: pos,
            len: len as u64,
        }))
    }

    /// The first offset at or after `from` holding the magic's first byte (the end if none).
    fn next_candidate(&mut self, mut from: u64) -> Result<u64, WalError> {
        let len = self.src.len();
        while from < len {
            // Small steps, so that a scan through damage stays within the window it has read.
            let n = ((len - from) as usize).min(SCAN);
            let Some(chunk) = self.src.get(from, n)? else {
                return Ok(len);
            };
            if let Some(i) = chunk.iter().position(|b| *b == FRAME_MAGIC[0]) {
                return Ok(from + i as u64);
            }
            from += n as u64;
        }
        Ok(len)
    }

    /// A record of the earlier format at `pos`: `[len u32][crc32 u32][payload]`.
    fn legacy_at(&mut self, pos: u64) -> Result<Option<FrameSpan>, WalError> {
        let Some(head) = self.src.get(pos, 8)? else {
            return Ok(None);
        };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let Some(payload) = self.src.get(pos + 8, len)? else {
            return Ok(None);
        };
        Ok((crc32fast::hash(payload) == crc).then_some(FrameSpan {
            offset: pos,
            len: len as u64,
        }))
    }
}
