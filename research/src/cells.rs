//! The exact cells behind an answer, before any noise: every combination of the dimensions' public
//! values, each person's records bounded first so that one person can move the cells only so far
//! (the sensitivity the noise is calibrated to).

use std::collections::{BTreeSet, HashMap};

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

/// How far one person may reach into an answer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    /// Most rows one person keeps in the whole answer.
    pub rows_total: usize,
    /// Most rows one person keeps in one cell.
    pub rows_per_cell: usize,
}

impl Bounds {
    /// `Σ rⱼ²` at most, over the cells `j` of a person's `rⱼ` rows, with `cells` cells: what the
    /// Gaussian's L2 sensitivity (squared) and the quantile's cost grow with.
    pub fn sum_sq(&self, cells: usize) -> f64 {
        let c = self.rows_per_cell.max(1) as f64;
        let k = self.rows_total.max(1) as f64;
        c * k.min(c * cells.max(1) as f64)
    }

    /// Most cells one person appears in.
    pub fn cells_touched(&self, cells: usize) -> f64 {
        self.rows_total.max(1).min(cells.max(1)) as f64
    }
}

/// The exact figures of every finest cell.
#[derive(Clone, Debug, Default)]
pub struct Exact {
    /// Rows kept, per cell.
    pub rows: Vec<f64>,
    /// Distinct persons, per cell.
    pub persons: Vec<f64>,
    /// Distinct enterprises, per cell (when counted).
    pub employers: Vec<f64>,
    /// Sum of each measure, per measure then cell.
    pub sums: Vec<Vec<f64>>,
    /// One value of each measure per person and cell — the person's first kept row there — per
    /// measure then cell: what quantiles rank, so that one person moves a cell's ranks by one.
    pub values: Vec<Vec<Vec<f64>>>,
    /// Rows left out by the bounds or for a value outside the public domain (not shown: only the
    /// operator's log has it).
    pub dropped: usize,
}

/// The cells' coordinates: the public values of each dimension, in order; cell `i` is the mixed-radix
/// number of its values' positions.
#[derive(Clone, Debug)]
pub struct Grid {
    pub domains: Vec<Vec<String>>,
    index: Vec<HashMap<String, usize>>,
}

impl Grid {
    /// The grid over these domains.
    pub fn new(domains: Vec<Vec<String>>) -> Grid {
        let index = domains
            .iter()
            .map(|d| d.iter().enumerate().map(|(i, v)| (v.clone(), i)).collect())
            .collect();
        Grid { domains, index }
    }

    /// Number of finest cells (1 with no dimension).
    pub fn len(&self) -> usize {
        self.domains.iter().map(Vec::len).product()
    }

    /// Whether the grid has no cell (some dimension has no value).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cell of a row's dimension values, if each is in its domain.
    pub fn cell_of(&self, dims: &[String]) -> Option<usize> {
        let mut i = 0;
        for (d, v) in dims.iter().enumerate() {
            i = i * self.domains[d].len() + *self.index[d].get(v)?;
        }
        Some(i)
    }

    /// The values of cell `i`.
    pub fn values_of(&self, mut i: usize) -> Vec<String> {
        let mut out = vec![String::new(); self.domains.len()];
        for d in (0..self.domains.len()).rev() {
            let n = self.domains[d].len();
            out[d] = self.domains[d][i % n].clone();
            i /= n;
        }
        out
    }
}

/// Bounds each person's rows (by `bounds`, keeping rows in the order of their record pseudonym, which
/// no value decides) and computes every cell of `grid`. Rows whose values are outside the grid are
/// left out.
pub fn build(mut rows: Vec<Row>, grid: &Grid, measures: usize, bounds: Bounds) -> Exact {
    let n = grid.len();
    let mut e = Exact {
        rows: vec![0.0; n],
        persons: vec![0.0; n],
        employers: vec![0.0; n],
        sums: vec![vec![0.0; n]; measures],
        values: vec![vec![Vec::new(); n]; measures],
        dropped: 0,
    };
    rows.sort_unstable_by_key(|r| (r.unit, r.record));
    let mut employers: Vec<BTreeSet<u64>> = vec![BTreeSet::new(); n];
    let mut start = 0;
    while start < rows.len() {
        let unit = rows[start].unit;
        let end = rows[start..]
            .iter()
            .position(|r| r.unit != unit)
            .map_or(rows.len(), |p| start + p);
        let mut kept = 0;
        let mut per_cell: HashMap<usize, usize> = HashMap::new();
        for r in &rows[start..end] {
            let Some(cell) = grid.cell_of(&r.dims) else {
                e.dropped += 1;
                continue;
            };
            let here = per_cell.entry(cell).or_insert(0);
            if kept >= bounds.rows_total || *here >= bounds.rows_per_cell {
                e.dropped += 1;
                continue;
            }
            kept += 1;
            let first = *here == 0;
            if first {
                e.persons[cell] += 1.0;
            }
            *here += 1;
            e.rows[cell] += 1.0;
            for (m, v) in r.measures.iter().enumerate() {
                e.sums[m][cell] += v;
                if first {
                    e.values[m][cell].push(*v);
                }
            }
            if let Some(emp) = r.employer {
                employers[cell].insert(emp);
            }
        }
        start = end;
    }
    for (cell, s) in employers.iter().enumerate() {
        e.employers[cell] = s.len() as f64;
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(unit: u64, record: u64, region: &str, wage: f64) -> Row {
        Row {
            dims: vec![region.into()],
            unit,
            record,
            employer: None,
            measures: vec![wage],
        }
    }

    #[test]
    fn one_person_reaches_no_further_than_the_bounds() {
        let grid = Grid::new(vec![vec!["BRU".into(), "VLA".into(), "WAL".into()]]);
        let mut rows: Vec<Row> = (0..10).map(|i| row(7, i, "BRU", 100.0)).collect();
        rows.extend((10..20).map(|i| row(7, i, "VLA", 100.0)));
        rows.push(row(8, 99, "WAL", 5.0));
        rows.push(row(9, 98, "XXX", 5.0));
        let b = Bounds {
            rows_total: 4,
            rows_per_cell: 3,
        };
        let e = build(rows, &grid, 1, b);
        // Person 7 keeps 3 rows in BRU (per-cell bound) and 1 in VLA (total bound).
        assert_eq!(e.rows, [3.0, 1.0, 1.0]);
        assert_eq!(e.persons, [1.0, 1.0, 1.0]);
        assert_eq!(e.sums[0], [300.0, 100.0, 5.0]);
        // 16 of person 7's rows and the row outside the domain.
        assert_eq!(e.dropped, 17);
        assert_eq!(b.sum_sq(3), 12.0);
    }

    #[test]
    fn cells_number_their_values() {
        let grid = Grid::new(vec![
            vec!["a".into(), "b".into()],
            vec!["x".into(), "y".into(), "z".into()],
        ]);
        assert_eq!(grid.len(), 6);
        for i in 0..6 {
            assert_eq!(grid.cell_of(&grid.values_of(i)), Some(i));
        }
        assert_eq!(grid.cell_of(&["b".into(), "q".into()]), None);
    }
}
