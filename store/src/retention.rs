//! Retention (issue 16): expired event files are deleted under a signed retention entry of the chain
//! that names each of them with its digests, so the log still verifies (`verify` lists them as
//! `PRUNED`, never `DELETED`) and the seals and Merkle heads of the pruned files stay in the log.
//!
//! A file expires when every row it can hold falls before the cut-off date: a daily partition
//! (`events/`, `rejections/`) by its `day=`, a compacted file by the last day of its `month=`.
//! Statistics tables (`tables/`) are never pruned here: they have their own terms.

use crate::error::StoreError;
use crate::layout::index_path;
use crate::manifest::{FileKind, LiveFile};
use crate::seal::{FileDigest, Seal, SealKind};
use crate::sealer::Sealer;
use chrono::Datelike;
/// The date type of cut-offs, re-exported for callers without their own `chrono`.
pub use chrono::NaiveDate;
use object_store::ObjectStoreExt;

/// The days a live file's rows can fall on, from its path; `None` for files retention never prunes.
pub fn day_range(path: &str, kind: FileKind) -> Option<(NaiveDate, NaiveDate)> {
    let segment = |key: &str| path.split('/').find_map(|s| s.strip_prefix(key));
    match kind {
        FileKind::Events | FileKind::Rejections => {
            let day = NaiveDate::parse_from_str(segment("day=")?, "%Y-%m-%d").ok()?;
            Some((day, day))
        }
        FileKind::Compacted => {
            let first =
                NaiveDate::parse_from_str(&format!("{}-01", segment("month=")?), "%Y-%m-%d")
                    .ok()?;
            let next = if first.month() == 12 {
                NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
            }?;
            Some((first, next.pred_opt()?))
        }
        FileKind::Table => None,
    }
}

/// A file a retention run deletes.
#[derive(Clone, Debug, PartialEq)]
pub struct Expired {
    /// The file as the retention seal names it.
    pub file: FileDigest,
    pub kind: FileKind,
    /// First and last day its rows can fall on.
    pub days: (NaiveDate, NaiveDate),
}

/// What a retention run deletes (or, in a dry run, would delete).
#[derive(Clone, Debug, Default)]
pub struct RetentionSummary {
    /// The cut-off: files whose rows are all before this day.
    pub before: Option<NaiveDate>,
    pub expired: Vec<Expired>,
    /// Files an earlier, interrupted run had pruned but not yet deleted (deleted now).
    pub leftovers: Vec<String>,
    /// The retention seal written (none in a dry run or when nothing expired).
    pub seal: Option<u64>,
}

impl RetentionSummary {
    /// Event rows (daily and compacted) among the expired files.
    pub fn events(&self) -> u64 {
        self.rows(|k| matches!(k, FileKind::Events | FileKind::Compacted))
    }

    /// Refused-record rows among the expired files.
    pub fn rejections(&self) -> u64 {
        self.rows(|k| k == FileKind::Rejections)
    }

    fn rows(&self, which: impl Fn(FileKind) -> bool) -> u64 {
        self.expired
            .iter()
            .filter(|e| which(e.kind))
            .map(|e| e.file.rows)
            .sum()
    }

    /// Bytes of the expired files.
    pub fn bytes(&self) -> u64 {
        self.expired.iter().map(|e| e.file.bytes).sum()
    }

    /// First and last day of the expired rows.
    pub fn days(&self) -> Option<(NaiveDate, NaiveDate)> {
        let first = self.expired.iter().map(|e| e.days.0).min()?;
        let last = self.expired.iter().map(|e| e.days.1).max()?;
        Some((first, last))
    }
}

fn expired(path: &str, f: &LiveFile, before: NaiveDate) -> Option<Expired> {
    let days = day_range(path, f.kind)?;
    (days.1 < before).then(|| Expired {
        file: FileDigest {
            path: path.to_owned(),
            sha256: f.sha256.clone(),
            rows: f.rows,
            bytes: f.bytes,
            index_sha256: f.index_sha256.clone().unwrap_or_default(),
        },
        kind: f.kind,
        days,
    })
}

impl Sealer {
    /// The live files whose rows all fall before `before`.
    pub fn expired_files(&self, before: NaiveDate) -> Vec<Expired> {
        self.manifest()
            .files
            .iter()
            .filter_map(|(path, f)| expired(path, f, before))
            .collect()
    }

