//! The research desk: runs a researcher's checked query over the labour-market tables and releases
//! only differentially private figures, paid from the project's privacy budget.
//!
//! The path of every answer, free query or report alike:
//! 1. [`shape::check`] turns the text into a [`StatQuery`] (refusals depend on the text alone);
//! 2. the cells are every combination of the dimensions' public values ([`domain`]);
//! 3. Iris writes the SQL that reads the rows (ids pseudonymised at once, measures clamped), bounds
//!    each person's rows ([`cells::build`]) and computes the exact cells;
//! 4. each figure set (one aggregate over those cells) already released on this data version is
//!    taken from the project's [`cache`]; the others are paid for in one [`Ledger::spend`] — durable
//!    before any noise is drawn — then drawn by OpenDP ([`mechanism`]) and cached;
//! 5. margins, means, thresholds (`:c`), rounding, HAVING, ORDER BY and LIMIT are computed from the
//!    noisy figures only: post-processing, which spends nothing.

use crate::answer::{Answer, Figure, Privacy, TOTAL};
use crate::budget::{BudgetError, BudgetStatus, Ledger};
use crate::cache::{Cache, Released};
use crate::cells::{self, Bounds, Exact, Grid, Row};
use crate::domain;
use crate::mechanism::{self, MechanismError};
use crate::pseudonym::Pseudonymizer;
use crate::shape::{self, Aggregate, Condition, Output, Refusal, StatQuery};
use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use datafusion::sql::sqlparser::ast::BinaryOperator;
use iris_labour::{ColumnRole, LabourTable};
use iris_query::{QueryEngine, QueryError};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Mutex;

/// Most cells (finest combinations of the dimensions' public values) one answer may have.
pub const MAX_CELLS: usize = 5_000;
/// Candidates of a quantile: this many steps between a measure's clamps.
pub const QUANTILE_STEPS: usize = 600;
/// Default budget of a project, ρ (zCDP): see the README's "For researchers".
pub const DEFAULT_BUDGET_RHO: f64 = 1.0;
/// Default ρ of one figure set (one aggregate over the cells of one answer).
pub const DEFAULT_RHO_PER_FIGURE: f64 = 0.01;
/// The reports' own project: released once per data version, served to everyone.
pub const REPORTS_PROJECT: &str = "_reports";

/// Why no answer was released. No message carries a figure of the data.
#[derive(Debug, thiserror::Error)]
pub enum ResearchError {
    /// The query's shape is not allowed (decided from its text alone).
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    /// The budget does not hold the query, or its ledger is damaged.
    #[error("{0}")]
    Budget(#[from] BudgetError),
    #[error("unknown project `{0}`")]
    UnknownProject(String),
    /// The engine failed: the cause goes to the operator's log, not to the researcher, since an
    /// engine error could depend on the data.
    #[error("the query could not be answered (the cause is in the server's log)")]
    Query(#[source] QueryError),
    #[error("{0}")]
    Mechanism(#[from] MechanismError),
    #[error("research store: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Internal(String),
}

impl From<QueryError> for ResearchError {
    fn from(e: QueryError) -> ResearchError {
        tracing::warn!("research query failed: {e}");
        ResearchError::Query(e)
    }
}

impl ResearchError {
    /// Whether the researcher's query was refused (as opposed to a failure of Iris).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ResearchError::Refused(_) | ResearchError::Budget(BudgetError::Exhausted { .. })
        )
    }
}

/// A research project as the desk applies it.
#[derive(Clone, Debug)]
pub struct ProjectRules {
    pub id: String,
    pub tables: Vec<String>,
    /// Cells whose noisy count of persons is under this are shown `:c` (presentation only).
    pub min_cell: usize,
    /// Every released figure is rounded to a multiple of this (1: whole numbers, 2 decimals for
    /// means and quantiles).
    pub round_to: u32,
    /// The project's whole budget, ρ.
    pub budget_rho: f64,
    /// ρ of one figure set.
    pub rho_per_figure: f64,
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
            min_cell: p.min_cell as usize,
            round_to: p.round_to,
            budget_rho: p.budget_rho.unwrap_or(DEFAULT_BUDGET_RHO),
            rho_per_figure: p.rho_per_figure.unwrap_or(DEFAULT_RHO_PER_FIGURE),
        }
    }
}

