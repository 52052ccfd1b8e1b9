//! Arrow schemas of the stored files. `day` and `source` are Hive partition columns, not file columns.

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::{Arc, LazyLock};

/// Timestamp type of every stored time: microseconds, UTC.
pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

static EVENTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let s = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        Field::new("ts", ts_type(), false),
        s("actor_id", false),
        s("actor_kind", false),
        s("actor_org", false),
        s("actor_role", true),
        s("subject_id", false),
        s("subject_kind", false),
        s("ticket", false),
        s("message_type", false),
        s("application", false),
        s("operation", false),
        s("result", false),
        s("error_code", true),
        s("channel", false),
        s("purpose", true),
        Field::new("source_seq", DataType::UInt64, false),
    ]))
});

static REJECTIONS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("received_at", ts_type(), false),
        Field::new("source_seq", DataType::UInt64, true),
        Field::new("line", DataType::UInt64, false),
        Field::new("reason", DataType::Utf8, false),
    ]))
});

/// Columns of an event partition file.
pub fn events_file_schema() -> SchemaRef {
    EVENTS.clone()
}

static COMPACTED: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields: Vec<Field> = EVENTS.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(PARTITION_COLUMNS.map(|c| Field::new(c, DataType::Utf8, false)));
    Arc::new(Schema::new(fields))
});

/// Columns of a compacted event file: those of an event partition, then `day` and `source` (stored,
/// since a compacted file spans days and sources). The same names, types and order as the `events`
/// table, so both kinds of files answer one schema.
pub fn compacted_file_schema() -> SchemaRef {
    COMPACTED.clone()
}

/// Columns of a rejection-log partition file.
pub fn rejections_file_schema() -> SchemaRef {
    REJECTIONS.clone()
}

/// The Hive partition columns, in path order.
pub const PARTITION_COLUMNS: [&str; 2] = ["day", "source"];
