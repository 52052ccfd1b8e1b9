//! The published reports: SQL files under `sql/reports/`, each a researcher query that the desk
//! protects like any other. Embedded in the binary, so they run from any directory.

/// (name, SQL) of every report.
pub const REPORTS: &[(&str, &str)] = &[
    (
        "employment_by_sector_region",
        include_str!("../../sql/reports/employment_by_sector_region.sql"),
    ),
    (
        "wage_quartiles_by_age_gender",
        include_str!("../../sql/reports/wage_quartiles_by_age_gender.sql"),
    ),
    (
        "job_inflows",
        include_str!("../../sql/reports/job_inflows.sql"),
    ),
    (
        "job_outflows",
        include_str!("../../sql/reports/job_outflows.sql"),
    ),
    (
        "fte_by_joint_committee",
        include_str!("../../sql/reports/fte_by_joint_committee.sql"),
    ),
    (
        "positions_by_region",
        include_str!("../../sql/reports/positions_by_region.sql"),
    ),
];

/// The SQL of report `name`.
pub fn report(name: &str) -> Option<&'static str> {
    REPORTS.iter().find(|r| r.0 == name).map(|r| r.1)
}

/// The first comment line of a report: its title.
pub fn title(sql: &str) -> &str {
    sql.lines()
        .find_map(|l| l.trim().strip_prefix("--"))
        .map(str::trim)
        .unwrap_or("")
}
