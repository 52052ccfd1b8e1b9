//! Writing one partition: events (or rejections) of one day and one source as a Parquet file.

use crate::error::StoreError;
use crate::schema::{events_file_schema, rejections_file_schema};
use arrow::array::{
    ArrayRef, RecordBatch, StringBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};
use iris_ingest::{Event, Rejection};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::sync::Arc;

/// Rows per row group: big enough for zstd and dictionaries, small enough for statistics to prune.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Writer settings: zstd, page-level statistics, bloom filters on the columns a trace looks up.
pub fn writer_properties(rows: usize) -> WriterProperties {
    let ndv = (rows as u64).max(16);
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by("iris".into());
    for col in ["subject_id", "actor_id", "ticket"] {
        let path = ColumnPath::from(col);
        b = b
            .set_column_bloom_filter_enabled(path.clone(), true)
            .set_column_bloom_filter_fpp(path.clone(), 0.01)
            .set_column_bloom_filter_max_ndv(path, ndv.min(ROW_GROUP_ROWS as u64));
    }
    b.build()
}

/// Builds the record batch of events (sorted by the caller).
pub fn events_batch(events: &[Event]) -> Result<RecordBatch, StoreError> {
    let n = events.len();
    let mut ts = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut strings: Vec<StringBuilder> = (0..14)
        .map(|_| StringBuilder::with_capacity(n, n * 12))
        .collect();
    let mut seq = UInt64Builder::with_capacity(n);
    for e in events {
        ts.append_value(e.ts);
        let cols: [Option<&str>; 14] = [
            Some(&e.actor_id),
            Some(e.actor_kind.as_str()),
            Some(&e.actor_org),
            e.actor_role.as_deref(),
            Some(&e.subject_id),
            Some(e.subject_kind.as_str()),
            Some(&e.ticket),
            Some(&e.message_type),
            Some(&e.application),
            Some(e.operation.as_str()),
            Some(e.result.as_str()),
            e.error_code.as_deref(),
            Some(&e.channel),
            e.purpose.as_deref(),
        ];
        for (b, v) in strings.iter_mut().zip(cols) {
            b.append_option(v);
        }
        seq.append_value(e.source_seq);
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(16);
    columns.push(Arc::new(ts.finish()));
    columns.extend(strings.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.push(Arc::new(seq.finish()));
    Ok(RecordBatch::try_new(events_file_schema(), columns)?)
}

/// Builds the record batch of rejections.
pub fn rejections_batch(rows: &[Rejection]) -> Result<RecordBatch, StoreError> {
    let mut at = TimestampMicrosecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
    let mut seq = UInt64Builder::with_capacity(rows.len());
    let mut line = UInt64Builder::with_capacity(rows.len());
    let mut reason = StringBuilder::new();
    for r in rows {
        at.append_value(r.received_at);
        seq.append_option(r.source_seq);
        line.append_value(r.line);
        reason.append_value(&r.reason);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(at.finish()),
        Arc::new(seq.finish()),
        Arc::new(line.finish()),
        Arc::new(reason.finish()),
    ];
    Ok(RecordBatch::try_new(rejections_file_schema(), columns)?)
}

/// Encodes a batch as a complete Parquet file in memory.
pub fn to_parquet(batch: &RecordBatch) -> Result<Vec<u8>, StoreError> {
    Ok(to_parquet_with_row_groups(batch)?.0)
}

/// Encodes a batch as a complete Parquet file in memory, with the row count of each row group.
pub fn to_parquet_with_row_groups(batch: &RecordBatch) -> Result<(Vec<u8>, Vec<u64>), StoreError> {
    encode(batch, writer_properties(batch.num_rows()))
}

/// Writer settings of compacted files. Sorted by `(subject_id, ts)`, their row-group and page
/// statistics already locate a subject, and the lookup index serves actors and tickets, so they carry
/// no bloom filters (which would cost ~1 byte per event and column).
pub fn compacted_writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        // Small pages: a subject's rows are contiguous, so a row selection from the index (or the page
        // statistics) decodes a few thousand rows instead of whole 1 MiB pages.
        .set_data_page_row_count_limit(COMPACTED_PAGE_ROWS)
        .set_created_by("iris".into())
        .build()
}

/// Rows per data page in compacted files.
pub const COMPACTED_PAGE_ROWS: usize = 4096;

/// Encodes a batch with the given settings, returning the bytes and the row count of each row group.
pub fn encode(
    batch: &RecordBatch,
    props: WriterProperties,
) -> Result<(Vec<u8>, Vec<u64>), StoreError> {
    let mut out = Vec::with_capacity(batch.num_rows() * 48 + 4096);
    let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(props))?;
    w.write(batch)?;
    let meta = w.close()?;
    let groups = meta
        .row_groups()
        .iter()
        .map(|g| g.num_rows().max(0) as u64)
        .collect();
    Ok((out, groups))
}
