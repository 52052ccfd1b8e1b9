//! A released answer: the cells and margins with their figures, suppressed cells flagged `:c` (the
//! statistics offices' flag for confidential), in the formats a researcher takes away.

use arrow::array::{ArrayRef, Float64Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use serde::Serialize;
use std::sync::Arc;

/// The flag of a suppressed figure.
pub const CONFIDENTIAL: &str = ":c";
/// How a margin shows in a dimension column.
pub const TOTAL: &str = "Total";

/// One figure of the answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Figure {
    Text(String),
    Number(f64),
    /// Not released.
    Confidential,
    /// No value (e.g. a quantile of an empty set).
    Empty,
}

impl Figure {
    fn display(&self) -> String {
        match self {
            Figure::Text(t) => t.clone(),
            Figure::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{n:.0}"),
            // The same digits as the JSON answer: at most two decimals, no trailing zeros.
            Figure::Number(n) => format!("{}", (n * 100.0).round() / 100.0),
            Figure::Confidential => CONFIDENTIAL.into(),
            Figure::Empty => String::new(),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Figure::Text(t) => t.clone().into(),
            Figure::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => (*n as i64).into(),
            Figure::Number(n) => ((n * 100.0).round() / 100.0).into(),
            Figure::Confidential => CONFIDENTIAL.into(),
            Figure::Empty => serde_json::Value::Null,
        }
    }
}

/// What an answer cost and how its figures were protected.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Privacy {
    /// ρ spent by this query (0 when every figure came from an earlier release).
    pub rho_query: f64,
    /// ρ the project has spent, in all.
    pub rho_spent: f64,
    /// ρ the project has left.
    pub rho_left: f64,
    /// The project's budget.
    pub rho_total: f64,
    /// What the spending amounts to as (ε, δ)-DP.
    pub epsilon_spent: f64,
    pub delta: f64,
    /// Whether every figure was an earlier release, answered again.
    pub from_cache: bool,
    /// Cells under this many (noisy) persons are shown `:c`.
    pub min_cell: usize,
    /// Figures are rounded to a multiple of this.
    pub round_to: u32,
    /// The noise of each column (empty for dimensions).
    pub noise: Vec<String>,
    /// σ of each finest cell's noise, for the columns that are noisy counts or sums (`None` for
    /// dimensions, means and quantiles).
    pub sigma: Vec<Option<f64>>,
}

/// An answer as released.
#[derive(Clone, Debug)]
pub struct Answer {
    pub project: String,
    pub table: String,
    pub columns: Vec<String>,
    /// Which columns are dimensions.
    pub dimension: Vec<bool>,
    pub rows: Vec<Vec<Figure>>,
    /// Whether each row is a margin (some dimension is `Total`).
    pub margin: Vec<bool>,
    pub privacy: Privacy,
}