impl ProjectRules {
    /// The rules of the published reports: their own budget (`[reports]` of `projects.toml`, or
    /// ρ = 4 at 0.02 a figure set), every table, cells of 10.
    pub fn reports(budget: &iris_access::policies::ReportsBudget) -> ProjectRules {
        ProjectRules {
            id: REPORTS_PROJECT.into(),
            tables: iris_labour::TABLES
                .iter()
                .map(|t| t.name.to_owned())
                .collect(),
            min_cell: 10,
            round_to: 1,
            budget_rho: budget.budget_rho.unwrap_or(4.0),
            rho_per_figure: budget.rho_per_figure.unwrap_or(0.02),
        }
    }
}

/// One aggregate over the finest cells: the unit the budget pays for and the cache keeps.
#[derive(Clone, Debug, PartialEq)]
enum FigureSet {
    Rows,
    Persons,
    Employers,
    Sum(usize),
    Quantile(usize, f64),
}

impl FigureSet {
    fn name(&self, measures: &[String]) -> String {
        match self {
            FigureSet::Rows => "rows".into(),
            FigureSet::Persons => "persons".into(),
            FigureSet::Employers => "employers".into(),
            FigureSet::Sum(m) => format!("sum({})", measures[*m]),
            FigureSet::Quantile(m, p) => format!("quantile({}, {p})", measures[*m]),
        }
    }
}

/// The table's data version and the quarters it holds.
struct Version {
    digest: String,
    quarters: Vec<String>,
}

