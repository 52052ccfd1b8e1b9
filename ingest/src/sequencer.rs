//! Idempotency and ordering on the `source`/`source_seq` pair.
//!
//! A collector may resend a batch safely: a sequence number already stored is a duplicate (acknowledged,
//! stored once). A number at or below the highest one seen that was never stored goes backwards and is
//! refused. Stored and refused numbers are both "accounted for"; the holes between them are gaps.

use std::collections::{BTreeMap, HashMap};

/// A set of `u64` kept as disjoint inclusive ranges: sequence numbers are mostly contiguous.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntervalSet {
    /// start → end (inclusive), disjoint and not adjacent.
    ranges: BTreeMap<u64, u64>,
}

impl IntervalSet {
    /// Whether `v` is in the set.
    pub fn contains(&self, v: u64) -> bool {
        self.ranges
            .range(..=v)
            .next_back()
            .is_some_and(|(_, &end)| end >= v)
    }

    /// Adds one value.
    pub fn insert(&mut self, v: u64) {
        self.insert_range(v, v);
    }

    /// Adds the inclusive range `start..=end`, merging with neighbours.
    pub fn insert_range(&mut self, mut start: u64, mut end: u64) {
        if start > end {
            return;
        }
        if let Some((&s, &e)) = self.ranges.range(..=start).next_back()
            && e.saturating_add(1) >= start
        {
            if e >= end {
                return;
            }
            start = s;
            end = end.max(e);
        }
        let absorbed: Vec<(u64, u64)> = self
            .ranges
            .range(start..)
            .take_while(|(s, _)| **s <= end.saturating_add(1))
            .map(|(s, e)| (*s, *e))
            .collect();
        for (s, e) in absorbed {
            self.ranges.remove(&s);
            end = end.max(e);
        }
        self.ranges.insert(start, end);
    }

    /// Whether any value of `start..=end` is in the set.
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.ranges
            .range(..=end)
            .next_back()
            .is_some_and(|(_, &e)| e >= start)
    }

    /// Adds every value of `other`.
    pub fn extend(&mut self, other: &IntervalSet) {
        for (s, e) in other.iter() {
            self.insert_range(s, e);
        }
    }

    /// The ranges, ascending.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|(s, e)| (*s, *e))
    }

    /// The largest value, if any.
    pub fn max(&self) -> Option<u64> {
        self.ranges.values().next_back().copied()
    }

    /// Number of values in the set.
    pub fn len(&self) -> u64 {
        self.iter().map(|(s, e)| e - s + 1).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The holes between the smallest and largest values, as inclusive ranges.
    pub fn gaps(&self) -> Vec<(u64, u64)> {
        self.iter()
            .zip(self.iter().skip(1))
            .map(|((_, end), (next, _))| (end + 1, next - 1))
            .collect()
    }

    /// Builds a set from a list of values (in any order).
    pub fn from_values(values: impl IntoIterator<Item = u64>) -> Self {
        let mut v: Vec<u64> = values.into_iter().collect();
        v.sort_unstable();
        let mut set = IntervalSet::default();
        let mut it = v.into_iter();
        if let Some(first) = it.next() {
            let (mut s, mut e) = (first, first);
            for x in it {
                if x <= e.saturating_add(1) {
                    e = e.max(x);
                } else {
                    set.ranges.insert(s, e);
                    (s, e) = (x, x);
                }
            }
            set.ranges.insert(s, e);
        }
        set
    }
}

/// What to do with an incoming sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// New: store it.
    Accept,
    /// Already stored: acknowledge without storing again.
    Duplicate,
    /// At or below the highest number seen for the source, and not stored: refused.
    Backwards { highest: u64 },
}

/// Per-source state of what has been stored and refused.
#[derive(Clone, Debug, Default)]
pub struct SourceState {
    /// Sequence numbers stored.
    pub accepted: IntervalSet,
    /// Sequence numbers refused (kept in the rejection log).
    pub rejected: IntervalSet,
}

