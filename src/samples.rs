//! The sample data shipped in `data-samples/`, embedded so `iris serve --demo` works from anywhere.

use iris_ingest::formats::Format;
use iris_ingest::formats::mapping::Mapping;

/// Canonical JSON lines.
pub const EVENTS_JSONL: &str = include_str!("../data-samples/events.jsonl");
/// A portal's CSV export and its mapping.
pub const PORTAL_CSV: &str = include_str!("../data-samples/portal-export.csv");
pub const PORTAL_MAPPING: &str = include_str!("../data-samples/formats/portal-csv.toml");
/// A mainframe's semicolon-separated export and its mapping.
pub const LEGACY_TXT: &str = include_str!("../data-samples/legacy-export.txt");
pub const LEGACY_MAPPING: &str = include_str!("../data-samples/formats/legacy-semicolon.toml");

/// The labour-market samples (`iris labour gen --persons 2000 --seed 7`), by table.
pub const LABOUR_CSV: [(&str, &str); 3] = [
    (
        "declarations.csv",
        include_str!("../data-samples/labour/declarations.csv"),
    ),
    (
        "relations.csv",
        include_str!("../data-samples/labour/relations.csv"),
    ),
    (
        "positions.csv",
        include_str!("../data-samples/labour/positions.csv"),
    ),
];

/// The demo's access files (directory and policies), by path under DATA/access.
pub const ACCESS_FILES: [(&str, &str); 6] = [
    (
        "directory/institutions.csv",
        include_str!("../data-samples/access/directory/institutions.csv"),
    ),
    (
        "directory/users.csv",
        include_str!("../data-samples/access/directory/users.csv"),
    ),
    (
        "directory/supervision.csv",
        include_str!("../data-samples/access/directory/supervision.csv"),
    ),
    (
        "policies/deliberations.toml",
        include_str!("../data-samples/access/policies/deliberations.toml"),
    ),
    (
        "policies/citizen.toml",
        include_str!("../data-samples/access/policies/citizen.toml"),
    ),
    (
        "policies/projects.toml",
        include_str!("../data-samples/access/policies/projects.toml"),
    ),
];

/// Writes the demo's access files under `dir` unless they are there already; the deliberations'
/// periods of events are moved by `shift_days`, as the demo's events are (see [`demo_shift_days`]).
pub fn install_access_files(dir: &std::path::Path, shift_days: i64) -> anyhow::Result<bool> {
    if dir.exists() {
        return Ok(false);
    }
    for (rel, text) in ACCESS_FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let text = if rel.ends_with("deliberations.toml") {
            shift_periods(text, shift_days)
        } else {
            text.to_owned()
        };
        std::fs::write(&path, text)?;
    }
    Ok(true)
}

/// The last day the sample events fall on.
const LAST_SAMPLE_DAY: (i32, u32, u32) = (2025, 3, 31);

/// Days to add to the samples' timestamps so their last day falls in the week before `today`: whole
/// weeks (weekdays and office hours stay as they are), never backwards, the same all day long.
pub fn demo_shift_days(today: chrono::NaiveDate) -> i64 {
    let (y, m, d) = LAST_SAMPLE_DAY;
    let last = chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap_or(today);
    let gap = (today - last).num_days() - 1;
    if gap < 0 { 0 } else { gap / 7 * 7 }
}

/// The three event samples with their timestamps moved `days` later (the files stay as they are:
/// the demo shifts them as it loads them). A field that does not parse is left alone, so a record
/// the samples reject on purpose is still rejected for the same reason.
pub fn shifted_events(days: i64) -> anyhow::Result<Vec<(&'static str, Format, String)>> {
    let by = chrono::Duration::days(days);
    Ok(all()?
        .into_iter()
        .map(|(name, format, text)| {
            let shifted = match name {
                "data-samples/events.jsonl" => map_lines(text, |l| shift_json_ts(l, by)),
                // Their first column is the local timestamp, in their mapping's format.
                "data-samples/portal-export.csv" => {
                    map_lines(text, |l| shift_first_field(l, ',', "%d/%m/%Y %H:%M:%S", by))
                }
                _ => map_lines(text, |l| shift_first_field(l, ';', "%Y%m%d%H%M%S", by)),
            };
            (name, format, shifted)
        })
        .collect())
}

fn map_lines(text: &str, f: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        out.push_str(&f(body).unwrap_or_else(|| body.to_owned()));
        out.push_str(end);
    }
    out
}

/// `"ts":"<RFC 3339>"` moved by `by`, the rest of the line byte for byte.
fn shift_json_ts(line: &str, by: chrono::Duration) -> Option<String> {
    let key = "\"ts\":";
    let after = line.find(key)? + key.len();
    let start = after + line[after..].find('"')? + 1;
    if !line[after..start - 1].trim().is_empty() {
        return None;
    }
    let len = line[start..].find('"')?;
    let ts = chrono::DateTime::parse_from_rfc3339(&line[start..start + len]).ok()?;
    let moved = (ts + by).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    Some(format!("{}{moved}{}", &line[..start], &line[start + len..]))
}

fn shift_first_field(line: &str, sep: char, fmt: &str, by: chrono::Duration) -> Option<String> {
    let (first, rest) = line.split_once(sep)?;
    let ts = chrono::NaiveDateTime::parse_from_str(first, fmt).ok()?;
    Some(format!("{}{sep}{rest}", (ts + by).format(fmt)))
}

/// `period = { from = "DAY", to = "DAY" }` lines with both days moved by `days`.
fn shift_periods(text: &str, days: i64) -> String {
    map_lines(text, |line| {
        if !line.trim_start().starts_with("period") {
            return None;
        }
        let mut out = line.to_owned();
        for part in line.split('"') {
            if let Ok(d) = chrono::NaiveDate::parse_from_str(part, "%Y-%m-%d") {
                let moved = (d + chrono::Duration::days(days))
                    .format("%Y-%m-%d")
                    .to_string();
                out = out.replacen(&format!("\"{part}\""), &format!("\"{moved}\""), 1);
            }
        }
        Some(out)
    })
}

/// Every sample: name, format, content.
pub fn all() -> anyhow::Result<Vec<(&'static str, Format, &'static str)>> {
    Ok(vec![
        ("data-samples/events.jsonl", Format::JsonLines, EVENTS_JSONL),
        (
            "data-samples/portal-export.csv",
            mapped(PORTAL_MAPPING)?,
            PORTAL_CSV,
        ),
        (
            "data-samples/legacy-export.txt",
            mapped(LEGACY_MAPPING)?,
            LEGACY_TXT,
        ),
    ])
}

fn mapped(text: &str) -> anyhow::Result<Format> {
    Ok(Format::Mapped(Box::new(
        Mapping::parse(text).map_err(|e| anyhow::anyhow!("embedded mapping: {e}"))?,
    )))
}

/// Resolves a format name: `jsonl`, a mapping in DATA/formats or ./data-samples/formats, or a built-in one.
pub fn resolve_format(name: &str, dir: &iris_store::datadir::DataDir) -> anyhow::Result<Format> {
    let dirs = [
        dir.root.join("formats"),
        std::path::PathBuf::from("data-samples/formats"),
    ];
    match Format::resolve(name, &dirs) {
        Ok(f) => Ok(f),
        Err(e) => match name {
            "portal-csv" => mapped(PORTAL_MAPPING),
            "legacy-semicolon" => mapped(LEGACY_MAPPING),
            _ => Err(e.into()),
        },
    }
}
