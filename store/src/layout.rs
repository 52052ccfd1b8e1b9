//! Object names: Hive-style partitions that DuckDB and Spark read, and the chain of seals.
//!
//! ```text
//! events/day=2025-03-04/source=hub/part-<first seq>-<last seq>-<random>.parquet
//! rejections/day=2025-03-04/source=hub/part-….parquet
//! chain/seal-0000000012.json
//! index/day=2025-03-04/source=hub/part-….tantivy   (lookup index of the partition, derived data)
//! ```
//! The `source` column is not stored in the files: it is the partition value (as `day` is the day of `ts`).

/// Directory of event partitions.
pub const EVENTS: &str = "events";
/// Directory of rejection-log partitions.
pub const REJECTIONS: &str = "rejections";
/// Directory of seals.
pub const CHAIN: &str = "chain";
/// Directory of lookup indexes (derived data, one blob per event partition).
pub const INDEX: &str = "index";

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
    }
}
