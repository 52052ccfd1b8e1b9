//! Delimited exports (CSV, semicolon-separated legacy files) described by a TOML mapping file.
//!
//! ```toml
//! description = "Portal CSV export"
//! delimiter = ","                  # one character
//! header = true                    # first line names the columns
//! timestamp_format = "%d/%m/%Y %H:%M:%S"   # chrono format, or "rfc3339"
//! utc_offset = "+01:00"            # for timestamps written without an offset
//! ignore = ["RowId"]               # columns known to carry no content, dropped
//! digits_only = ["subject_id"]     # strip dots, dashes and spaces (85.07.30-033.28)
//! [fields]                         # schema field = column name (or 1-based number without header)
//! ts = "Date"
//! [constants]                      # schema field = value for every record
//! source = "portal"
//! [codes.operation]                # code in the file = schema value
//! R = "consult"
//! ```
//! A column that is neither mapped nor ignored stops the import: it might carry content.

use super::{FormatError, Refused};
use crate::validate::{FIELDS, RawEvent};
use chrono::{FixedOffset, NaiveDateTime, SecondsFormat, TimeZone};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    #[serde(default)]
    description: String,
    #[serde(default = "comma")]
    delimiter: String,
    #[serde(default = "yes")]
    header: bool,
    #[serde(default = "rfc3339")]
    timestamp_format: String,
    #[serde(default)]
    utc_offset: Option<String>,
    #[serde(default)]
    ignore: Vec<String>,
    #[serde(default)]
    digits_only: Vec<String>,
    #[serde(default)]
    fields: BTreeMap<String, toml::Value>,
    #[serde(default)]
    constants: BTreeMap<String, toml::Value>,
    #[serde(default)]
    codes: BTreeMap<String, BTreeMap<String, String>>,
}

fn comma() -> String {
    ",".into()
}
fn yes() -> bool {
    true
}
fn rfc3339() -> String {
    "rfc3339".into()
}

/// Where a schema field's value comes from.
#[derive(Debug, Clone)]
enum Origin {
    Column(ColumnRef),
    Constant(String),
}

#[derive(Debug, Clone)]
enum ColumnRef {
    Name(String),
    Index(usize),
}

/// A parsed, checked mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// What the mapping is for.
    pub description: String,
    delimiter: u8,
    header: bool,
    timestamp_format: Option<String>,
    offset: FixedOffset,
    ignore: Vec<String>,
    digits_only: Vec<String>,
    fields: Vec<(usize, Origin)>,
    codes: BTreeMap<String, BTreeMap<String, String>>,
}

