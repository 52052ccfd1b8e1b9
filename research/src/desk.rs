//! The research desk: runs a researcher's checked query over the labour-market tables and releases
//! only protected aggregates. The researcher's text never reaches the engine: Iris writes the SQL that
//! reads the rows (ids pseudonymised at once, each person's rows bounded, measures clamped), computes
//! every cell and margin, applies the project's rules, refuses differencing, and records what it
//! released.

use crate::answer::{Answer, Figure, Protection, TOTAL};
use crate::cells::{self, Cell, Key, Row};
use crate::differencing::History;
use crate::pseudonym::Pseudonymizer;
use crate::shape::{self, Aggregate, Condition, Output, Refusal, StatQuery};
use crate::suppress::{self, Rules, Suppressed};
use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use datafusion::sql::sqlparser::ast::BinaryOperator;
use iris_labour::ColumnRole;
use iris_query::{QueryEngine, QueryError};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;
use tokio::sync::Mutex;

/// Most rows one query may read (after its filter).
pub const MAX_ROWS: usize = 5_000_000;

/// Why no answer was released.
#[derive(Debug, thiserror::Error)]
pub enum ResearchError {
    /// The query's shape is not allowed.
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    /// The answer would disclose persons by difference with an earlier one.
    #[error(
        "refused (differencing): cell {label} holds the records of cell {earlier_label} released by query #{earlier_query} of this project, or is held by it, but for {records} record(s), fewer than the minimum of {min_cell}; together the two answers would disclose those records"
    )]
    Differencing {
        label: String,
        records: usize,
        min_cell: usize,
        earlier_label: String,
        earlier_query: u64,
    },
    #[error("unknown project `{0}`")]
    UnknownProject(String),
    #[error("{0}")]
    Query(#[from] QueryError),
    #[error("the query reads more than {MAX_ROWS} rows: narrow it with WHERE")]
    TooLarge,
    #[error("research store: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Internal(String),
}

impl ResearchError {
    /// Whether the researcher's query was refused (as opposed to a failure of Iris).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ResearchError::Refused(_)
                | ResearchError::Differencing { .. }
                | ResearchError::TooLarge
        )
    }
}

/// A research project as the desk applies it.
#[derive(Clone, Debug)]
pub struct ProjectRules {
    pub id: String,
    pub tables: Vec<String>,
    pub rules: Rules,
}

impl From<&iris_access::policies::Project> for ProjectRules {
    fn from(p: &iris_access::policies::Project) -> ProjectRules {
        ProjectRules {
            id: p.id.clone(),
            tables: p.tables.clone().unwrap_or_else(|| {
                iris_labour::TABLES
                    .iter()
                    .map(|t| t.name.to_owned())
                    .collect()
            }),
            rules: Rules {
                min_cell: p.min_cell as usize,
                dominance_n: p.dominance_n as usize,
                dominance_k: p.dominance_k,
                p_percent: p.p_percent,
                round_to: p.round_to,
            },
        }
    }
}

/// Answers researchers' queries over one data directory.
#[derive(Debug)]
pub struct ResearchDesk {
    engine: QueryEngine,
    data: PathBuf,
    /// One answer at a time per desk: the differencing check and the history update go together.
    history_lock: Mutex<()>,
}

impl ResearchDesk {
    /// A desk over the engine's store, keeping keys and histories under `data`.
    pub fn new(engine: QueryEngine, data: PathBuf) -> ResearchDesk {
        ResearchDesk {
            engine,
            data,
            history_lock: Mutex::new(()),
        }
    }

