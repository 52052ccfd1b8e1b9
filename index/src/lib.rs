//! The lookup index of one sealed partition: for `subject_id`, `actor_id` and `ticket`, which rows of the
//! Parquet file hold a value. Built with tantivy when the partition is sealed, stored beside it as one blob,
//! and derived data: it can always be rebuilt from the partition (`iris reindex`).
//!
//! One tantivy document per row, added in file order into a single segment, so a document id *is* the
//! row number in the file: a lookup yields row numbers that become Parquet row selections directly.

mod blob;
mod error;
mod partition_index;

pub use blob::BlobHeader;

/// Reads only the header of an index blob: which partition digest it was built from.
pub fn read_header(blob: &[u8]) -> Result<BlobHeader, IndexError> {
    blob::unpack(blob).map(|(header, _)| header)
}
/// The header of a blob of `total` bytes, read from its first bytes (see [`blob::unpack_header`]).
pub fn read_header_prefix(prefix: &[u8], total: u64) -> Result<BlobHeader, IndexError> {
    blob::unpack_header(prefix, total)
}
pub use error::IndexError;
pub use partition_index::{INDEXED_COLUMNS, PartitionIndex, build_index};
