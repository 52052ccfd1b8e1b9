//! Reading a JSON-lines file in large chunks cut at line boundaries, so that chunks can be parsed on
//! every core and put back in order.
//!
//! A chunk holds whole lines only (the partial line at the end of a read moves to the next chunk) and
//! knows the number of its first line, so record numbers are the file's line numbers whatever the chunk
//! size. A line longer than [`MAX_LINE`] is not held in memory: it is skipped to its newline and
//! reported as one refused record (no audit record is anywhere near that long).

use std::io::Read;

/// Bytes read at a time (a chunk is this plus at most the rest of its last line).
pub const CHUNK_BYTES: usize = 1 << 20;
/// Longest line held in memory; longer lines are refused without being read whole.
pub const MAX_LINE: usize = 16 << 20;

/// Whole lines of the input, starting at line `first_line` (1-based).
#[derive(Debug, Default)]
pub struct Chunk {
    /// Position of the chunk in the input, from 0.
    pub index: u64,
    /// Number of the first line in `bytes`.
    pub first_line: u64,
    /// Whole lines, each ending in `\n` except possibly the input's last one.
    pub bytes: Vec<u8>,
    /// Lines longer than [`MAX_LINE`] met just before this chunk's lines: (line number, length).
    pub too_long: Vec<(u64, u64)>,
}

impl Chunk {
    /// The lines of the chunk with their numbers (the line feed removed, nothing else).
    pub fn lines(&self) -> impl Iterator<Item = (u64, &[u8])> {
        let body = self.bytes.strip_suffix(b"\n").unwrap_or(&self.bytes);
        let mut n = self.first_line;
        body.split(|b| *b == b'\n')
            .filter(move |_| !self.bytes.is_empty())
            .map(move |line| {
                n += 1;
                (n - 1, line)
            })
    }
}

/// Cuts an input into [`Chunk`]s of about `chunk_bytes` each.
pub struct Chunker<R> {
    input: R,
    chunk_bytes: usize,
    max_line: usize,
    /// Bytes read but not yet handed out (the start of an unfinished line).
    carry: Vec<u8>,
    next_line: u64,
    next_index: u64,
    done: bool,
    /// Positions of the first and last newline in `carry`, if any.
    first_newline: Option<usize>,
    last_newline: Option<usize>,
}

impl<R: Read> Chunker<R> {
    /// A chunker with the default sizes.
    pub fn new(input: R) -> Self {
        Self::with_sizes(input, CHUNK_BYTES, MAX_LINE)
    }

    /// A chunker with explicit sizes (tests use tiny ones to put boundaries everywhere).
    pub fn with_sizes(input: R, chunk_bytes: usize, max_line: usize) -> Self {
        Chunker {
            input,
            chunk_bytes: chunk_bytes.max(1),
            max_line: max_line.max(1),
            carry: Vec::new(),
            next_line: 1,
            next_index: 0,
            done: false,
            first_newline: None,
            last_newline: None,
        }
    }

    /// The next chunk, `None` at the end of the input.
    pub fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>> {
        let mut too_long = Vec::new();
        loop {
            let head = self.first_newline.unwrap_or(self.carry.len());
            if head > self.max_line {
                // An over-long line at the start of the buffer: skip it to its newline.
                let len = self.skip_line()?;
                too_long.push((self.next_line, len));
                self.next_line += 1;
                continue;
            }
            let tail = self
                .last_newline
                .map_or(self.carry.len(), |p| self.carry.len() - p - 1);
            let cut = if let Some(p) = self.last_newline
                && (self.carry.len() >= self.chunk_bytes || tail > self.max_line)
            {
                Some(p + 1)
            } else if self.done {
                Some(self.carry.len())
            } else {
                None
            };
            if let Some(at) = cut {
                if at == 0 && too_long.is_empty() {
                    return Ok(None);
                }
                let rest = self.carry.split_off(at);
                let bytes = std::mem::replace(&mut self.carry, rest);
                // What is left is the start of one line: no newline in it.
                (self.first_newline, self.last_newline) = (None, None);
                let lines = count_lines(&bytes);
                let chunk = Chunk {
                    index: self.next_index,
                    first_line: self.next_line,
                    bytes,
                    too_long,
                };
                self.next_index += 1;
                self.next_line += lines;
                return Ok(Some(chunk));
            }
            self.fill()?;
        }
    }

