//! Write-ahead log: acknowledged events survive `kill -9`.
//!
//! Segments `wal-NNNNNNNNNN.log` hold framed records `[len u32 LE][crc32 u32 LE][payload]`. A record is
//! acknowledged only after [`Wal::sync`] (fdatasync) returns. On recovery a torn tail — a record cut short
//! or failing its CRC, which can only be one that was never acknowledged — is dropped and reported.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Errors of the write-ahead log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("write-ahead log {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("write-ahead log record of {0} bytes is too large")]
    TooLarge(usize),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Largest record accepted (a batch is bounded well below this).
pub const MAX_RECORD: usize = 1 << 30;

/// The log being appended to.
pub struct Wal {
    dir: PathBuf,
    id: u64,
    path: PathBuf,
    out: BufWriter<File>,
    bytes: u64,
}

impl Wal {
    /// Opens the log in `dir`, starting a new segment after any existing ones (which stay for recovery).
    pub fn open(dir: &Path) -> Result<Wal, WalError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let next = segments(dir)?.last().map(|(id, _)| id + 1).unwrap_or(1);
        let (path, out) = create_segment(dir, next)?;
        Ok(Wal {
            dir: dir.to_owned(),
            id: next,
            path,
            out,
            bytes: 0,
        })
    }

    /// Appends one record (not yet durable: call [`Wal::sync`]).
    pub fn append(&mut self, payload: &[u8]) -> Result<(), WalError> {
        if payload.len() > MAX_RECORD {
            return Err(WalError::TooLarge(payload.len()));
        }
        let len = payload.len() as u32;
        let crc = crc32fast::hash(payload);
        let path = &self.path;
        self.out.write_all(&len.to_le_bytes()).map_err(io(path))?;
        self.out.write_all(&crc.to_le_bytes()).map_err(io(path))?;
        self.out.write_all(payload).map_err(io(path))?;
        self.bytes += 8 + payload.len() as u64;
        Ok(())
    }

    /// Makes everything appended so far durable.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.out.flush().map_err(io(&self.path))?;
        self.out.get_ref().sync_data().map_err(io(&self.path))
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
        let (path, out) = create_segment(&self.dir, next)?;
        self.id = next;
        self.path = path;
        self.out = out;
        self.bytes = 0;
        Ok(segments(&self.dir)?
            .into_iter()
            .filter(|(id, _)| *id < next)
            .map(|(_, p)| p)
            .collect())
    }
}

fn create_segment(dir: &Path, id: u64) -> Result<(PathBuf, BufWriter<File>), WalError> {
    let path = dir.join(format!("wal-{id:010}.log"));
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io(&path))?;
    // The new name must be durable too, or a crash could lose the whole segment.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok((path, BufWriter::with_capacity(1 << 20, file)))
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

/// What was read back from one segment.
#[derive(Debug, Default)]
pub struct SegmentRead {
    /// The intact records, in order.
    pub records: Vec<Vec<u8>>,
    /// Bytes after the last intact record (a torn, never-acknowledged tail).
    pub torn_bytes: u64,
}

/// Reads every intact record of a segment.
pub fn read_segment(path: &Path) -> Result<SegmentRead, WalError> {
    let mut buf = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut buf))
        .map_err(io(path))?;
    let mut read = SegmentRead::default();
    let mut pos = 0usize;
    while pos + 8 <= buf.len() {
        let len = u32::from_le_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize;
        let crc = u32::from_le_bytes([buf[pos + 4], buf[pos + 5], buf[pos + 6], buf[pos + 7]]);
        let end = pos + 8 + len;
        if end > buf.len() || crc32fast::hash(&buf[pos + 8..end]) != crc {
            break;
        }
        read.records.push(buf[pos + 8..end].to_vec());
        pos = end;
    }
    read.torn_bytes = (buf.len() - pos) as u64;
    Ok(read)
}

/// Deletes sealed segments.
pub fn remove_segments(paths: &[PathBuf]) -> Result<(), WalError> {
    for p in paths {
        match fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(p)(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_and_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut wal = Wal::open(dir.path()).expect("open");
        wal.append(b"one").expect("append");
        wal.append(b"two").expect("append");
        wal.sync().expect("sync");
        let closed = wal.rotate().expect("rotate");
        assert_eq!(closed.len(), 1);
        // Simulate a crash in the middle of a write: half a record at the end.
        let mut f = OpenOptions::new()
            .append(true)
            .open(&closed[0])
            .expect("reopen");
        f.write_all(&[9, 0, 0, 0, 1, 2]).expect("write");
        let read = read_segment(&closed[0]).expect("read");
        assert_eq!(read.records, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(read.torn_bytes, 6);
        // A flipped byte inside a record fails its CRC.
        let mut bytes = fs::read(&closed[0]).expect("read");
        bytes[8] ^= 1;
        fs::write(&closed[0], &bytes).expect("write");
        assert!(read_segment(&closed[0]).expect("read").records.is_empty());
        // Reopening starts after the existing segments.
        drop(wal);
        let mut wal = Wal::open(dir.path()).expect("reopen");
        let closed = wal.rotate().expect("rotate");
        assert_eq!(closed.len(), 3);
        remove_segments(&closed).expect("remove");
        assert_eq!(segments(dir.path()).expect("list").len(), 1);
    }
}