impl Mapping {
    /// Parses and checks a mapping file's text.
    pub fn parse(text: &str) -> Result<Mapping, String> {
        let file: MappingFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let delimiter = match file.delimiter.as_bytes() {
            [d] => *d,
            b"\\t" => b'\t',
            _ => {
                return Err(format!(
                    "delimiter must be one character, not `{}`",
                    file.delimiter
                ));
            }
        };
        let offset = match &file.utc_offset {
            None => FixedOffset::east_opt(0).expect("zero offset"),
            Some(s) => s
                .parse::<FixedOffset>()
                .map_err(|_| format!("utc_offset `{s}` is not like +01:00"))?,
        };
        let field_index = |name: &str| {
            FIELDS.iter().position(|f| *f == name).ok_or_else(|| {
                format!(
                    "`{name}` is not a field of the audit schema (fields: {})",
                    FIELDS.join(", ")
                )
            })
        };
        let mut fields = Vec::new();
        for (name, v) in &file.fields {
            let col = match v {
                toml::Value::String(s) if file.header => ColumnRef::Name(s.clone()),
                toml::Value::Integer(i) if *i >= 1 => ColumnRef::Index((*i - 1) as usize),
                toml::Value::String(s) => match s.parse::<usize>() {
                    Ok(i) if i >= 1 => ColumnRef::Index(i - 1),
                    _ => {
                        return Err(format!(
                            "fields.{name}: without a header, give the column number (1-based)"
                        ));
                    }
                },
                other => {
                    return Err(format!(
                        "fields.{name}: expected a column name or number, found a {}",
                        other.type_str()
                    ));
                }
            };
            fields.push((field_index(name)?, Origin::Column(col)));
        }
        for (name, v) in &file.constants {
            let text = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                other => {
                    return Err(format!(
                        "constants.{name}: expected text, found a {}",
                        other.type_str()
                    ));
                }
            };
            let idx = field_index(name)?;
            if fields.iter().any(|(i, _)| *i == idx) {
                return Err(format!(
                    "`{name}` is both mapped to a column and given as a constant"
                ));
            }
            fields.push((idx, Origin::Constant(text)));
        }
        for name in file.codes.keys().chain(file.digits_only.iter()) {
            field_index(name)?;
        }
        let timestamp_format =
            (file.timestamp_format != "rfc3339").then_some(file.timestamp_format);
        Ok(Mapping {
            description: file.description,
            delimiter,
            header: file.header,
            timestamp_format,
            offset,
            ignore: file.ignore,
            digits_only: file.digits_only,
            fields,
            codes: file.codes,
        })
    }

    /// Reads every row of a delimited file through the mapping.
    pub fn read(
        &self,
        input: impl Read,
        mut f: impl FnMut(u64, Result<RawEvent, Refused>),
    ) -> Result<(), FormatError> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .has_headers(self.header)
            .flexible(true)
            .from_reader(input);
        // Resolve column names to positions once, and refuse unmapped columns (they might carry content).
        let mut columns: Vec<(usize, ResolvedOrigin)> = Vec::new();
        let width;
        if self.header {
            let headers = reader
                .headers()
                .map_err(|e| FormatError::File(format!("header: {e}")))?
                .clone();
            let names: Vec<&str> = headers.iter().map(str::trim).collect();
            for name in &names {
                let mapped = self
                    .fields
                    .iter()
                    .any(|(_, o)| matches!(o, Origin::Column(ColumnRef::Name(n)) if n == name));
                if !mapped && !self.ignore.iter().any(|i| i == name) {
                    return Err(FormatError::File(format!(
                        "column `{name}` is not mapped to the audit schema: content is never logged \
                         (map it under [fields], or list it in `ignore` if it carries no content)"
                    )));
                }
            }
            width = names.len();
            for (idx, origin) in &self.fields {
                let resolved = match origin {
                    Origin::Constant(c) => ResolvedOrigin::Constant(c.clone()),
                    Origin::Column(ColumnRef::Index(i)) => ResolvedOrigin::Column(*i),
                    Origin::Column(ColumnRef::Name(n)) => match names.iter().position(|h| h == n) {
                        Some(i) => ResolvedOrigin::Column(i),
                        None => {
                            return Err(FormatError::File(format!(
                                "the mapping expects a column `{n}`, which the file lacks"
                            )));
                        }
                    },
                };
                columns.push((*idx, resolved));
            }
        } else {
            for (idx, origin) in &self.fields {
                let resolved = match origin {
                    Origin::Constant(c) => ResolvedOrigin::Constant(c.clone()),
                    Origin::Column(ColumnRef::Index(i)) => ResolvedOrigin::Column(*i),
                    Origin::Column(ColumnRef::Name(n)) => {
                        ResolvedOrigin::Column(n.parse::<usize>().unwrap_or(1).saturating_sub(1))
                    }
                };
                columns.push((*idx, resolved));
            }
            let mapped = columns
                .iter()
                .filter(|(_, o)| matches!(o, ResolvedOrigin::Column(_)))
                .count();
            width = mapped + self.ignore.len();
        }
        let mut record = csv::StringRecord::new();
        let mut n = 0u64;
        loop {
            match reader.read_record(&mut record) {
                Ok(false) => return Ok(()),
                Ok(true) => {
                    n += 1;
                    f(n, self.row(&record, &columns, width));
                }
                Err(e) => {
                    n += 1;
                    let reason = format!("unreadable row: {e}");
                    f(
                        n,
                        Err(Refused {
                            reason,
                            source: None,
                            source_seq: None,
                        }),
                    );
                    if e.is_io_error() {
                        return Err(FormatError::File(e.to_string()));
                    }
                }
            }
        }
    }

    /// Checks that every mapped field names its source by name (a record of named values, such as
    /// an OTLP log record, has no column numbers).
    pub fn check_named(&self) -> Result<(), String> {
        match self.fields.iter().find_map(|(idx, o)| match o {
            Origin::Column(ColumnRef::Index(_)) => Some(FIELDS[*idx]),
            _ => None,
        }) {
            Some(field) => Err(format!(
                "fields.{field}: name the attribute (a column number means nothing here)"
            )),
            None => Ok(()),
        }
    }

    /// Maps one record of named values (an OTLP log record's attributes and parts) through the
    /// mapping: the same codes, digit stripping, timestamp format and checks as a delimited row.
    /// Each name in `checked` must be mapped or ignored, or the record is refused: it might carry
    /// content. Other names of `values` (descriptions of the emitter) are read only when mapped.
    pub fn map_named<'a>(
        &self,
        values: &BTreeMap<String, String>,
        checked: impl IntoIterator<Item = &'a str>,
    ) -> Result<RawEvent, Refused> {
        let mut record = csv::StringRecord::new();
        let mut columns = Vec::with_capacity(self.fields.len());
        for (idx, origin) in &self.fields {
            let resolved = match origin {
                Origin::Constant(c) => ResolvedOrigin::Constant(c.clone()),
                Origin::Column(ColumnRef::Name(n)) => {
                    record.push_field(values.get(n).map_or("", String::as_str));
                    ResolvedOrigin::Column(record.len() - 1)
                }
                // Refused when the mapping is loaded (`check_named`); read as absent here.
                Origin::Column(ColumnRef::Index(_)) => ResolvedOrigin::Constant(String::new()),
            };
            columns.push((*idx, resolved));
        }
        let mapped = self.row(&record, &columns, record.len());
        let is_mapped = |name: &str| {
            self.fields
                .iter()
                .any(|(_, o)| matches!(o, Origin::Column(ColumnRef::Name(n)) if n == name))
                || self.ignore.iter().any(|i| i == name)
        };
        match checked.into_iter().find(|name| !is_mapped(name)) {
            None => mapped,
            Some(name) => {
                let (source, source_seq) = match &mapped {
                    Ok(raw) => (raw.source.clone(), raw.source_seq),
                    Err(r) => (r.source.clone(), r.source_seq),
                };
                Err(Refused {
                    reason: format!(
                        "`{name}` is not mapped to the audit schema: content is never logged \
                         (map it under [fields], or list it in `ignore` if it carries no content)"
                    ),
                    source,
                    source_seq,
                })
            }
        }
    }

    fn row(
        &self,
        record: &csv::StringRecord,
        columns: &[(usize, ResolvedOrigin)],
        width: usize,
    ) -> Result<RawEvent, Refused> {
        let mut values: [Option<String>; 17] = Default::default();
        for (idx, origin) in columns {
            let v = match origin {
                ResolvedOrigin::Constant(c) => Some(c.clone()),
                ResolvedOrigin::Column(i) => record
                    .get(*i)
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty()),
            };
            values[*idx] = v;
        }
        let source = values[15].clone();
        let refuse = |reason: String, values: &[Option<String>; 17]| Refused {
            reason,
            source: source.clone(),
            source_seq: values[16].as_deref().and_then(|s| s.parse().ok()),
        };
        if record.len() != width {
            return Err(refuse(
                format!("expected {width} columns, found {}", record.len()),
                &values,
            ));
        }
        for (field, map) in &self.codes {
            let Some(i) = FIELDS.iter().position(|f| f == field) else {
                continue;
            };
            if let Some(v) = &values[i] {
                match map.get(v) {
                    Some(mapped) => values[i] = Some(mapped.clone()),
                    None => {
                        let known: Vec<&str> = map.keys().map(String::as_str).collect();
                        return Err(refuse(
                            format!(
                                "{field} code `{v}` is not in the mapping ({})",
                                known.join(", ")
                            ),
                            &values,
                        ));
                    }
                }
            }
        }
        for field in &self.digits_only {
            if let Some(i) = FIELDS.iter().position(|f| f == field)
                && let Some(v) = &mut values[i]
            {
                v.retain(|c| c.is_ascii_digit());
            }
        }
        if let (Some(fmt), Some(text)) = (&self.timestamp_format, &values[0]) {
            let naive = NaiveDateTime::parse_from_str(text, fmt).map_err(|_| {
                refuse(
                    format!("bad timestamp `{text}`: expected the format `{fmt}`"),
                    &values,
                )
            })?;
            let ts = self
                .offset
                .from_local_datetime(&naive)
                .single()
                .ok_or_else(|| refuse(format!("bad timestamp `{text}`"), &values))?;
            values[0] = Some(
                ts.with_timezone(&chrono::Utc)
                    .to_rfc3339_opts(SecondsFormat::Micros, true),
            );
        }
        let source_seq =
            match &values[16] {
                None => None,
                Some(s) => Some(s.parse::<u64>().map_err(|_| {
                    refuse(format!("source_seq `{s}` is not a whole number"), &values)
                })?),
            };
        let [
            ts,
            actor_id,
            actor_kind,
            actor_org,
            actor_role,
            subject_id,
            subject_kind,
            ticket,
            message_type,
            application,
            operation,
            result,
            error_code,
            channel,
            purpose,
            source,
            _,
        ] = values;
        Ok(RawEvent {
            ts,
            actor_id,
            actor_kind,
            actor_org,
            actor_role,
            subject_id,
            subject_kind,
            ticket,
            message_type,
            application,
            operation,
            result,
            error_code,
            channel,
            purpose,
            source,
            source_seq,
        })
    }
}

