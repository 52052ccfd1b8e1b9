//! Imported labour-market records: a CSV file with a header naming the table's columns. Each row is
//! checked (identifiers with their check digits, codes against the code lists, numbers within range);
//! a bad row is reported with its line and reason and left out, the others become one Arrow batch per
//! quarter, ready to be sealed.

use crate::tables::{Check, LabourTable};
use arrow::array::{ArrayRef, Date32Builder, Float64Builder, Int32Builder, StringBuilder};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use iris_ingest::checkdigit::{is_valid_bce, is_valid_niss};
use std::collections::BTreeMap;
use std::io::Read;

/// Why a file could not be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum LabourError {
    #[error("{0}")]
    Header(String),
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// A row left out, with the reason.
#[derive(Clone, Debug, PartialEq)]
pub struct RejectedRow {
    /// Line in the file (the header is line 1).
    pub line: u64,
    pub reason: String,
}

/// The accepted rows by quarter, and the rejected ones.
#[derive(Debug, Default)]
pub struct Parsed {
    pub batches: Vec<(String, RecordBatch)>,
    pub accepted: u64,
    pub rejected: Vec<RejectedRow>,
}

/// Reads a CSV file of `table`.
pub fn parse_csv(table: &LabourTable, input: impl Read) -> Result<Parsed, LabourError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let header: Vec<String> = reader
        .headers()?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    // Where each table column is in the file.
    let mut at = Vec::with_capacity(table.columns.len());
    for c in table.columns {
        match header.iter().position(|h| h == c.name) {
            Some(i) => at.push(i),
            None => {
                return Err(LabourError::Header(format!(
                    "the header has no column `{}` (table {} needs: {})",
                    c.name,
                    table.name,
                    table
                        .columns
                        .iter()
                        .map(|c| c.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }
    if let Some(extra) = header.iter().find(|h| table.column(h).is_none()) {
        return Err(LabourError::Header(format!(
            "column `{extra}` is not part of table {}: labour records carry only the declared facts",
            table.name
        )));
    }
    let quarter_at = at[0];
    let mut by_quarter: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    let mut parsed = Parsed::default();
    for (i, row) in reader.records().enumerate() {
        let line = i as u64 + 2;
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                parsed.rejected.push(RejectedRow {
                    line,
                    reason: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let values: Vec<String> = at
            .iter()
            .map(|&i| row.get(i).unwrap_or("").trim().to_owned())
            .collect();
        let bad = table
            .columns
            .iter()
            .zip(&values)
            .find_map(|(c, v)| check(c.check, c.optional, v).err().map(|why| (c.name, why)));
        if let Some((column, why)) = bad {
            parsed.rejected.push(RejectedRow {
                line,
                reason: format!("column `{column}`: {why}"),
            });
            continue;
        }
        parsed.accepted += 1;
        let quarter = row.get(quarter_at).unwrap_or("").trim().to_owned();
        by_quarter.entry(quarter).or_default().push(values);
    }
    for (quarter, rows) in by_quarter {
        parsed.batches.push((quarter, to_batch(table, &rows)?));
    }
    Ok(parsed)
}

/// Checks one value.
fn check(check: Check, optional: bool, v: &str) -> Result<(), String> {
    if v.is_empty() {
        return if optional {
            Ok(())
        } else {
            Err("missing value".into())
        };
    }
    let ok = match check {
        Check::Quarter => iris_ingest::validate::is_quarter(v),
        Check::Niss => is_valid_niss(v),
        Check::Bce => is_valid_bce(v),
        Check::Code(list) => list.contains(&v),
        Check::Sector => crate::codes::is_sector(v),
        Check::Division => crate::codes::is_division(v),
        Check::JointCommittee => crate::codes::is_joint_committee(v),
        Check::Arrondissement => crate::codes::is_arrondissement(v),
        Check::Int { lo, hi } => v.parse::<i64>().is_ok_and(|n| (lo..=hi).contains(&n)),
        Check::Float { lo, hi } => v
            .parse::<f64>()
            .is_ok_and(|n| n.is_finite() && (lo..=hi).contains(&n)),
        Check::Date => NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok(),
    };
    if ok {
        return Ok(());
    }
    Err(match check {
        Check::Quarter => format!("`{v}` is not a quarter like 2025-Q1"),
        Check::Niss => format!("`{v}` is not a valid NISS (11 digits with check digits)"),
        Check::Bce => format!("`{v}` is not a valid BCE/KBO number (10 digits with check digits)"),
        Check::Int { lo, hi } => format!("`{v}` is not a whole number from {lo} to {hi}"),
        Check::Float { lo, hi } => format!("`{v}` is not a number from {lo} to {hi}"),
        Check::Date => format!("`{v}` is not a date YYYY-MM-DD"),
        _ => format!("`{v}` is not in the code list"),
    })
}

/// Days from 1970-01-01 (Arrow's Date32).
fn epoch_days(d: NaiveDate) -> i32 {
    (d - NaiveDate::default()).num_days() as i32
}

/// Builds the batch of checked rows (every value already passed [`check`]).
fn to_batch(table: &LabourTable, rows: &[Vec<String>]) -> Result<RecordBatch, LabourError> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(table.columns.len());
    for (j, c) in table.columns.iter().enumerate() {
        let values = rows
            .iter()
            .map(|r| r[j].as_str())
            .map(|v| (!v.is_empty()).then_some(v));
        let array: ArrayRef = match c.check {
            Check::Int { .. } => {
                let mut b = Int32Builder::with_capacity(rows.len());
                values.for_each(|v| b.append_option(v.and_then(|v| v.parse().ok())));
                std::sync::Arc::new(b.finish())
            }
            Check::Float { .. } => {
                let mut b = Float64Builder::with_capacity(rows.len());
                values.for_each(|v| b.append_option(v.and_then(|v| v.parse().ok())));
                std::sync::Arc::new(b.finish())
            }
            Check::Date => {
                let mut b = Date32Builder::with_capacity(rows.len());
                values.for_each(|v| {
                    b.append_option(
                        v.and_then(|v| NaiveDate::parse_from_str(v, "%Y-%m-%d").ok())
                            .map(epoch_days),
                    )
                });
                std::sync::Arc::new(b.finish())
            }
            _ => {
                let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 8);
                values.for_each(|v| b.append_option(v));
                std::sync::Arc::new(b.finish())
            }
        };
        columns.push(array);
    }
    Ok(RecordBatch::try_new(table.schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::POSITIONS;

    #[test]
    fn good_rows_become_batches_per_quarter_and_bad_rows_are_reported() {
        let csv = "quarter,person,position,region,arrondissement,gender,birth_year\n\
                   2025-Q1,85073003328,SAL,VLA,11000,F,1985\n\
                   2025-Q2,85073003328,UNE,VLA,11000,F,1985\n\
                   2025-Q2,85073003329,UNE,VLA,11000,F,1985\n\
                   2025-Q2,85073003328,XXX,VLA,11000,F,1985\n";
        let p = parse_csv(&POSITIONS, csv.as_bytes()).expect("parsed");
        assert_eq!(p.accepted, 2);
        assert_eq!(p.batches.len(), 2);
        assert_eq!(p.rejected.len(), 2);
        assert_eq!(p.rejected[0].line, 4);
        assert!(p.rejected[0].reason.contains("NISS"), "{:?}", p.rejected);
        assert!(
            p.rejected[1].reason.contains("code list"),
            "{:?}",
            p.rejected
        );
    }

    #[test]
    fn a_column_that_is_not_in_the_table_refuses_the_file() {
        let csv = "quarter,person,position,region,arrondissement,gender,birth_year,diagnosis\n";
        let e = parse_csv(&POSITIONS, csv.as_bytes()).expect_err("refused");
        assert!(e.to_string().contains("diagnosis"), "{e}");
        let csv = "quarter,person,position\n";
        let e = parse_csv(&POSITIONS, csv.as_bytes()).expect_err("refused");
        assert!(e.to_string().contains("region"), "{e}");
    }
}
