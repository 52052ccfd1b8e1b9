//! Building and reading the index of one partition.

use crate::blob::{self, BlobHeader};
use crate::error::IndexError;
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use std::path::Path;
use tantivy::directory::RamDirectory;
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions};
use tantivy::{Directory, DocSet, Index, IndexReader, TERMINATED, TantivyDocument, Term};

/// The columns a lookup can use.
pub const INDEXED_COLUMNS: [&str; 3] = ["subject_id", "actor_id", "ticket"];

/// Memory the single-segment writer may use before it would flush; a partition is one segment.
const WRITER_BUDGET: usize = 64 << 20;

fn schema() -> (Schema, [Field; 3]) {
    // Whole identifiers, postings only: no positions, no norms, nothing stored.
    let opts = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_fieldnorms(false)
            .set_index_option(IndexRecordOption::Basic),
    );
    let mut b = Schema::builder();
    let fields = INDEXED_COLUMNS.map(|c| b.add_text_field(c, opts.clone()));
    (b.build(), fields)
}

/// Builds the index of a partition whose rows are `batches` in file order (with `row_groups`, the row
/// count of each Parquet row group), packed as one blob.
pub fn build_index(
    batches: &[RecordBatch],
    partition_sha256: &str,
    row_groups: Vec<u64>,
) -> Result<Vec<u8>, IndexError> {
    let (schema, fields) = schema();
    let dir = RamDirectory::create();
    let mut writer = Index::builder()
        .schema(schema)
        .single_segment_index_writer(dir.clone(), WRITER_BUDGET)?;
    let mut rows = 0u64;
    for batch in batches {
        let mut columns = Vec::with_capacity(3);
        for name in INDEXED_COLUMNS {
            let col = batch
                .column_by_name(name)
                .filter(|c| c.data_type() == &DataType::Utf8)
                .ok_or_else(|| IndexError::BadColumn(name.to_owned()))?;
            columns.push(col.as_string::<i32>());
        }
        for row in 0..batch.num_rows() {
            let mut doc = TantivyDocument::new();
            for (field, col) in fields.iter().zip(&columns) {
                if col.is_valid(row) {
                    doc.add_text(*field, col.value(row));
                }
            }
            // Every row gets a document, even an empty one, so document ids stay row numbers.
            writer.add_document(doc)?;
        }
        rows += batch.num_rows() as u64;
    }
    let index = writer.finalize()?;
    let metas = index.load_metas()?;
    let mut names: Vec<String> = metas
        .list_segment_files()
        .into_iter()
        .filter(|p| dir.exists(p).unwrap_or(false))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.push("meta.json".to_owned());
    let mut contents = Vec::with_capacity(names.len());
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let bytes = dir.atomic_read(Path::new(&name))?;
        files.push((name, bytes.len() as u64));
        contents.push(bytes);
    }
    let header = BlobHeader {
        partition_sha256: partition_sha256.to_owned(),
        rows,
        row_groups,
        files,
    };
    blob::pack(&header, &contents)
}

/// Runs `f`, turning a panic inside tantivy (on damaged bytes) into [`IndexError::Corrupt`].
fn guarded<T>(f: impl FnOnce() -> Result<T, IndexError>) -> Result<T, IndexError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(IndexError::Corrupt(format!(
                "the index reader failed: {why}"
            )))
        }
    }
}

/// An opened partition index.
pub struct PartitionIndex {
    header: BlobHeader,
    reader: IndexReader,
    fields: [Field; 3],
}

impl PartitionIndex {
    /// Opens a blob made by [`build_index`]. Never panics: a blob that makes the reader panic is
    /// reported as corrupt.
    pub fn open(bytes: &[u8]) -> Result<PartitionIndex, IndexError> {
        guarded(|| Self::open_unguarded(bytes))
    }

    fn open_unguarded(bytes: &[u8]) -> Result<PartitionIndex, IndexError> {
        let (header, contents) = blob::unpack(bytes)?;
        let dir = RamDirectory::create();
        for ((name, _), data) in header.files.iter().zip(contents) {
            dir.atomic_write(Path::new(name), data)
                .map_err(|e| IndexError::Corrupt(e.to_string()))?;
        }
        let index = Index::open(dir)?;
        let (_, fields) = schema();
        let reader = index.reader()?;
        let searcher = reader.searcher();
        if searcher.segment_readers().len() > 1 {
            return Err(IndexError::Corrupt("more than one segment".into()));
        }
        if searcher.num_docs() != header.rows
            || header.row_groups.iter().sum::<u64>() != header.rows
        {
            return Err(IndexError::Corrupt(format!(
                "{} documents for {} rows",
                searcher.num_docs(),
                header.rows
            )));
        }
        Ok(PartitionIndex {
            header,
            reader,
            fields,
        })
    }

