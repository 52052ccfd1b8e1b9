//! Disclosure control of one answer: the primary rules (frequency, nk-dominance, p %) on every cell
//! and margin, then secondary suppression, so that no suppressed cell can be recovered from the totals
//! of the same answer.

use crate::cells::{Cell, Key};
use std::collections::{BTreeMap, BTreeSet};

/// A project's rules.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    /// Fewest distinct persons behind a released cell.
    pub min_cell: usize,
    /// nk-dominance: the `n` largest contributions may make at most `k` % of a sum.
    pub dominance_n: usize,
    pub dominance_k: f64,
    /// p % rule: what the others contribute must exceed `p` % of the largest contribution.
    pub p_percent: f64,
    /// Counts are rounded to a multiple of this.
    pub round_to: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            min_cell: 10,
            dominance_n: 2,
            dominance_k: 85.0,
            p_percent: 10.0,
            round_to: 1,
        }
    }
}

/// Why a cell is not released.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Suppressed {
    /// Fewer persons than the minimum.
    Frequency,
    /// A few contributors make most of a sum.
    Dominance,
    /// The second largest contributor could estimate the largest too closely.
    PPercent,
    /// Released, it would let a suppressed cell be computed from a total.
    Secondary,
}

/// The primary rules on one cell; `sums` are the measures released as sums or means.
pub fn primary(cell: &Cell, sums: &[usize], rules: &Rules) -> Option<Suppressed> {
    if cell.persons() < rules.min_cell {
        return Some(Suppressed::Frequency);
    }
    for &m in sums {
        let total = cell.total(m);
        if total <= 0.0 {
            continue;
        }
        let top = cell.top(m, rules.dominance_n.max(2));
        let n_top: f64 = top.iter().take(rules.dominance_n).sum();
        if n_top > rules.dominance_k / 100.0 * total {
            return Some(Suppressed::Dominance);
        }
        let (x1, x2) = (
            top.first().copied().unwrap_or(0.0),
            top.get(1).copied().unwrap_or(0.0),
        );
        if total - x1 - x2 < rules.p_percent / 100.0 * x1 {
            return Some(Suppressed::PPercent);
        }
    }
    None
}

/// Applies the primary rules to every cell, then suppresses further cells until, along every line of
/// the table (the cells that add up to one margin), either nothing is suppressed or at least two
/// entries are, together covering at least `min_cell` persons.
pub fn suppress(
    cells: &BTreeMap<Key, Cell>,
    dims: usize,
    sums: &[usize],
    rules: &Rules,
) -> BTreeMap<Key, Suppressed> {
    let mut out: BTreeMap<Key, Suppressed> = cells
        .iter()
        .filter_map(|(k, c)| primary(c, sums, rules).map(|s| (k.clone(), s)))
        .collect();
    // Lines: for each cell key with a value in dimension d, the line is every cell sharing the other
    // coordinates, and its total is that key with d replaced by None.
    let mut lines: Vec<(Key, Vec<Key>)> = Vec::new();
    for d in 0..dims {
        let mut by_total: BTreeMap<Key, Vec<Key>> = BTreeMap::new();
        for k in cells.keys().filter(|k| k[d].is_some()) {
            let mut total = k.clone();
            total[d] = None;
            by_total.entry(total).or_default().push(k.clone());
        }
        lines.extend(by_total);
    }
    loop {
        let mut changed = false;
        for (total, members) in &lines {
            let entries: Vec<&Key> = members.iter().chain(std::iter::once(total)).collect();
            let hidden: Vec<&Key> = entries
                .iter()
                .copied()
                .filter(|k| out.contains_key(*k))
                .collect();
            if hidden.is_empty() {
                continue;
            }
            let hidden_cells: BTreeSet<&Key> =
                members.iter().filter(|k| out.contains_key(*k)).collect();
            let persons: usize = hidden_cells.iter().map(|k| cells[*k].persons()).sum();
            let total_hidden = out.contains_key(total);
            // Safe when the total is hidden too and some cell with it, or when two or more cells are
            // hidden and their union is not a small group.
            let safe = if total_hidden {
                hidden.len() >= 2 || members.is_empty()
            } else {
                hidden.len() >= 2 && persons >= rules.min_cell
            };
            if safe {
                continue;
            }
            // Hide the released cell with the fewest persons (the total only if no cell is left).
            let candidate = members
                .iter()
                .filter(|k| !out.contains_key(*k))
                .min_by_key(|k| (cells[*k].persons(), (*k).clone()))
                .or_else(|| (!total_hidden).then_some(total));
            if let Some(k) = candidate {
                out.insert(k.clone(), Suppressed::Secondary);
                changed = true;
            }
        }
        if !changed {
            return out;
        }
    }
}