    /// Checks, runs and protects `sql` for `project`.
    pub async fn answer(&self, project: &ProjectRules, sql: &str) -> Result<Answer, ResearchError> {
        let q = shape::check(sql, &project.tables)?;
        let pseudo = Pseudonymizer::for_project(&self.data, &project.id)?;
        let measures: Vec<String> = {
            let mut m: Vec<String> = Vec::new();
            for o in &q.outputs {
                if let Output::Aggregate { agg, .. } = o
                    && let Some(x) = agg.measure()
                    && !m.iter().any(|y| y == x)
                {
                    m.push(x.to_owned());
                }
            }
            m
        };
        let enterprise = q.outputs.iter().find_map(|o| match o {
            Output::Aggregate {
                agg: Aggregate::Distinct(c),
                ..
            } if c != q.table.unit => Some(c.clone()),
            _ => None,
        });
        let started = Instant::now();
        let ctx = self.engine.context()?;
        let df = ctx
            .sql(&rows_sql(&q, &measures, enterprise.as_deref()))
            .await
            .map_err(QueryError::from)?;
        let batches = self.engine.collect(df, started).await?;
        let mut rows = Vec::new();
        for b in &batches {
            if rows.len() + b.num_rows() > MAX_ROWS {
                return Err(ResearchError::TooLarge);
            }
            read_rows(
                b,
                &q,
                measures.len(),
                enterprise.is_some(),
                &pseudo,
                &mut rows,
            )?;
        }
        let rows = cells::bound_rows(rows, q.table.max_rows_per_unit as usize);
        let dims = q.dimensions.len();
        let cells = cells::build(&rows, dims, measures.len());
        let sums: Vec<usize> = q
            .outputs
            .iter()
            .filter_map(|o| match o {
                Output::Aggregate { agg, .. } if agg.is_sum_like() => agg.measure(),
                _ => None,
            })
            .filter_map(|m| measures.iter().position(|x| x == m))
            .collect();
        let rules = &project.rules;
        let hidden = suppress::suppress(&cells, dims, &sums, rules);
        let (mut answer, shown) = release(&q, &project.id, &cells, &hidden, &measures, rules);
        // Differencing against everything the project was given before, then record this answer: the
        // cells shown with figures (a HAVING or LIMIT leaves some out; margins are always shown).
        let released: Vec<(String, Vec<u64>)> = shown
            .iter()
            .filter(|k| !hidden.contains_key(*k))
            .map(|k| (label(&q, k), cells[k].records.iter().copied().collect()))
            .collect();
        let _one_at_a_time = self.history_lock.lock().await;
        let mut history = History::open(&self.data, &project.id)?;
        if let Some(d) = history.check(&released, rules.min_cell) {
            return Err(ResearchError::Differencing {
                label: d.label,
                records: d.records,
                min_cell: rules.min_cell,
                earlier_label: d.earlier_label,
                earlier_query: d.earlier_query,
            });
        }
        answer.query = history.record(sql, released)?;
        Ok(answer)
    }
}

/// The SQL Iris runs: the rows behind the answer, with the dimensions, the person, the enterprise if
/// counted, and the clamped measures.
fn rows_sql(q: &StatQuery, measures: &[String], enterprise: Option<&str>) -> String {
    let t = q.table;
    let derived: String = t
        .derived
        .iter()
        .map(|(name, expr)| format!(", {expr} AS {name}"))
        .collect();
    let mut select: Vec<String> = q
        .dimensions
        .iter()
        .enumerate()
        .map(|(i, d)| format!("COALESCE(CAST({d} AS VARCHAR), '(none)') AS d{i}"))
        .collect();
    select.push(format!("CAST({} AS VARCHAR) AS u", t.unit));
    let key: Vec<String> = t
        .row_key
        .iter()
        .map(|c| format!("COALESCE(CAST({c} AS VARCHAR), '')"))
        .collect();
    select.push(format!(
        "concat_ws('|', '{}', {}) AS r",
        t.name,
        key.join(", ")
    ));
    if let Some(e) = enterprise {
        select.push(format!("CAST({e} AS VARCHAR) AS e"));
    }
    for (j, m) in measures.iter().enumerate() {
        let (lo, hi) = match t.column(m).map(|c| c.role) {
            Some(ColumnRole::Measure { lo, hi }) => (lo, hi),
            _ => (f64::MIN, f64::MAX),
        };
        select.push(format!(
            "LEAST(GREATEST(CAST({m} AS DOUBLE), {lo:?}), {hi:?}) AS m{j}"
        ));
    }
    let filter = q
        .filter
        .as_ref()
        .map(|f| format!(" WHERE {f}"))
        .unwrap_or_default();
    format!(
        "SELECT {} FROM (SELECT *{derived} FROM {}) AS t{filter}",
        select.join(", "),
        t.name
    )
}

