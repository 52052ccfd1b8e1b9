//! Packing a tantivy index (a handful of files) into one object-store blob and back.
//!
//! Layout: `IRISIDX1`, a little-endian u32 header length, the JSON [`BlobHeader`], then the files' bytes
//! in header order.

use crate::error::IndexError;
use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 8] = b"IRISIDX1";

/// What the blob says about itself.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BlobHeader {
    /// SHA-256 (hex) of the partition file this index was built from: an index whose digest differs from
    /// the sealed partition's is stale, not evidence of tampering with the partition.
    pub partition_sha256: String,
    /// Rows in the partition.
    pub rows: u64,
    /// Rows of each Parquet row group, in order: turns row numbers into row selections.
    pub row_groups: Vec<u64>,
    /// The tantivy files, in the order their bytes follow.
    pub files: Vec<(String, u64)>,
}

/// Packs the header and the files' bytes.
pub fn pack(header: &BlobHeader, contents: &[Vec<u8>]) -> Result<Vec<u8>, IndexError> {
    let head = serde_json::to_vec(header).map_err(|e| IndexError::Corrupt(e.to_string()))?;
    let len =
        u32::try_from(head.len()).map_err(|_| IndexError::Corrupt("header too large".into()))?;
    let total: usize = contents.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(12 + head.len() + total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&head);
    for c in contents {
        out.extend_from_slice(c);
    }
    Ok(out)
}

/// Reads the header of a blob of `total` bytes from its first bytes `prefix`, checking the total
/// length as [`unpack`] does, without the files' bytes (`verify` hashes a blob as a stream).
pub fn unpack_header(prefix: &[u8], total: u64) -> Result<BlobHeader, IndexError> {
    let bad = |why: &str| IndexError::Corrupt(why.to_owned());
    if prefix.len() < 12 || &prefix[..8] != MAGIC {
        return Err(bad("missing IRISIDX1 magic"));
    }
    let len = u32::from_le_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]) as usize;
    let head = prefix
        .get(12..12 + len)
        .ok_or_else(|| bad("truncated header"))?;
    let header: BlobHeader =
        serde_json::from_slice(head).map_err(|e| IndexError::Corrupt(e.to_string()))?;
    let want = header
        .files
        .iter()
        .try_fold((12 + len) as u64, |at, (_, size)| at.checked_add(*size))
        .ok_or_else(|| bad("file too large"))?;
    if want > total {
        return Err(bad("truncated file"));
    }
    if want < total {
        return Err(bad("trailing bytes"));
    }
    Ok(header)
}

/// Reads the header of a blob and the bytes of its files, in the order of `header.files`.
pub fn unpack(blob: &[u8]) -> Result<(BlobHeader, Vec<&[u8]>), IndexError> {
    let bad = |why: &str| IndexError::Corrupt(why.to_owned());
    if blob.len() < 12 || &blob[..8] != MAGIC {
        return Err(bad("missing IRISIDX1 magic"));
    }
    let len = u32::from_le_bytes([blob[8], blob[9], blob[10], blob[11]]) as usize;
    let head = blob
        .get(12..12 + len)
        .ok_or_else(|| bad("truncated header"))?;
    let header: BlobHeader =
        serde_json::from_slice(head).map_err(|e| IndexError::Corrupt(e.to_string()))?;
    let mut at = 12 + len;
    let mut files = Vec::with_capacity(header.files.len());
    for (_, size) in &header.files {
        let size = usize::try_from(*size).map_err(|_| bad("file too large"))?;
        let bytes = blob
            .get(at..at + size)
            .ok_or_else(|| bad("truncated file"))?;
        files.push(bytes);
        at += size;
    }
    if at != blob.len() {
        return Err(bad("trailing bytes"));
    }
    Ok((header, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_read_from_a_prefix_agrees_with_unpack() {
        let header = BlobHeader {
            partition_sha256: "ab".into(),
            rows: 3,
            row_groups: vec![3],
            files: vec![("a".into(), 4), ("b".into(), 2)],
        };
        let blob = pack(&header, &[b"aaaa".to_vec(), b"bb".to_vec()]).expect("pack");
        let total = blob.len() as u64;
        assert!(unpack_header(&blob[..20], total).is_err());
        assert_eq!(unpack_header(&blob, total).expect("header"), header);
        for cut in 0..blob.len() {
            assert_eq!(
                unpack_header(&blob, cut as u64).is_ok(),
                unpack(&blob[..cut]).is_ok()
            );
        }
        assert!(unpack_header(&blob, total + 1).is_err());
    }
}