/// A count rounded to a multiple of `to` (half up), as statistics offices publish.
pub fn round_count(n: f64, to: u32) -> f64 {
    if to <= 1 {
        return n;
    }
    let to = f64::from(to);
    (n / to + 0.5).floor() * to
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::{Row, build};

    /// A table of persons: each (dims, person, wage).
    fn rows(spec: &[(&str, &str, usize)]) -> Vec<Row> {
        let mut out = Vec::new();
        let mut unit = 0;
        for (a, b, n) in spec {
            for _ in 0..*n {
                unit += 1;
                out.push(Row {
                    dims: vec![(*a).into(), (*b).into()],
                    unit,
                    record: unit,
                    employer: None,
                    measures: vec![1000.0],
                });
            }
        }
        out
    }

    fn key(a: Option<&str>, b: Option<&str>) -> Key {
        vec![a.map(Into::into), b.map(Into::into)]
    }

    #[test]
    fn a_small_cell_is_suppressed_and_a_partner_in_each_of_its_lines_too() {
        // Region × gender: BRU/F has 3 persons.
        let r = rows(&[
            ("BRU", "F", 3),
            ("BRU", "M", 40),
            ("VLA", "F", 50),
            ("VLA", "M", 60),
            ("WAL", "F", 30),
            ("WAL", "M", 35),
        ]);
        let cells = build(&r, 2, 1);
        let s = suppress(&cells, 2, &[], &Rules::default());
        assert_eq!(
            s.get(&key(Some("BRU"), Some("F"))),
            Some(&Suppressed::Frequency)
        );
        // Row BRU: BRU/M must go (else BRU total − BRU/M = BRU/F).
        assert_eq!(
            s.get(&key(Some("BRU"), Some("M"))),
            Some(&Suppressed::Secondary)
        );
        // Column F: another F cell must go, and then its row partner too.
        let f_hidden = ["VLA", "WAL"]
            .iter()
            .filter(|r| s.contains_key(&key(Some(r), Some("F"))))
            .count();
        assert_eq!(f_hidden, 1, "{s:?}");
        // Margins and the grand total stay released.
        assert!(!s.contains_key(&key(None, None)));
        assert!(!s.contains_key(&key(Some("BRU"), None)));
        assert!(!s.contains_key(&key(None, Some("F"))));
        // No line may hold exactly one hidden entry.
        for d in 0..2 {
            let mut lines: BTreeMap<Key, usize> = BTreeMap::new();
            for k in cells.keys().filter(|k| k[d].is_some()) {
                let mut t = k.clone();
                t[d] = None;
                *lines.entry(t).or_default() += usize::from(s.contains_key(k));
            }
            for (t, n) in lines {
                let n = n + usize::from(s.contains_key(&t));
                assert_ne!(n, 1, "line of {t:?} has one hidden entry: {s:?}");
            }
        }
    }

    #[test]
    fn two_small_cells_in_a_line_do_not_protect_each_other_when_together_still_small() {
        // A line of three cells: 4 + 3 persons hidden, together 7 < 10: a third cell goes.
        let r = rows(&[("A", "x", 4), ("B", "x", 3), ("C", "x", 50), ("D", "x", 60)]);
        let cells = build(&r, 2, 1);
        let s = suppress(&cells, 2, &[], &Rules::default());
        assert_eq!(
            s.get(&key(Some("C"), Some("x"))),
            Some(&Suppressed::Secondary)
        );
        assert!(!s.contains_key(&key(Some("D"), Some("x"))));
    }

    #[test]
    fn dominance_and_p_percent_catch_a_large_contributor() {
        let mut r = rows(&[("A", "x", 20)]);
        // One person earns most of the cell's total.
        r[0].measures[0] = 1_000_000.0;
        let cells = build(&r, 2, 1);
        let cell = &cells[&key(Some("A"), Some("x"))];
        assert_eq!(
            primary(cell, &[0], &Rules::default()),
            Some(Suppressed::Dominance)
        );
        // Counts only: the same cell is released.
        assert_eq!(primary(cell, &[], &Rules::default()), None);
        // Two equal large contributors (120,000 of 138,000 = 87 % is over 85 %): dominance.
        let mut r = rows(&[("A", "x", 20)]);
        r[0].measures[0] = 60_000.0;
        r[1].measures[0] = 60_000.0;
        let cells = build(&r, 2, 1);
        assert_eq!(
            primary(&cells[&key(Some("A"), Some("x"))], &[0], &Rules::default()),
            Some(Suppressed::Dominance)
        );
        // p % alone: with k = 100 %, the others (18 × 1000) are under 10 % of the largest (200,000).
        let mut r = rows(&[("A", "x", 20)]);
        r[0].measures[0] = 200_000.0;
        r[1].measures[0] = 150_000.0;
        let rules = Rules {
            dominance_k: 100.0,
            ..Rules::default()
        };
        let cells = build(&r, 2, 1);
        assert_eq!(
            primary(&cells[&key(Some("A"), Some("x"))], &[0], &rules),
            Some(Suppressed::PPercent)
        );
        // An even spread passes every rule.
        let cells = build(&rows(&[("A", "x", 20)]), 2, 1);
        assert_eq!(
            primary(&cells[&key(Some("A"), Some("x"))], &[0], &rules),
            None
        );
    }

    #[test]
    fn counts_round_to_the_base() {
        assert_eq!(round_count(12.0, 5), 10.0);
        assert_eq!(round_count(13.0, 5), 15.0);
        assert_eq!(round_count(13.0, 1), 13.0);
    }
}
