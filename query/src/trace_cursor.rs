//! Where a page of a trace ends: the last event returned, named by its place in the trace's order
//! `(ts, source, source_seq)`. That order is total — a source's sequence numbers are unique — so the next
//! page (every event strictly after the cursor) neither repeats nor skips an event, whichever files
//! (daily or compacted) hold them by then.

use std::fmt;

/// The position of one event in a trace's order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TraceCursor {
    /// `ts`, microseconds since the epoch (UTC).
    pub ts_micros: i64,
    pub source: String,
    pub source_seq: u64,
}

/// A cursor that is not one Iris wrote.
#[derive(Debug, thiserror::Error)]
#[error("bad cursor `{0}`: pass back the `next` of the previous page unchanged")]
pub struct BadCursor(pub String);

impl fmt::Display for TraceCursor {
    /// `<ts µs>.<source_seq>.<source as hex>`: URL-safe whatever the source's name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}",
            self.ts_micros,
            self.source_seq,
            hex::encode(self.source.as_bytes())
        )
    }
}

impl std::str::FromStr for TraceCursor {
    type Err = BadCursor;
    fn from_str(s: &str) -> Result<TraceCursor, BadCursor> {
        let bad = || BadCursor(s.chars().take(80).collect());
        let mut parts = s.splitn(3, '.');
        let ts_micros = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let source_seq = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let source = parts
            .next()
            .and_then(|p| hex::decode(p).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|s| !s.is_empty())
            .ok_or_else(bad)?;
        Ok(TraceCursor {
            ts_micros,
            source,
            source_seq,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_bad_ones_are_refused() {
        let c = TraceCursor {
            ts_micros: -5,
            source: "hub.été/x".into(),
            source_seq: 42,
        };
        assert_eq!(c.to_string().parse::<TraceCursor>().expect("parse"), c);
        for bad in [
            "", "1", "1.2", "1.2.", "x.2.6869", "1.y.6869", "1.2.zz", "1.2.ff",
        ] {
            assert!(bad.parse::<TraceCursor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_order_is_time_then_source_then_number() {
        let c = |ts, s: &str, n| TraceCursor {
            ts_micros: ts,
            source: s.into(),
            source_seq: n,
        };
        let mut v = vec![c(2, "a", 1), c(1, "b", 0), c(1, "a", 9), c(1, "a", 2)];
        v.sort();
        assert_eq!(v, [c(1, "a", 2), c(1, "a", 9), c(1, "b", 0), c(2, "a", 1)]);
    }
}
