//! Cells of an answer: every combination of the dimensions' values, and every margin (a dimension
//! replaced by its total), each with the persons behind it and their contributions.

use std::collections::{BTreeMap, BTreeSet};

/// A cell's coordinates: a value per dimension, `None` for the total over that dimension.
pub type Key = Vec<Option<String>>;

/// One row that passed the filter, its identifiers already pseudonymised.
#[derive(Clone, Debug)]
pub struct Row {
    /// Values of the dimensions, in query order.
    pub dims: Vec<String>,
    /// The person (pseudonym).
    pub unit: u64,
    /// The source record (pseudonym of its key columns).
    pub record: u64,
    /// The enterprise (pseudonym), when the query counts enterprises.
    pub employer: Option<u64>,
    /// Values of the measures the query reads, clamped.
    pub measures: Vec<f64>,
}

/// What is known of one cell.
#[derive(Clone, Debug, Default)]
pub struct Cell {
    /// Rows, after bounding each person's rows.
    pub rows: u64,
    /// Each person's contribution to each measure.
    pub units: BTreeMap<u64, Vec<f64>>,
    pub employers: BTreeSet<u64>,
    /// The source records behind the cell (what two answers would subtract).
    pub records: BTreeSet<u64>,
    /// Every row's value of each measure (for medians and quantiles).
    pub values: Vec<Vec<f64>>,
}

impl Cell {
    /// Distinct persons behind the cell.
    pub fn persons(&self) -> usize {
        self.units.len()
    }

    /// Total of measure `m`.
    pub fn total(&self, m: usize) -> f64 {
        self.units.values().map(|c| c[m]).sum()
    }

    /// The `n` largest contributions to measure `m`, largest first.
    pub fn top(&self, m: usize, n: usize) -> Vec<f64> {
        let mut c: Vec<f64> = self.units.values().map(|c| c[m]).collect();
        c.sort_by(|a, b| b.total_cmp(a));
        c.truncate(n);
        c
    }
}

/// Bounds each person's rows per finest cell to `max_rows` (keeping the largest values, so the
/// result does not depend on the order rows arrive in).
pub fn bound_rows(mut rows: Vec<Row>, max_rows: usize) -> Vec<Row> {
    rows.sort_by(|a, b| {
        (&a.dims, a.unit).cmp(&(&b.dims, b.unit)).then_with(|| {
            b.measures
                .iter()
                .zip(&a.measures)
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    });
    let mut kept = Vec::with_capacity(rows.len());
    let mut run = 0usize;
    let mut last: Option<(Vec<String>, u64)> = None;
    for r in rows {
        if last
            .as_ref()
            .is_some_and(|(d, u)| *u == r.unit && *d == r.dims)
        {
            run += 1;
        } else {
            run = 1;
            last = Some((r.dims.clone(), r.unit));
        }
        if run <= max_rows.max(1) {
            kept.push(r);
        }
    }
    kept
}

/// Every cell and margin of `rows` over `dims` dimensions and `measures` measures.
pub fn build(rows: &[Row], dims: usize, measures: usize) -> BTreeMap<Key, Cell> {
    let mut cells: BTreeMap<Key, Cell> = BTreeMap::new();
    for r in rows {
        for mask in 0..(1u32 << dims) {
            let key: Key = (0..dims)
                .map(|d| (mask & (1 << d) == 0).then(|| r.dims[d].clone()))
                .collect();
            let cell = cells.entry(key).or_insert_with(|| Cell {
                values: vec![Vec::new(); measures],
                ..Cell::default()
            });
            cell.rows += 1;
            let c = cell
                .units
                .entry(r.unit)
                .or_insert_with(|| vec![0.0; measures]);
            for (m, v) in r.measures.iter().enumerate() {
                c[m] += v;
                cell.values[m].push(*v);
            }
            if let Some(e) = r.employer {
                cell.employers.insert(e);
            }
            cell.records.insert(r.record);
        }
    }
    cells
}

/// The quantile `p` of `values` (linear interpolation between order statistics).
pub fn quantile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = p.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Some(v[lo] + (v[hi] - v[lo]) * (pos - lo as f64))
}

/// Sample standard deviation.
pub fn stddev(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    Some((values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt())
}