/// Answers researchers' queries over one data directory.
#[derive(Debug)]
pub struct ResearchDesk {
    engine: QueryEngine,
    data: PathBuf,
    /// One release at a time per project: the cache look-up, the charge, the read and the cache write
    /// go together (the ledger's file lock also serialises desks of other processes); one project's
    /// long query never holds up another's.
    locks: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl ResearchDesk {
    /// A desk over the engine's store, keeping keys, ledgers and releases under `data`.
    pub fn new(engine: QueryEngine, data: PathBuf) -> ResearchDesk {
        ResearchDesk {
            engine,
            data,
            locks: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// What `project` has spent.
    pub fn budget(&self, project: &ProjectRules) -> Result<BudgetStatus, ResearchError> {
        Ok(Ledger::new(&self.data, &project.id, project.budget_rho).status()?)
    }

    async fn version(&self, table: &LabourTable) -> Result<Version, ResearchError> {
        let manifest = iris_store::manifest::Manifest::read(self.engine.location())
            .await
            .map_err(|e| ResearchError::Internal(format!("reading the chain: {e}")))?;
        let prefix = format!("tables/{}/", table.name);
        let mut h = Sha256::new();
        let mut paths = Vec::new();
        for (path, f) in manifest.files.range(prefix.clone()..) {
            if !path.starts_with(&prefix) {
                break;
            }
            h.update(path.as_bytes());
            h.update(b"\0");
            h.update(f.sha256.as_bytes());
            h.update(b"\n");
            paths.push(path.as_str());
        }
        Ok(Version {
            digest: hex::encode(h.finalize()),
            quarters: domain::quarters_of(paths.into_iter()),
        })
    }

    fn lock_of(&self, project: &str) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(project.to_owned()).or_default().clone()
    }

    /// Checks, runs and releases `sql` for `project`.
    pub async fn answer(&self, project: &ProjectRules, sql: &str) -> Result<Answer, ResearchError> {
        // The engine's statement guard first (size, expressions, depth, on a thread of its own with a
        // large stack): what passes it can be walked by the shape check below on any thread. EXPLAIN
        // is left to the shape check, which refuses it with the rest.
        iris_query::statement::check(sql, &self.engine.limits().statement, true)
            .await
            .map_err(|e| Refusal(e.to_string()))?;
        let mut q = shape::check(sql, &project.tables)?;
        // One order for the cells whatever the GROUP BY's order, so both share a release.
        q.dimensions.sort();
        let measures = measures_of(&q);
        let version = self.version(q.table).await?;
        let domains: Vec<Vec<String>> = q
            .dimensions
            .iter()
            .map(|d| {
                let all = domain::values(q.table, d, &version.quarters);
                match q.pinned.get(d) {
                    Some(p) => all.into_iter().filter(|v| p.contains(v)).collect(),
                    None => all,
                }
            })
            .collect();
        let grid = Grid::new(domains);
        // The domain sizes are public (code lists, quarters loaded): this refusal reads no row.
        if grid.len() > MAX_CELLS {
            return Err(Refusal(format!(
                "the dimensions make {} cells, more than {MAX_CELLS}: filter them with WHERE … IN (…) or group by fewer",
                grid.len()
            ))
            .into());
        }
        let bounds = bounds_of(&q, &version.quarters);
        let sets = figure_sets(&q, &measures);
        let keys: Vec<String> = sets
            .iter()
            .map(|s| release_key(&q, &grid, &version, s, &measures, project.rho_per_figure))
            .collect();
        let lock = self.lock_of(&project.id);
        let _one_at_a_time = lock.lock().await;
        let cache = Cache::new(&self.data, &project.id);
        let mut released: Vec<Option<Released>> = keys
            .iter()
            .map(|k| cache.get(k))
            .collect::<Result<_, _>>()?;
        let ledger = Ledger::new(&self.data, &project.id, project.budget_rho);
        let mut spent = 0.0;
        if released.iter().any(Option::is_none) {
            let cells = grid.len();
            let mut cost = 0.0;
            for (s, r) in sets.iter().zip(&released) {
                if r.is_none() {
                    cost += cost_of(s, &q, &measures, bounds, cells, project.rho_per_figure)?;
                }
            }
            // Paid, durably, before any row is read: a refusal for budget never depends on the
            // data, and whatever happens next (a failure included) has been paid for.
            ledger.spend(
                cost,
                &format!("{} figure set(s) of {}", sets.len(), q.table.name),
            )?;
            spent = cost;
            let exact = self.exact(&q, &measures, &grid, bounds, project).await?;
            for ((s, r), key) in sets.iter().zip(released.iter_mut()).zip(&keys) {
                if r.is_none() {
                    let rel = draw(s, &q, &measures, &exact, bounds, cells, project)?;
                    cache.put(key, &rel)?;
                    *r = Some(rel);
                }
            }
        }
        let status = ledger.status()?;
        let released: Vec<Released> = released.into_iter().flatten().collect();
        Ok(assemble(
            &q, &grid, &sets, &released, &measures, project, spent, &status,
        ))
    }

    /// Reads the rows and computes the exact cells.
    async fn exact(
        &self,
        q: &StatQuery,
        measures: &[String],
        grid: &Grid,
        bounds: Bounds,
        project: &ProjectRules,
    ) -> Result<Exact, ResearchError> {
        let pseudo = Pseudonymizer::for_project(&self.data, &project.id)?;
        let enterprise = enterprise_of(q);
        let started = Instant::now();
        let ctx = self.engine.context()?;
        let df = ctx
            .sql(&rows_sql(q, measures, enterprise.as_deref()))
            .await
            .map_err(QueryError::from)?;
        let batches = self.engine.collect(df, started).await?;
        let mut rows = Vec::new();
        for b in &batches {
            read_rows(
                b,
                q,
                measures.len(),
                enterprise.is_some(),
                &pseudo,
                &mut rows,
            )?;
        }
        let exact = cells::build(rows, grid, measures.len(), bounds);
        tracing::debug!(
            "research: {} row(s) left out by the contribution bounds or the domains",
            exact.dropped
        );
        Ok(exact)
    }
}

/// The measures the query reads, in order of first use.
fn measures_of(q: &StatQuery) -> Vec<String> {
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
}

/// The enterprise column counted, if any.
fn enterprise_of(q: &StatQuery) -> Option<String> {
    q.outputs.iter().find_map(|o| match o {
        Output::Aggregate {
            agg: Aggregate::Distinct(c),
            ..
        } if c != q.table.unit => Some(c.clone()),
        _ => None,
    })
}

/// How far one person reaches: `max_rows_per_unit` rows per quarter in scope, and per cell that many
/// per quarter the cell spans. Decided from the text and the quarters loaded, never from rows.
fn bounds_of(q: &StatQuery, quarters: &[String]) -> Bounds {
    let in_scope = match q.pinned.get("quarter") {
        Some(p) => quarters.iter().filter(|x| p.contains(x)).count(),
        None => quarters.len(),
    }
    .max(1);
    let per_quarter = q.table.max_rows_per_unit.max(1) as usize;
    let total = per_quarter * in_scope;
    Bounds {
        rows_total: total,
        rows_per_cell: if q.dimensions.iter().any(|d| d == "quarter") {
            per_quarter
        } else {
            total
        },
    }
}

/// The figure set a count or a sum is read from (`None` for means and quantiles, which combine or
/// have sets of their own).
fn counted_set(agg: &Aggregate, q: &StatQuery, measures: &[String]) -> Option<FigureSet> {
    let m = |name: &str| measures.iter().position(|x| x == name).unwrap_or(0);
    match agg {
        Aggregate::Rows => Some(FigureSet::Rows),
        Aggregate::Distinct(c) if c == q.table.unit => Some(FigureSet::Persons),
        Aggregate::Distinct(_) => Some(FigureSet::Employers),
        Aggregate::Sum(x) => Some(FigureSet::Sum(m(x))),
        Aggregate::Avg(_) | Aggregate::Median(_) | Aggregate::Quantile(..) => None,
    }
}

/// The figure sets an answer needs: the persons per cell (for the `:c` threshold) and each aggregate's.
fn figure_sets(q: &StatQuery, measures: &[String]) -> Vec<FigureSet> {
    let m = |name: &str| measures.iter().position(|x| x == name).unwrap_or(0);
    let mut sets = vec![FigureSet::Persons];
    let mut add = |s: FigureSet| {
        if !sets.contains(&s) {
            sets.push(s);
        }
    };
    for o in &q.outputs {
        let Output::Aggregate { agg, .. } = o else {
            continue;
        };
        if let Some(set) = counted_set(agg, q, measures) {
            add(set);
            continue;
        }
        match agg {
            Aggregate::Avg(x) => {
                add(FigureSet::Sum(m(x)));
                add(FigureSet::Rows);
            }
            Aggregate::Median(x) => add(FigureSet::Quantile(m(x), 0.5)),
            Aggregate::Quantile(x, p) => add(FigureSet::Quantile(m(x), *p)),
            Aggregate::Rows | Aggregate::Distinct(_) | Aggregate::Sum(_) => {}
        }
    }
    sets
}

/// The clamps of measure `name`.
fn clamps(t: &LabourTable, name: &str) -> (f64, f64) {
    match t.column(name).map(|c| c.role) {
        Some(ColumnRole::Measure { lo, hi }) => (lo, hi),
        _ => (0.0, 1.0),
    }
}

/// `Σ rⱼ²` for quantiles: they rank one value per person and cell, so one person changes one value in
/// each of the cells they reach.
fn quantile_sum_sq(b: Bounds, cells: usize) -> f64 {
    b.cells_touched(cells)
}

/// L2 sensitivity of a Gaussian figure set.
fn l2_of(s: &FigureSet, q: &StatQuery, measures: &[String], b: Bounds, cells: usize) -> f64 {
    match s {
        FigureSet::Persons => b.cells_touched(cells).sqrt(),
        FigureSet::Rows | FigureSet::Employers => b.sum_sq(cells).sqrt(),
        FigureSet::Sum(m) => {
            let (lo, hi) = clamps(q.table, &measures[*m]);
            lo.abs().max(hi.abs()) * b.sum_sq(cells).sqrt()
        }
        FigureSet::Quantile(..) => 0.0,
    }
}

fn cost_of(
    s: &FigureSet,
    q: &StatQuery,
    measures: &[String],
    b: Bounds,
    cells: usize,
    rho: f64,
) -> Result<f64, MechanismError> {
    match s {
        FigureSet::Quantile(m, p) => {
            let (lo, hi) = clamps(q.table, &measures[*m]);
            mechanism::quantile_cost(
                &mechanism::grid(lo, hi, QUANTILE_STEPS),
                *p,
                quantile_sum_sq(b, cells),
                rho,
            )
        }
        _ => mechanism::gaussian_cost(cells, l2_of(s, q, measures, b, cells), rho),
    }
}

/// Draws the noise of one figure set.
fn draw(
    s: &FigureSet,
    q: &StatQuery,
    measures: &[String],
    exact: &Exact,
    b: Bounds,
    cells: usize,
    project: &ProjectRules,
) -> Result<Released, ResearchError> {
    let rho = project.rho_per_figure;
    let gaussian = |v: &[f64]| -> Result<Released, ResearchError> {
        let r = mechanism::gaussian(v, l2_of(s, q, measures, b, cells), rho)?;
        Ok(Released {
            values: r.values.into_iter().map(Some).collect(),
            rho: r.rho,
            sigma: r.sigma,
            mechanism: "discrete Gaussian".into(),
        })
    };
    match s {
        FigureSet::Rows => gaussian(&exact.rows),
        FigureSet::Persons => gaussian(&exact.persons),
        FigureSet::Employers => gaussian(&exact.employers),
        FigureSet::Sum(m) => gaussian(&exact.sums[*m]),
        FigureSet::Quantile(m, p) => {
            let (lo, hi) = clamps(q.table, &measures[*m]);
            let r = mechanism::quantiles(
                &exact.values[*m],
                &mechanism::grid(lo, hi, QUANTILE_STEPS),
                *p,
                quantile_sum_sq(b, cells),
                rho,
            )?;
            Ok(Released {
                values: r.values,
                rho: r.rho,
                sigma: r.scale,
                mechanism: "exponential mechanism (Gumbel noisy max)".into(),
            })
        }
    }
}

/// The key of one figure set's release: everything that decides it — the data version, the table, the
/// filter as normalised by the parser, the cells, the aggregate, the ρ.
fn release_key(
    q: &StatQuery,
    grid: &Grid,
    v: &Version,
    s: &FigureSet,
    measures: &[String],
    rho: f64,
) -> String {
    format!(
        "v={} table={} where={} dims={} cells={} set={} rho={rho}",
        v.digest,
        q.table.name,
        q.filter.as_deref().unwrap_or(""),
        q.dimensions.join(","),
        hex::encode(Sha256::digest(format!("{:?}", grid.domains))),
        s.name(measures)
    )
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
        .map(|(i, d)| format!("COALESCE(CAST({d} AS VARCHAR), '{}') AS d{i}", domain::NONE))
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
        let (lo, hi) = clamps(t, m);
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
            // A missing (or, were the import checks ever bypassed, non-finite) value contributes
            // nothing: a NaN would otherwise make the release fail, a data-dependent error.
            measures: ms
                .iter()
                .map(|m| {
                    let v = if m.is_null(i) { 0.0 } else { m.value(i) };
                    if v.is_finite() { v } else { 0.0 }
                })
                .collect(),
        });
    }
    Ok(())
}