    /// The blob's header: which partition digest it was built from and how many rows.
    pub fn header(&self) -> &BlobHeader {
        &self.header
    }

    /// The rows (in file order, ascending, unique) whose `column` equals one of `keys`. Never panics.
    pub fn rows_matching(&self, column: &str, keys: &[&str]) -> Result<Vec<u32>, IndexError> {
        guarded(|| self.rows_matching_unguarded(column, keys))
    }

    fn rows_matching_unguarded(&self, column: &str, keys: &[&str]) -> Result<Vec<u32>, IndexError> {
        let at = INDEXED_COLUMNS
            .iter()
            .position(|c| *c == column)
            .ok_or_else(|| IndexError::NotIndexed(column.to_owned()))?;
        let field = self.fields[at];
        let searcher = self.reader.searcher();
        let mut rows = Vec::new();
        for segment in searcher.segment_readers() {
            let inverted = segment.inverted_index(field)?;
            for key in keys {
                let term = Term::from_field_text(field, key);
                if let Some(mut postings) =
                    inverted.read_postings(&term, IndexRecordOption::Basic)?
                {
                    let mut doc = postings.doc();
                    while doc != TERMINATED {
                        rows.push(doc);
                        doc = postings.advance();
                    }
                }
            }
        }
        rows.sort_unstable();
        rows.dedup();
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;
    use arrow::datatypes::{Field as ArrowField, Schema as ArrowSchema};
    use std::sync::Arc;

    fn batch(rows: &[(&str, &str, &str)]) -> RecordBatch {
        let col = |i: usize| -> Arc<dyn Array> {
            Arc::new(StringArray::from(
                rows.iter()
                    .map(|r| match i {
                        0 => r.0,
                        1 => r.1,
                        _ => r.2,
                    })
                    .collect::<Vec<_>>(),
            ))
        };
        let schema = Arc::new(ArrowSchema::new(
            INDEXED_COLUMNS
                .iter()
                .map(|c| ArrowField::new(*c, DataType::Utf8, false))
                .collect::<Vec<_>>(),
        ));
        RecordBatch::try_new(schema, vec![col(0), col(1), col(2)]).expect("batch")
    }

    #[test]
    fn rows_are_found_across_batches_in_file_order() {
        let a = batch(&[("s1", "a1", "t1"), ("s2", "a1", "t2")]);
        let b = batch(&[("s1", "a2", "t3"), ("s3", "a1", "t1")]);
        let blob = build_index(&[a, b], "abc", vec![4]).expect("build");
        let idx = PartitionIndex::open(&blob).expect("open");
        assert_eq!(idx.header().rows, 4);
        assert_eq!(idx.header().partition_sha256, "abc");
        assert_eq!(idx.rows_matching("subject_id", &["s1"]).expect("q"), [0, 2]);
        assert_eq!(
            idx.rows_matching("actor_id", &["a1"]).expect("q"),
            [0, 1, 3]
        );
        assert_eq!(
            idx.rows_matching("ticket", &["t1", "t3", "nope"])
                .expect("q"),
            [0, 2, 3]
        );
        assert!(
            idx.rows_matching("subject_id", &["s"])
                .expect("q")
                .is_empty()
        );
        assert!(matches!(
            idx.rows_matching("purpose", &["x"]),
            Err(IndexError::NotIndexed(_))
        ));
    }

    #[test]
    fn a_damaged_blob_is_refused() {
        let blob = build_index(&[batch(&[("s1", "a1", "t1")])], "abc", vec![1]).expect("build");
        assert!(PartitionIndex::open(&blob[..blob.len() - 1]).is_err());
        assert!(PartitionIndex::open(b"not an index").is_err());
        let mut flipped = blob.clone();
        flipped[3] ^= 1;
        assert!(PartitionIndex::open(&flipped).is_err());
    }
}
