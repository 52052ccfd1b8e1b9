//! The public domain of every dimension: which cells an answer has, decided before any row is read.
//!
//! A cell that appears only because somebody is in it would tell that somebody exists. So the cells
//! of an answer are every combination of the dimensions' published code lists (and the quarters the
//! table holds, which the chain publishes), each released with noise whether it holds anyone or not;
//! a row whose value is outside its list is left out of the answer.

use iris_labour::LabourTable;
use iris_labour::codes;
use iris_labour::tables::Check;

/// How a missing value of an optional dimension shows.
pub const NONE: &str = "(none)";

/// Age classes of the derived `age_class` (the `AGE_CLASS` expression of the tables).
pub const AGE_CLASSES: &[&str] = &["15-24", "25-34", "35-44", "45-54", "55-64", "65+"];

/// The values `column` of `table` may take, given the quarters the table holds.
pub fn values(table: &LabourTable, column: &str, quarters: &[String]) -> Vec<String> {
    if column == "age_class" {
        return AGE_CLASSES.iter().map(|s| (*s).to_owned()).collect();
    }
    let Some(c) = table.column(column) else {
        return Vec::new();
    };
    let own = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let mut v: Vec<String> = match c.check {
        Check::Quarter => quarters.to_vec(),
        Check::Code(list) => own(list),
        Check::Sector => codes::SECTORS.iter().map(|s| s.0.to_owned()).collect(),
        Check::Division => codes::SECTORS
            .iter()
            .flat_map(|s| s.2.iter().map(|d| (*d).to_owned()))
            .collect(),
        Check::JointCommittee => codes::SECTORS
            .iter()
            .flat_map(|s| s.3.iter().map(|d| (*d).to_owned()))
            .collect(),
        Check::Arrondissement => codes::ARRONDISSEMENTS
            .iter()
            .map(|a| a.0.to_owned())
            .collect(),
        // Numbers and dates are not dimensions.
        Check::Niss | Check::Bce | Check::Int { .. } | Check::Float { .. } | Check::Date => {
            Vec::new()
        }
    };
    v.sort();
    v.dedup();
    if c.optional {
        v.push(NONE.to_owned());
    }
    v
}

/// Quarters `YYYY-Qn` from the paths of a table's live partitions (`…/quarter=YYYY-Qn/…`), sorted.
pub fn quarters_of<'a>(paths: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut q: Vec<String> = paths
        .filter_map(|p| {
            p.split('/')
                .find_map(|seg| seg.strip_prefix("quarter="))
                .map(str::to_owned)
        })
        .collect();
    q.sort();
    q.dedup();
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dimension_of_every_table_has_a_domain() {
        let quarters = vec!["2025-Q1".to_owned()];
        for t in iris_labour::TABLES {
            for c in t.columns {
                if c.role == iris_labour::ColumnRole::Dimension {
                    assert!(
                        !values(t, c.name, &quarters).is_empty(),
                        "{}.{}",
                        t.name,
                        c.name
                    );
                }
            }
            for d in t.derived {
                assert!(!values(t, d.0, &quarters).is_empty());
            }
        }
    }

    #[test]
    fn quarters_come_from_partition_paths() {
        let q = quarters_of(
            [
                "tables/positions/quarter=2025-Q2/part-1.parquet",
                "tables/positions/quarter=2025-Q1/part-2.parquet",
                "tables/positions/quarter=2025-Q1/part-3.parquet",
            ]
            .into_iter(),
        );
        assert_eq!(q, ["2025-Q1", "2025-Q2"]);
    }
}