impl SourceState {
    fn highest(&self) -> Option<u64> {
        self.accepted.max().max(self.rejected.max())
    }
}

/// The state of every source.
#[derive(Clone, Debug, Default)]
pub struct Sequencer {
    sources: HashMap<String, SourceState>,
}

impl Sequencer {
    /// Decides on `(source, seq)` and records the decision.
    pub fn admit(&mut self, source: &str, seq: u64) -> Admission {
        let state = self.state_mut(source);
        if state.accepted.contains(seq) {
            return Admission::Duplicate;
        }
        if let Some(highest) = state.highest()
            && seq <= highest
        {
            return Admission::Backwards { highest };
        }
        state.accepted.insert(seq);
        Admission::Accept
    }

    /// Records that `(source, seq)` was refused, so that it is accounted for.
    pub fn record_rejected(&mut self, source: &str, seq: u64) {
        let state = self.state_mut(source);
        if !state.accepted.contains(seq) {
            state.rejected.insert(seq);
        }
    }

    /// Marks a stored range (when loading sealed state).
    pub fn load_accepted(&mut self, source: &str, start: u64, end: u64) {
        self.state_mut(source).accepted.insert_range(start, end);
    }

    /// Marks a refused range (when loading sealed state).
    pub fn load_rejected(&mut self, source: &str, start: u64, end: u64) {
        self.state_mut(source).rejected.insert_range(start, end);
    }

    /// Whether `(source, seq)` is stored.
    pub fn is_accepted(&self, source: &str, seq: u64) -> bool {
        self.sources
            .get(source)
            .is_some_and(|s| s.accepted.contains(seq))
    }

    /// The number after the highest one stored or refused for `source` (1 for a new source).
    pub fn next(&self, source: &str) -> u64 {
        self.sources
            .get(source)
            .and_then(SourceState::highest)
            .map_or(1, |h| h + 1)
    }

    /// The state of one source, if known.
    pub fn source(&self, source: &str) -> Option<&SourceState> {
        self.sources.get(source)
    }

    /// All sources and their state.
    pub fn sources(&self) -> impl Iterator<Item = (&str, &SourceState)> {
        self.sources.iter().map(|(k, v)| (k.as_str(), v))
    }

    fn state_mut(&mut self, source: &str) -> &mut SourceState {
        if !self.sources.contains_key(source) {
            self.sources
                .insert(source.to_owned(), SourceState::default());
        }
        self.sources.get_mut(source).expect("inserted above")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_merge_and_find_gaps() {
        let mut s = IntervalSet::default();
        for v in [5, 1, 2, 3, 9, 4, 10, 20] {
            s.insert(v);
        }
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            vec![(1, 5), (9, 10), (20, 20)]
        );
        assert_eq!(s.gaps(), vec![(6, 8), (11, 19)]);
        s.insert_range(6, 19);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![(1, 20)]);
        assert_eq!(s.len(), 20);
        assert!(s.contains(7) && !s.contains(21) && !s.contains(0));
        assert!(s.overlaps(20, 30) && s.overlaps(0, 1) && !s.overlaps(21, 30));
        assert_eq!(
            IntervalSet::from_values([3, 1, 2, 7, 7, 8])
                .iter()
                .collect::<Vec<_>>(),
            vec![(1, 3), (7, 8)]
        );
    }

    #[test]
    fn resend_is_duplicate_backwards_is_refused() {
        let mut q = Sequencer::default();
        assert_eq!(q.admit("a", 1), Admission::Accept);
        assert_eq!(q.admit("a", 3), Admission::Accept);
        assert_eq!(q.admit("a", 1), Admission::Duplicate);
        assert_eq!(q.admit("a", 2), Admission::Backwards { highest: 3 });
        assert_eq!(q.admit("b", 1), Admission::Accept);
        q.record_rejected("a", 4);
        assert_eq!(q.admit("a", 4), Admission::Backwards { highest: 4 });
        assert_eq!(q.admit("a", 5), Admission::Accept);
    }
}