/// Rounds a released figure to the project's base (whole numbers at base 1 for counts and sums).
fn rounded(v: f64, base: u32, whole: bool) -> f64 {
    if base > 1 {
        (v / base as f64).round() * base as f64
    } else if whole {
        v.round()
    } else {
        (v * 100.0).round() / 100.0
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

/// A row of noisy totals: the finest cells it adds up.
struct Totals {
    key: Vec<Option<String>>,
    cells: Vec<usize>,
}

/// Every finest cell and every margin, each with the finest cells it covers.
fn totals(grid: &Grid) -> Vec<Totals> {
    let dims = grid.domains.len();
    let mut out: BTreeMap<Vec<Option<String>>, Vec<usize>> = BTreeMap::new();
    for i in 0..grid.len() {
        let values = grid.values_of(i);
        for mask in 0..(1u32 << dims) {
            let key: Vec<Option<String>> = (0..dims)
                .map(|d| (mask & (1 << d) == 0).then(|| values[d].clone()))
                .collect();
            out.entry(key).or_default().push(i);
        }
    }
    out.into_iter()
        .map(|(key, cells)| Totals { key, cells })
        .collect()
}

/// Builds the released answer from the noisy figure sets: post-processing only.
#[allow(clippy::too_many_arguments)]
fn assemble(
    q: &StatQuery,
    grid: &Grid,
    sets: &[FigureSet],
    released: &[Released],
    measures: &[String],
    project: &ProjectRules,
    spent: f64,
    status: &BudgetStatus,
) -> Answer {
    let of = |s: &FigureSet| sets.iter().position(|x| x == s).map(|i| &released[i]);
    let m = |name: &str| measures.iter().position(|x| x == name).unwrap_or(0);
    let sum_over = |r: &Released, cells: &[usize]| -> f64 {
        cells
            .iter()
            .filter_map(|&i| r.values.get(i).copied().flatten())
            .sum()
    };
    let mut body = Vec::new();
    let mut margins = Vec::new();
    for t in totals(grid) {
        let finest = t.key.iter().all(Option::is_some);
        let persons = of(&FigureSet::Persons).map_or(0.0, |r| sum_over(r, &t.cells));
        let hidden = persons < project.min_cell as f64;
        let row: Vec<Figure> = q
            .outputs
            .iter()
            .map(|o| match o {
                Output::Dimension(name) => {
                    let i = q.dimensions.iter().position(|x| x == name).unwrap_or(0);
                    Figure::Text(t.key[i].clone().unwrap_or_else(|| TOTAL.into()))
                }
                Output::Aggregate { .. } if hidden => Figure::Confidential,
                Output::Aggregate { agg, .. } => {
                    let count = |s: FigureSet| {
                        of(&s).map_or(Figure::Empty, |r| {
                            Figure::Number(rounded(
                                sum_over(r, &t.cells).max(0.0),
                                project.round_to,
                                true,
                            ))
                        })
                    };
                    if let Some(set) = counted_set(agg, q, measures) {
                        return count(set);
                    }
                    match agg {
                        Aggregate::Avg(x) => {
                            let (lo, hi) = clamps(q.table, x);
                            match (of(&FigureSet::Sum(m(x))), of(&FigureSet::Rows)) {
                                (Some(s), Some(n)) => {
                                    let n = sum_over(n, &t.cells);
                                    if n >= 1.0 {
                                        Figure::Number(rounded(
                                            (sum_over(s, &t.cells) / n).clamp(lo, hi),
                                            project.round_to,
                                            false,
                                        ))
                                    } else {
                                        Figure::Empty
                                    }
                                }
                                _ => Figure::Empty,
                            }
                        }
                        Aggregate::Median(x) | Aggregate::Quantile(x, _) => {
                            let p = match agg {
                                Aggregate::Quantile(_, p) => *p,
                                _ => 0.5,
                            };
                            // Quantiles are released for the finest cells only: a margin's would be
                            // another release.
                            match (finest, of(&FigureSet::Quantile(m(x), p))) {
                                (true, Some(r)) => r
                                    .values
                                    .get(t.cells[0])
                                    .copied()
                                    .flatten()
                                    .map_or(Figure::Empty, |v| {
                                        Figure::Number(rounded(v, project.round_to, false))
                                    }),
                                _ => Figure::Empty,
                            }
                        }
                        Aggregate::Rows | Aggregate::Distinct(_) | Aggregate::Sum(_) => {
                            Figure::Empty
                        }
                    }
                }
            })
            .collect();
        let row = monotone_quantiles(q, row);
        if finest {
            if hidden || q.having.as_ref().is_none_or(|h| holds(h, &row)) {
                body.push(row);
            }
        } else {
            margins.push(row);
        }
    }
    for &(column, desc) in q.order_by.iter().rev() {
        body.sort_by(|a, b| {
            let (x, y) = (&a[column], &b[column]);
            let o = match (x, y) {
                (Figure::Number(x), Figure::Number(y)) => x.total_cmp(y),
                (Figure::Text(x), Figure::Text(y)) => x.cmp(y),
                // Confidential and empty figures sort last either way.
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
    let noise: Vec<String> = q
        .outputs
        .iter()
        .map(|o| match o {
            Output::Dimension(_) => String::new(),
            Output::Aggregate { agg, .. } => describe_noise(agg, q, measures, sets, released),
        })
        .collect();
    let sigma: Vec<Option<f64>> = q
        .outputs
        .iter()
        .map(|o| {
            let set = match o {
                Output::Aggregate { agg, .. } => counted_set(agg, q, measures),
                Output::Dimension(_) => None,
            };
            set.and_then(|s| of(&s)).map(|r| r.sigma)
        })
        .collect();
    let margin: Vec<bool> = body
        .iter()
        .map(|_| false)
        .chain(margins.iter().map(|_| true))
        .collect();
    Answer {
        project: project.id.clone(),
        table: q.table.name.to_owned(),
        columns: q.outputs.iter().map(|o| o.name().to_owned()).collect(),
        dimension: q
            .outputs
            .iter()
            .map(|o| matches!(o, Output::Dimension(_)))
            .collect(),
        rows: body.into_iter().chain(margins).collect(),
        margin,
        privacy: Privacy {
            rho_query: spent,
            rho_spent: status.rho_spent,
            rho_left: status.rho_left,
            rho_total: status.rho_total,
            epsilon_spent: status.epsilon_spent,
            delta: status.delta,
            from_cache: spent == 0.0,
            min_cell: project.min_cell,
            round_to: project.round_to,
            noise,
            sigma,
        },
    }
}

/// Several quantiles of one measure in one cell are drawn apart and may cross (a first quartile above
/// the median); sorting them by their `p` is post-processing and can only bring them nearer the truth.
fn monotone_quantiles(q: &StatQuery, mut row: Vec<Figure>) -> Vec<Figure> {
    let mut by_measure: BTreeMap<&str, Vec<(f64, usize)>> = BTreeMap::new();
    for (i, o) in q.outputs.iter().enumerate() {
        if let Output::Aggregate { agg, .. } = o {
            match agg {
                Aggregate::Median(x) => by_measure.entry(x).or_default().push((0.5, i)),
                Aggregate::Quantile(x, p) => by_measure.entry(x).or_default().push((*p, i)),
                _ => {}
            }
        }
    }
    for (_, mut cols) in by_measure {
        cols.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut values: Vec<f64> = cols
            .iter()
            .filter_map(|&(_, i)| match row[i] {
                Figure::Number(v) => Some(v),
                _ => None,
            })
            .collect();
        if values.len() != cols.len() {
            continue;
        }
        values.sort_by(f64::total_cmp);
        for (&(_, i), v) in cols.iter().zip(values) {
            row[i] = Figure::Number(v);
        }
    }
    row
}

/// What noise a column carries, in words a researcher can use.
fn describe_noise(
    agg: &Aggregate,
    q: &StatQuery,
    measures: &[String],
    sets: &[FigureSet],
    released: &[Released],
) -> String {
    let m = |name: &str| measures.iter().position(|x| x == name).unwrap_or(0);
    let of = |s: &FigureSet| sets.iter().position(|x| x == s).map(|i| &released[i]);
    let gauss = |s: FigureSet| {
        of(&s).map_or(String::new(), |r| {
            format!(
                "± {:.1} per cell (σ of the discrete Gaussian; a margin adds its cells' noise)",
                r.sigma
            )
        })
    };
    if let Some(set) = counted_set(agg, q, measures) {
        return gauss(set);
    }
    match agg {
        Aggregate::Rows | Aggregate::Distinct(_) | Aggregate::Sum(_) => String::new(),
        Aggregate::Avg(x) => format!(
            "noisy sum / noisy rows (sum {})",
            gauss(FigureSet::Sum(m(x)))
        ),
        Aggregate::Median(x) | Aggregate::Quantile(x, _) => {
            let p = match agg {
                Aggregate::Quantile(_, p) => *p,
                _ => 0.5,
            };
            let (lo, hi) = clamps(q.table, x);
            of(&FigureSet::Quantile(m(x), p)).map_or(String::new(), |r| {
                format!(
                    "exponential mechanism over {} steps of {:.2} from {lo} to {hi}, rank noise scale {:.1}; finest cells only",
                    QUANTILE_STEPS,
                    (hi - lo) / QUANTILE_STEPS as f64,
                    r.sigma
                )
            })
        }
    }
}