fn read_rows(
    b: &arrow::record_batch::RecordBatch,
    q: &StatQuery,
    measures: usize,
    enterprise: bool,
    pseudo: &Pseudonymizer,
    rows: &mut Vec<Row>,
) -> Result<(), ResearchError> {
    let text = |name: &str| -> Result<arrow::array::ArrayRef, ResearchError> {
        let c = b
            .column_by_name(name)
            .ok_or_else(|| ResearchError::Internal(format!("column {name} missing")))?;
        arrow::compute::cast(c, &DataType::Utf8).map_err(|e| ResearchError::Internal(e.to_string()))
    };
    let dims: Vec<_> = (0..q.dimensions.len())
        .map(|i| text(&format!("d{i}")))
        .collect::<Result<_, _>>()?;
    let unit = text("u")?;
    let record = text("r")?;
    let employer = if enterprise { Some(text("e")?) } else { None };
    let ms: Vec<_> = (0..measures)
        .map(|j| {
            let c = b
                .column_by_name(&format!("m{j}"))
                .ok_or_else(|| ResearchError::Internal("measure missing".into()))?;
            arrow::compute::cast(c, &DataType::Float64)
                .map_err(|e| ResearchError::Internal(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    let dims: Vec<_> = dims.iter().map(|a| a.as_string::<i32>()).collect();
    let unit = unit.as_string::<i32>();
    let record = record.as_string::<i32>();
    let employer = employer.as_ref().map(|a| a.as_string::<i32>());
    let ms: Vec<_> = ms
        .iter()
        .map(|a| a.as_primitive::<arrow::datatypes::Float64Type>())
        .collect();
    for i in 0..b.num_rows() {
        if unit.is_null(i) {
            continue;
        }
        rows.push(Row {
            dims: dims.iter().map(|d| d.value(i).to_owned()).collect(),
            unit: pseudo.pseudonym_u64(unit.value(i)),
            record: pseudo.pseudonym_u64(record.value(i)),
            employer: employer
                .filter(|e| !e.is_null(i))
                .map(|e| pseudo.pseudonym_u64(e.value(i))),
            // A missing value contributes nothing.
            measures: ms
                .iter()
                .map(|m| if m.is_null(i) { 0.0 } else { m.value(i) })
                .collect(),
        });
    }
    Ok(())
}

/// The label of a cell: `region=BRU, quarter=Total`.
fn label(q: &StatQuery, key: &Key) -> String {
    if key.is_empty() {
        return "(all)".into();
    }
    q.dimensions
        .iter()
        .zip(key)
        .map(|(d, v)| format!("{d}={}", v.as_deref().unwrap_or(TOTAL)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The value of one aggregate over one cell.
fn figure(
    agg: &Aggregate,
    cell: &Cell,
    q: &StatQuery,
    measures: &[String],
    rules: &Rules,
) -> Figure {
    let m = |name: &str| measures.iter().position(|x| x == name).unwrap_or(0);
    let value = match agg {
        Aggregate::Rows => Some(cell.rows as f64),
        Aggregate::Distinct(c) if c == q.table.unit => Some(cell.persons() as f64),
        Aggregate::Distinct(_) => Some(cell.employers.len() as f64),
        Aggregate::Sum(x) => Some(cell.total(m(x))),
        Aggregate::Avg(x) => {
            let v = &cell.values[m(x)];
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        }
        Aggregate::Median(x) => cells::quantile(&cell.values[m(x)], 0.5),
        Aggregate::Quantile(x, p) => cells::quantile(&cell.values[m(x)], *p),
        Aggregate::Stddev(x) => cells::stddev(&cell.values[m(x)]),
    };
    match value {
        Some(v) if agg.is_count() => Figure::Number(suppress::round_count(v, rules.round_to)),
        Some(v) => Figure::Number(v),
        None => Figure::Empty,
    }
}

fn holds(c: &Condition, row: &[Figure]) -> bool {
    match c {
        Condition::And(a, b) => holds(a, row) && holds(b, row),
        Condition::Or(a, b) => holds(a, row) || holds(b, row),
        Condition::Not(a) => !holds(a, row),
        Condition::Compare { column, op, value } => {
            let Figure::Number(x) = row[*column] else {
                return false;
            };
            match op {
                BinaryOperator::Eq => x == *value,
                BinaryOperator::NotEq => x != *value,
                BinaryOperator::Lt => x < *value,
                BinaryOperator::LtEq => x <= *value,
                BinaryOperator::Gt => x > *value,
                BinaryOperator::GtEq => x >= *value,
                _ => false,
            }
        }
    }
}

/// Builds the released answer: cells (HAVING, ORDER BY and LIMIT applied to released figures;
/// suppressed cells always shown, flagged), then the margins. Returns it with the keys of its rows.
fn release(
    q: &StatQuery,
    project: &str,
    cells: &BTreeMap<Key, Cell>,
    hidden: &BTreeMap<Key, Suppressed>,
    measures: &[String],
    rules: &Rules,
) -> (Answer, Vec<Key>) {
    let mut body: Vec<(Key, Vec<Figure>)> = Vec::new();
    let mut margins: Vec<(Key, Vec<Figure>)> = Vec::new();
    for (key, cell) in cells {
        let suppressed = hidden.contains_key(key);
        let mut d = 0;
        let row: Vec<Figure> = q
            .outputs
            .iter()
            .map(|o| match o {
                Output::Dimension(name) => {
                    let i = q.dimensions.iter().position(|x| x == name).unwrap_or(d);
                    d += 1;
                    Figure::Text(key[i].clone().unwrap_or_else(|| TOTAL.into()))
                }
                Output::Aggregate { .. } if suppressed => Figure::Confidential,
                Output::Aggregate { agg, .. } => figure(agg, cell, q, measures, rules),
            })
            .collect();
        if key.iter().all(Option::is_some) {
            if suppressed || q.having.as_ref().is_none_or(|h| holds(h, &row)) {
                body.push((key.clone(), row));
            }
        } else {
            margins.push((key.clone(), row));
        }
    }
    for &(column, desc) in q.order_by.iter().rev() {
        body.sort_by(|a, b| {
            let (x, y) = (&a.1[column], &b.1[column]);
            let o = match (x, y) {
                (Figure::Number(x), Figure::Number(y)) => x.total_cmp(y),
                (Figure::Text(x), Figure::Text(y)) => x.cmp(y),
                // Suppressed and empty figures sort last either way.
                (Figure::Number(_) | Figure::Text(_), _) => return std::cmp::Ordering::Less,
                (_, Figure::Number(_) | Figure::Text(_)) => return std::cmp::Ordering::Greater,
                _ => std::cmp::Ordering::Equal,
            };
            if desc { o.reverse() } else { o }
        });
    }
    if let Some(n) = q.limit {
        body.truncate(n);
    }
    let primary = hidden
        .values()
        .filter(|s| **s != Suppressed::Secondary)
        .count();
    let secondary = hidden.len() - primary;
    let margin: Vec<bool> = body
        .iter()
        .map(|_| false)
        .chain(margins.iter().map(|_| true))
        .collect();
    let keys = body
        .iter()
        .chain(&margins)
        .map(|(k, _)| k.clone())
        .collect();
    let answer = Answer {
        project: project.to_owned(),
        table: q.table.name.to_owned(),
        columns: q.outputs.iter().map(|o| o.name().to_owned()).collect(),
        dimension: q
            .outputs
            .iter()
            .map(|o| matches!(o, Output::Dimension(_)))
            .collect(),
        rows: body.into_iter().chain(margins).map(|(_, r)| r).collect(),
        margin,
        protection: Protection {
            primary,
            secondary,
            min_cell: rules.min_cell,
            dominance: format!("n={}, k={} %", rules.dominance_n, rules.dominance_k),
            p_percent: rules.p_percent,
            round_to: rules.round_to,
        },
        query: 0,
    };
    (answer, keys)
}
