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

/// Writes the demo's access files under `dir` unless they are there already.
pub fn install_access_files(dir: &std::path::Path) -> anyhow::Result<bool> {
    if dir.exists() {
        return Ok(false);
    }
    for (rel, text) in ACCESS_FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
    }
    Ok(true)
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