    /// `iris retention --before DATE`: appends one retention seal naming every expired file (path,
    /// SHA-256 of its bytes and of its index, rows, bytes), then deletes those files and their lookup
    /// indexes, and records the run as an audit event of source `iris` by `by`. With `dry_run` it only
    /// says what would go. Files an interrupted earlier run pruned but left behind are deleted first.
    ///
    /// The caller must have remembered the Merkle heads of the expired files first (the proof layer
    /// does), since the files can never be read again.
    pub async fn prune(
        &mut self,
        before: NaiveDate,
        by: &str,
        dry_run: bool,
    ) -> Result<RetentionSummary, StoreError> {
        let mut summary = RetentionSummary {
            before: Some(before),
            expired: self.expired_files(before),
            ..RetentionSummary::default()
        };
        let loc = self.location().clone();
        for path in self.manifest().pruned.keys() {
            if loc.store.head(&loc.path(path)).await.is_ok() {
                summary.leftovers.push(path.clone());
            }
        }
        // Retention covers only what is still as its seal made it: a file already gone or changed is
        // tampering (`verify` names it DELETED/CHANGED), and a retention entry must never turn that
        // into a clean PRUNED.
        let mut damaged = Vec::new();
        for e in &summary.expired {
            let why = match loc.store.get(&loc.path(&e.file.path)).await {
                Ok(got) => match got.bytes().await {
                    Ok(bytes) if crate::seal::sha256_hex(&bytes) == e.file.sha256 => continue,
                    Ok(_) => "its bytes differ from its seal",
                    Err(_) => "it cannot be read",
                },
                Err(object_store::Error::NotFound { .. }) => "it is missing",
                Err(err) => return Err(err.into()),
            };
            damaged.push(format!("{} ({why})", e.file.path));
        }
        if !damaged.is_empty() {
            return Err(StoreError::Other(format!(
                "retention refused: {} expired file(s) are not as their seals made them, and a retention entry would hide that: {}. Run `iris verify` and restore them first",
                damaged.len(),
                damaged.join(", ")
            )));
        }
        if dry_run {
            return Ok(summary);
        }
        for path in &summary.leftovers {
            delete_with_index(self, path).await?;
        }
        let Some((first, last)) = summary.days() else {
            return Ok(summary);
        };
        let note = format!(
            "by {by}: {} files, {} events and {} refused records of {first}…{last} deleted (retention: before {before})",
            summary.expired.len(),
            summary.events(),
            summary.rejections()
        );
        // The entry first, then the deletions: a crash in between leaves pruned files that are
        // still present (named, deleted by the next run), never a file gone without its entry.
        let seal = self
            .append(Seal {
                kind: SealKind::Retention,
                path: format!("retention/before={before}"),
                day: before.to_string(),
                rows: summary.events() + summary.rejections(),
                bytes: summary.bytes(),
                pruned: summary.expired.iter().map(|e| e.file.clone()).collect(),
                note,
                ..Seal::default()
            })
            .await?;
        summary.seal = Some(seal.n);
        for e in &summary.expired {
            delete_with_index(self, &e.file.path).await?;
        }
        self.audit_action(
            &seal,
            by,
            "iris.retention",
            "iris retention",
            format!("retention before {before}"),
            iris_ingest::Operation::Delete,
        )
        .await?;
        Ok(summary)
    }
}

/// Deletes a file and its lookup index (either may already be gone).
async fn delete_with_index(sealer: &Sealer, path: &str) -> Result<(), StoreError> {
    let loc = sealer.location();
    for p in [path.to_owned(), index_path(path)] {
        match loc.store.delete(&loc.path(&p)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_expires_only_when_all_its_days_are_before_the_cut_off() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        let daily = "events/day=2025-03-04/source=hub/part-1-2-ab.parquet";
        assert_eq!(
            day_range(daily, FileKind::Events),
            Some((d("2025-03-04"), d("2025-03-04")))
        );
        let month = "compacted/month=2024-12/bucket=0-of-2/part-ab.parquet";
        assert_eq!(
            day_range(month, FileKind::Compacted),
            Some((d("2024-12-01"), d("2024-12-31")))
        );
        assert_eq!(
            day_range(
                "compacted/month=2024-02/bucket=0-of-1/p.parquet",
                FileKind::Compacted
            )
            .map(|r| r.1),
            Some(d("2024-02-29"))
        );
        assert_eq!(
            day_range("tables/x/quarter=2025-Q1/p.parquet", FileKind::Table),
            None
        );
        assert_eq!(day_range("events/weird/p.parquet", FileKind::Events), None);
        let f = LiveFile {
            kind: FileKind::Compacted,
            sha256: "aa".into(),
            rows: 3,
            bytes: 10,
            seal: 1,
            index_sha256: None,
        };
        assert!(
            expired(month, &f, d("2024-12-31")).is_none(),
            "a day inside"
        );
        assert!(expired(month, &f, d("2025-01-01")).is_some());
    }
}
