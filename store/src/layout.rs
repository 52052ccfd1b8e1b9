//! Object names: Hive-style partitions that DuckDB and Spark read, and the chain of seals.
//!
//! ```text
//! events/day=2025-03-04/source=hub/part-<first seq>-<last seq>-<random>.parquet
//! rejections/day=2025-03-04/source=hub/part-….parquet
//! chain/seal-0000000012.json
//! index/day=2025-03-04/source=hub/part-….tantivy   (lookup index of the partition, derived data)
//! compacted/month=2025-03/bucket=3-of-8/part-<random>.parquet   (a month's events of one subject bucket)
//! tables/declarations/quarter=2025-Q1/part-<random>.parquet   (a statistics table, sealed in the same chain)
//! index/compacted/month=2025-03/bucket=3-of-8/part-….tantivy
//! ```
//! The `source` column is not stored in the files: it is the partition value (as `day` is the day of `ts`).

/// Directory of event partitions.
pub const EVENTS: &str = "events";
/// Directory of rejection-log partitions.
pub const REJECTIONS: &str = "rejections";
/// Directory of seals.
pub const CHAIN: &str = "chain";
/// Directory of statistics tables (labour-market data): `tables/<table>/quarter=<YYYY-Qn>/part-….parquet`.
pub const TABLES: &str = "tables";

/// Relative path of a new partition of statistics table `table` for `quarter`.
pub fn table_path(table: &str, quarter: &str, nonce: &str) -> String {
    format!("{TABLES}/{table}/quarter={quarter}/part-{nonce}.parquet")
}

/// Directory of lookup indexes (derived data, one blob per event partition).
pub const INDEX: &str = "index";
/// Directory of compacted event files (`month` and `bucket` are their Hive partition columns; `day` and
/// `source` are stored in the files).
pub const COMPACTED: &str = "compacted";
/// Hive partition columns of compacted files, in path order.
pub const COMPACTED_PARTITION_COLUMNS: [&str; 2] = ["month", "bucket"];

/// Relative path of a compacted file: bucket `bucket` (from 0) of `buckets` for `month` (`YYYY-MM`).
pub fn compacted_path(month: &str, bucket: u32, buckets: u32, nonce: &str) -> String {
    format!("{COMPACTED}/month={month}/bucket={bucket}-of-{buckets}/part-{nonce}.parquet")
}

/// The `(bucket, buckets)` of a compacted file from its `bucket=B-of-N` path segment.
pub fn compacted_bucket(path: &str) -> Option<(u32, u32)> {
    let seg = path.split('/').find_map(|s| s.strip_prefix("bucket="))?;
    let (b, n) = seg.split_once("-of-")?;
    let (b, n) = (b.parse().ok()?, n.parse().ok()?);
    (b < n).then_some((b, n))
}

/// The bucket of a subject among `buckets`: FNV-1a of its id. Fixed forever, since it decides which
/// compacted file holds the subject's events (and so which files a trace may skip).
pub fn subject_bucket(subject_id: &str, buckets: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in subject_id.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(buckets.max(1))) as u32
}

/// Relative path of the lookup index of an event partition: `index/day=…/source=…/part-….tantivy`.
pub fn index_path(partition: &str) -> String {
    let rest = partition
        .strip_prefix(&format!("{EVENTS}/"))
        .unwrap_or(partition);
    let stem = rest.strip_suffix(".parquet").unwrap_or(rest);
    format!("{INDEX}/{stem}.tantivy")
}

/// Relative path of a new partition file.
pub fn partition_path(
    dir: &str,
    day: &str,
    source: &str,
    first: u64,
    last: u64,
    nonce: &str,
) -> String {
    format!("{dir}/day={day}/source={source}/part-{first:012}-{last:012}-{nonce}.parquet")
}

/// Relative path of seal number `n`.
pub fn seal_path(n: u64) -> String {
    format!("{CHAIN}/seal-{n:010}.json")
}

/// The seal number in a seal's file name, if it is one.
pub fn seal_number(rel: &str) -> Option<u64> {
    rel.strip_prefix("chain/seal-")?
        .strip_suffix(".json")?
        .parse()
        .ok()
}

/// A random hex nonce, so two writers never pick the same file name.
pub fn nonce() -> String {
    let mut b = [0u8; 6];
    // A failing OS RNG only makes names less unique; the seq range already tells them apart.
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(seal_number(&seal_path(42)), Some(42));
        assert_eq!(seal_number("chain/seal-x.json"), None);
        let p = partition_path(EVENTS, "2025-03-04", "hub", 1, 99, "ab");
        assert_eq!(
            p,
            "events/day=2025-03-04/source=hub/part-000000000001-000000000099-ab.parquet"
        );
        assert_eq!(
            index_path(&p),
            "index/day=2025-03-04/source=hub/part-000000000001-000000000099-ab.tantivy"
        );
        let c = compacted_path("2025-03", 3, 8, "ab");
        assert_eq!(c, "compacted/month=2025-03/bucket=3-of-8/part-ab.parquet");
        assert_eq!(compacted_bucket(&c), Some((3, 8)));
        assert_eq!(
            compacted_bucket("compacted/month=2025-03/bucket=8-of-8/x"),
            None
        );
        assert_eq!(
            index_path(&c),
            "index/compacted/month=2025-03/bucket=3-of-8/part-ab.tantivy"
        );
    }

    #[test]
    fn buckets_are_stable_and_spread() {
        // Pinned: changing the hash would misplace every compacted subject.
        assert_eq!(
            subject_bucket("85073003328", 8),
            subject_bucket("85073003328", 8)
        );
        assert_eq!(subject_bucket("85073003328", 1), 0);
        let mut counts = [0u32; 8];
        for i in 0..8000u32 {
            counts[subject_bucket(&format!("{:011}", 85_000_000_000u64 + u64::from(i) * 97), 8)
                as usize] += 1;
        }
        assert!(counts.iter().all(|c| (700..1300).contains(c)), "{counts:?}");
    }
}
