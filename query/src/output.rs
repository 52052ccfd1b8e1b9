//! Rendering answers: a text table, CSV or JSON.

use crate::engine::QueryError;
use datafusion::arrow::record_batch::RecordBatch;

/// How to print an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(OutputFormat::Table),
            "csv" => Ok(OutputFormat::Csv),
            "json" => Ok(OutputFormat::Json),
            other => Err(format!(
                "unknown output format `{other}` (table, csv or json)"
            )),
        }
    }
}

/// Renders batches in the chosen format.
pub fn render(batches: &[RecordBatch], format: OutputFormat) -> Result<String, QueryError> {
    match format {
        OutputFormat::Table => {
            Ok(datafusion::arrow::util::pretty::pretty_format_batches(batches)?.to_string())
        }
        OutputFormat::Csv => {
            let mut out = Vec::new();
            {
                let mut w = datafusion::arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut out);
                for b in batches {
                    w.write(b)?;
                }
            }
            String::from_utf8(out).map_err(|e| QueryError::Output(e.to_string()))
        }
        OutputFormat::Json => serde_json::to_string_pretty(&to_json_rows(batches)?)
            .map_err(|e| QueryError::Output(e.to_string())),
    }
}

/// The rows as a JSON array of objects (nulls explicit, timestamps as RFC 3339 strings).
pub fn to_json_rows(batches: &[RecordBatch]) -> Result<serde_json::Value, QueryError> {
    serde_json::from_slice(&json_array(batches)?).map_err(|e| QueryError::Output(e.to_string()))
}

/// The rows as the text of a JSON array of objects, written straight from the batches (what
/// [`to_json_rows`] holds, without building a value per field): for answers embedded as they are.
pub fn json_array(batches: &[RecordBatch]) -> Result<Vec<u8>, QueryError> {
    let mut buf = Vec::new();
    {
        let mut w = datafusion::arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, datafusion::arrow::json::writer::JsonArray>(&mut buf);
        for b in batches {
            w.write(b)?;
        }
        w.finish()?;
    }
    if buf.is_empty() {
        buf.extend_from_slice(b"[]");
    }
    Ok(buf)
}