    /// Reads once more into the buffer (a chunk's worth of room), noting newlines in the new bytes
    /// only (so a long line is scanned once); marks the end of input.
    fn fill(&mut self) -> std::io::Result<()> {
        let start = self.carry.len();
        self.carry.resize(start + self.chunk_bytes, 0);
        loop {
            match self.input.read(&mut self.carry[start..]) {
                Ok(n) => {
                    self.carry.truncate(start + n);
                    self.done = n == 0;
                    let new = &self.carry[start..];
                    if self.first_newline.is_none() {
                        self.first_newline =
                            new.iter().position(|b| *b == b'\n').map(|p| start + p);
                    }
                    if let Some(p) = memrchr(b'\n', new) {
                        self.last_newline = Some(start + p);
                    }
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.carry.truncate(start);
                    return Err(e);
                }
            }
        }
    }

    /// Drops the line at the start of the buffer (and of the input after it) through its newline;
    /// returns its length without the newline.
    fn skip_line(&mut self) -> std::io::Result<u64> {
        let mut len = 0u64;
        loop {
            if let Some(p) = self.first_newline {
                len += p as u64;
                self.carry.drain(..=p);
                self.first_newline = self.carry.iter().position(|b| *b == b'\n');
                self.last_newline = memrchr(b'\n', &self.carry);
                return Ok(len);
            }
            len += self.carry.len() as u64;
            self.carry.clear();
            if self.done {
                return Ok(len);
            }
            self.fill()?;
        }
    }
}

/// Lines in `bytes`: its newlines, plus one for an unterminated last line.
fn count_lines(bytes: &[u8]) -> u64 {
    let n = bytes.iter().filter(|b| **b == b'\n').count() as u64;
    n + u64::from(!bytes.is_empty() && !bytes.ends_with(b"\n"))
}

fn memrchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().rposition(|b| *b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbered lines, and the (line, length) of the lines too long to keep.
    type Cut = (Vec<(u64, Vec<u8>)>, Vec<(u64, u64)>);

    fn all(input: &[u8], chunk: usize, max_line: usize) -> Cut {
        let mut c = Chunker::with_sizes(input, chunk, max_line);
        let (mut lines, mut long) = (Vec::new(), Vec::new());
        let mut index = 0;
        while let Some(ch) = c.next_chunk().expect("read") {
            assert_eq!(ch.index, index);
            index += 1;
            long.extend(ch.too_long.iter().copied());
            lines.extend(ch.lines().map(|(n, l)| (n, l.to_vec())));
        }
        (lines, long)
    }

    /// Lines as `BufRead::split` numbers them.
    fn reference(input: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let body = input.strip_suffix(b"\n").unwrap_or(input);
        if input.is_empty() {
            return Vec::new();
        }
        body.split(|b| *b == b'\n')
            .enumerate()
            .map(|(i, l)| (i as u64 + 1, l.to_vec()))
            .collect()
    }

    #[test]
    fn chunks_give_the_same_lines_for_any_chunk_size() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |m: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % m
        };
        for _ in 0..300 {
            let mut input = Vec::new();
            for _ in 0..next(40) {
                let len = next(30) as usize;
                input.extend((0..len).map(|i| {
                    if i % 7 == 3 {
                        b'\r'
                    } else {
                        b'a' + (i % 26) as u8
                    }
                }));
                input.push(b'\n');
            }
            if next(2) == 0 {
                input.extend_from_slice(b"tail without newline");
            }
            let chunk = 1 + next(50) as usize;
            let (lines, long) = all(&input, chunk, usize::MAX);
            assert!(long.is_empty());
            assert_eq!(lines, reference(&input), "chunk size {chunk}");
        }
    }

    #[test]
    fn empty_input_has_no_chunks() {
        assert!(all(b"", 4, 100).0.is_empty());
        assert_eq!(all(b"\n", 4, 100).0, vec![(1, Vec::new())]);
    }

    #[test]
    fn over_long_lines_are_skipped_and_named() {
        let long = "x".repeat(1000);
        let input = format!("a\n{long}\nb\nc{long}");
        let (lines, too_long) = all(input.as_bytes(), 8, 100);
        assert_eq!(lines, vec![(1, b"a".to_vec()), (3, b"b".to_vec())]);
        assert_eq!(too_long, vec![(2, 1000), (4, 1001)]);
    }
}
