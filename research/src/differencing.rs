//! Differencing across a project's queries: when one released cell's source records hold another's
//! plus a few more, subtracting the two answers discloses those few (their count, their wages). Every
//! released cell's set of record pseudonyms is kept per project; a new answer with a cell nested in
//! (or around) an earlier one and differing from it by fewer than the minimum (but not zero) records is
//! refused. Records, not persons: the same region in two quarters holds mostly the same persons but
//! other records, and their difference subtracts nothing. Cells that merely overlap (other records on
//! both sides) are not refused either: their difference mixes two unknown groups and singles out no
//! one.

use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// A cell released earlier.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReleasedCell {
    /// The query that released it (its number in the project's history).
    pub query: u64,
    /// The cell, as shown (e.g. `region=BRU, quarter=Total`).
    pub label: String,
    /// Sorted pseudonyms of the records behind it.
    pub records: Vec<u64>,
}

/// A project's released cells, kept in `DATA/research/<project>/released.jsonl`.
#[derive(Debug)]
pub struct History {
    path: PathBuf,
    cells: Vec<ReleasedCell>,
    queries: u64,
}

/// Why an answer is refused for differencing.
#[derive(Clone, Debug, PartialEq)]
pub struct Differencing {
    pub label: String,
    pub earlier_query: u64,
    pub earlier_label: String,
    pub records: usize,
}

#[derive(Serialize, Deserialize)]
struct Line {
    query: u64,
    sql: String,
    at: String,
    cells: Vec<(String, Vec<u64>)>,
}

/// Records only in `a` and records only in `b`, each counted up to `limit` (sorted inputs).
fn differences(a: &[u64], b: &[u64], limit: usize) -> (usize, usize) {
    let (mut i, mut j, mut only_a, mut only_b) = (0, 0, 0, 0);
    while (i < a.len() || j < b.len()) && (only_a < limit || only_b < limit) {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x == y => {
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x < y => {
                only_a += 1;
                i += 1;
            }
            (Some(_), None) => {
                only_a += 1;
                i += 1;
            }
            _ => {
                only_b += 1;
                j += 1;
            }
        }
    }
    (only_a, only_b)
}

impl History {
    /// Reads the project's history (empty when there is none yet).
    pub fn open(data: &Path, project: &str) -> std::io::Result<History> {
        let path = data.join("research").join(project).join("released.jsonl");
        let mut cells = Vec::new();
        let mut queries = 0;
        match std::fs::File::open(&path) {
            Ok(f) => {
                for line in std::io::BufReader::new(f).lines() {
                    let line = line?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    // A torn last line (crash while appending) released nothing: skip it.
                    let Ok(l) = serde_json::from_str::<Line>(&line) else {
                        continue;
                    };
                    queries = queries.max(l.query);
                    cells.extend(l.cells.into_iter().map(|(label, records)| ReleasedCell {
                        query: l.query,
                        label,
                        records,
                    }));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(History {
            path,
            cells,
            queries,
        })
    }

    /// The first cell of `new` nested in or around a released one, 1 to `min_cell − 1` records apart.
    pub fn check(&self, new: &[(String, Vec<u64>)], min_cell: usize) -> Option<Differencing> {
        for (label, records) in new {
            for old in &self.cells {
                // |A Δ B| ≥ ||A| − |B||: most pairs are ruled out without comparing.
                if records.len().abs_diff(old.records.len()) >= min_cell {
                    continue;
                }
                let (only_new, only_old) = differences(records, &old.records, min_cell);
                let d = only_new + only_old;
                let nested = only_new == 0 || only_old == 0;
                if nested && d > 0 && d < min_cell {
                    return Some(Differencing {
                        label: label.clone(),
                        earlier_query: old.query,
                        earlier_label: old.label.clone(),
                        records: d,
                    });
                }
            }
        }
        None
    }

    /// Records the cells an answer released; returns the query's number.
    pub fn record(&mut self, sql: &str, cells: Vec<(String, Vec<u64>)>) -> std::io::Result<u64> {
        self.queries += 1;
        let line = Line {
            query: self.queries,
            sql: sql.to_owned(),
            at: chrono::Utc::now().to_rfc3339(),
            cells,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut text = serde_json::to_string(&line).map_err(std::io::Error::other)?;
        text.push('\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(text.as_bytes())?;
        f.sync_data()?;
        self.cells
            .extend(line.cells.into_iter().map(|(label, records)| ReleasedCell {
                query: line.query,
                label,
                records,
            }));
        Ok(self.queries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_a_few_persons_away_from_a_released_one_is_caught() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut h = History::open(dir.path(), "P").expect("history");
        let base: Vec<u64> = (0..100).collect();
        h.record("q1", vec![("all".into(), base.clone())])
            .expect("recorded");
        // The same cell again: nothing new is disclosed.
        assert_eq!(h.check(&[("again".into(), base.clone())], 10), None);
        // One person fewer: that person's figures would be the difference.
        let minus_one: Vec<u64> = (1..100).collect();
        let d = h
            .check(&[("tracker".into(), minus_one)], 10)
            .expect("caught");
        assert_eq!((d.records, d.earlier_query), (1, 1));
        // One person more: nested the other way, caught too.
        assert!(
            h.check(&[("plus".into(), (0..101).collect())], 10)
                .is_some()
        );
        // Far apart, or overlapping with different persons on both sides: fine.
        let other: Vec<u64> = (50..200).collect();
        assert_eq!(h.check(&[("other".into(), other)], 10), None);
        let shifted: Vec<u64> = (3..103).collect();
        assert_eq!(h.check(&[("next quarter".into(), shifted)], 10), None);
        // The history survives a restart.
        let h2 = History::open(dir.path(), "P").expect("history");
        assert!(h2.check(&[("x".into(), (0..99).collect())], 10).is_some());
    }
}
