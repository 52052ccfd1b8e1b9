//! Misuse patterns for security advisers: saved queries under `sql/patterns/`, embedded in the binary
//! and listed by `GET /v1/patterns`. They run through `POST /v1/sql` like any query, so within the
//! caller's scope and logged.

use axum::Json;

/// (name, SQL) of every pattern; the first comment line is its title.
pub const PATTERNS: &[(&str, &str)] = &[
    (
        "users_by_distinct_persons",
        include_str!("../../sql/patterns/users_by_distinct_persons.sql"),
    ),
    (
        "outside_office_hours",
        include_str!("../../sql/patterns/outside_office_hours.sql"),
    ),
    (
        "nok_rates",
        include_str!("../../sql/patterns/nok_rates.sql"),
    ),
    (
        "much_consulted_persons",
        include_str!("../../sql/patterns/much_consulted_persons.sql"),
    ),
];

/// `GET /v1/patterns`: name, title and SQL of each pattern.
pub async fn get_patterns() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "patterns": PATTERNS.iter().map(|(name, sql)| serde_json::json!({
            "name": name, "title": iris_research::reports::title(sql), "sql": sql,
        })).collect::<Vec<_>>()
    }))
}