#[derive(Debug, Clone)]
enum ResolvedOrigin {
    Column(usize),
    Constant(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPPING: &str = r#"
delimiter = ";"
header = false
timestamp_format = "%d/%m/%Y %H:%M:%S"
utc_offset = "+01:00"
digits_only = ["subject_id"]
[fields]
ts = 1
actor_id = 2
subject_id = 3
operation = 4
source_seq = 5
[constants]
source = "legacy"
[codes.operation]
CONS = "consult"
"#;

    fn rows(input: &str) -> Vec<(u64, Result<RawEvent, Refused>)> {
        let m = Mapping::parse(MAPPING).expect("mapping");
        let mut out = Vec::new();
        m.read(input.as_bytes(), |n, r| out.push((n, r)))
            .expect("read");
        out
    }

    #[test]
    fn maps_columns_codes_dates_and_digits() {
        let out = rows("04/03/2025 10:11:12;u1;85.07.30-033.28;CONS;7\n");
        let raw = out[0].1.as_ref().expect("mapped");
        assert_eq!(raw.ts.as_deref(), Some("2025-03-04T09:11:12.000000Z"));
        assert_eq!(raw.subject_id.as_deref(), Some("85073003328"));
        assert_eq!(raw.operation.as_deref(), Some("consult"));
        assert_eq!(raw.source.as_deref(), Some("legacy"));
        assert_eq!(raw.source_seq, Some(7));
    }

    #[test]
    fn refuses_bad_rows_with_reasons() {
        let out = rows(
            "04/03/2025 10:11:12;u1;1;PEEK;8\n2025-03-04;u1;1;CONS;9\n04/03/2025 10:11:12;u1;1;CONS;10;extra\n",
        );
        let reasons: Vec<String> = out
            .into_iter()
            .map(|(_, r)| r.expect_err("refused").reason)
            .collect();
        assert!(
            reasons[0].contains("operation code `PEEK`"),
            "{}",
            reasons[0]
        );
        assert!(reasons[1].contains("bad timestamp"), "{}", reasons[1]);
        assert!(reasons[2].contains("expected 5 columns"), "{}", reasons[2]);
    }

    #[test]
    fn refuses_unmapped_columns_and_unknown_fields() {
        let m = Mapping::parse("[fields]\nts = \"When\"\n").expect("mapping");
        let err = m
            .read("When,Comment\nx,y\n".as_bytes(), |_, _| {})
            .expect_err("unmapped column");
        assert!(
            err.to_string().contains("column `Comment` is not mapped"),
            "{err}"
        );
        let err = Mapping::parse("[fields]\npayload = \"X\"\n").expect_err("unknown field");
        assert!(err.contains("not a field of the audit schema"), "{err}");
    }
}