impl Answer {
    /// The answer as text: every figure shown, suppressed ones as `:c`.
    pub fn text_batch(&self) -> Result<RecordBatch, arrow::error::ArrowError> {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| Field::new(c, DataType::Utf8, true))
            .collect();
        let columns: Vec<ArrayRef> = (0..self.columns.len())
            .map(|j| {
                let mut b = StringBuilder::new();
                for r in &self.rows {
                    b.append_value(r[j].display());
                }
                Arc::new(b.finish()) as ArrayRef
            })
            .collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
    }

    /// The answer typed for Parquet: figures as numbers (null when suppressed) and a `flag` column
    /// (`c` for a suppressed cell).
    pub fn typed_batch(&self) -> Result<RecordBatch, arrow::error::ArrowError> {
        let mut fields = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        for (j, name) in self.columns.iter().enumerate() {
            if self.dimension[j] {
                let mut b = StringBuilder::new();
                self.rows
                    .iter()
                    .for_each(|r| b.append_value(r[j].display()));
                fields.push(Field::new(name, DataType::Utf8, false));
                columns.push(Arc::new(b.finish()));
            } else {
                let mut b = Float64Builder::new();
                for r in &self.rows {
                    b.append_option(match r[j] {
                        Figure::Number(n) => Some(n),
                        _ => None,
                    });
                }
                fields.push(Field::new(name, DataType::Float64, true));
                columns.push(Arc::new(b.finish()));
            }
        }
        let mut flag = StringBuilder::new();
        for r in &self.rows {
            flag.append_value(if r.contains(&Figure::Confidential) {
                "c"
            } else {
                ""
            });
        }
        fields.push(Field::new("flag", DataType::Utf8, false));
        columns.push(Arc::new(flag.finish()));
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
    }

    /// The answer as JSON: columns, rows (suppressed figures as `":c"`), and what the rules did.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "project": self.project,
            "table": self.table,
            "columns": self.columns,
            "rows": self.rows.iter().map(|r| r.iter().map(Figure::json).collect::<Vec<_>>()).collect::<Vec<_>>(),
            "margin": self.margin,
            "privacy": self.privacy,
            "legend": LEGEND,
        })
    }

    /// Lines under a printed answer: that the figures are noisy, what this cost, what is left.
    pub fn footnote(&self) -> String {
        let p = &self.privacy;
        let mut out = format!(
            "{LEGEND}\nprivacy budget: this query spent ρ = {:.4}{}; the project has spent ρ = {:.4} of {:.4} (ε = {:.2} at δ = {:e}), ρ = {:.4} left\n",
            p.rho_query,
            if p.from_cache {
                " (every figure was released before: answered again, nothing spent)"
            } else {
                ""
            },
            p.rho_spent,
            p.rho_total,
            p.epsilon_spent,
            p.delta,
            p.rho_left,
        );
        for (c, n) in self.columns.iter().zip(&p.noise) {
            if !n.is_empty() {
                out.push_str(&format!("  {c}: {n}\n"));
            }
        }
        out
    }
}

/// What every released answer says of its figures.
pub const LEGEND: &str = "Figures are differentially private: noise was added to each, none is exact. :c = fewer persons than the project's threshold (on the noisy count); Total = margin over that dimension (the sum of its noisy cells); figures rounded to the project's base.";

/// How an answer is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerFormat {
    /// A text table with the footnote.
    Table,
    Csv,
    Json,
    /// Figures as numbers (null when suppressed) and a `flag` column.
    Parquet,
}

impl std::str::FromStr for AnswerFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(AnswerFormat::Table),
            "csv" => Ok(AnswerFormat::Csv),
            "json" => Ok(AnswerFormat::Json),
            "parquet" => Ok(AnswerFormat::Parquet),
            other => Err(format!(
                "unknown format `{other}` (table, csv, json or parquet)"
            )),
        }
    }
}

impl AnswerFormat {
    /// The media type of the rendered bytes.
    pub fn content_type(self) -> &'static str {
        match self {
            AnswerFormat::Table => "text/plain; charset=utf-8",
            AnswerFormat::Csv => "text/csv; charset=utf-8",
            AnswerFormat::Json => "application/json",
            AnswerFormat::Parquet => "application/vnd.apache.parquet",
        }
    }
}

impl Answer {
    /// The answer in `format`.
    pub fn render(&self, format: AnswerFormat) -> Result<Vec<u8>, String> {
        match format {
            AnswerFormat::Json => {
                serde_json::to_vec_pretty(&self.to_json()).map_err(|e| e.to_string())
            }
            AnswerFormat::Parquet => {
                let batch = self.typed_batch().map_err(|e| e.to_string())?;
                iris_store::partition::to_parquet(&batch).map_err(|e| e.to_string())
            }
            AnswerFormat::Csv => {
                let batch = self.text_batch().map_err(|e| e.to_string())?;
                let mut out = Vec::new();
                {
                    let mut w = arrow::csv::WriterBuilder::new()
                        .with_header(true)
                        .build(&mut out);
                    w.write(&batch).map_err(|e| e.to_string())?;
                }
                Ok(out)
            }
            AnswerFormat::Table => {
                let batch = self.text_batch().map_err(|e| e.to_string())?;
                let table = arrow::util::pretty::pretty_format_batches(&[batch])
                    .map_err(|e| e.to_string())?;
                Ok(format!("{table}\n{}", self.footnote()).into_bytes())
            }
        }
    }
}
