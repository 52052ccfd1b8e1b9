//! Idempotency and ordering on the `source`/`source_seq` pair.
//!
//! A collector may resend a batch safely: a sequence number already stored is a duplicate (acknowledged,
//! stored once). A number at or below the highest one seen that was never stored goes backwards and is
//! refused. Stored and refused numbers are both "accounted for"; the holes between them are gaps.
//!
//! A source cannot be jammed by one record: a refused record never advances its source's high-water
//! mark, a number implausibly far ahead ([`Sequencer::max_jump`]) is refused with its reason, and an
//! administrator can [`Sequencer::reset`] the next expected number (`iris source reset`).

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

    /// Splits the set at `at`: the values below it and the values at or above it.
    pub fn split_at(&self, at: u64) -> (IntervalSet, IntervalSet) {
        let (mut below, mut above) = (IntervalSet::default(), IntervalSet::default());
        for (s, e) in self.iter() {
            if e < at {
                below.ranges.insert(s, e);
            } else if s >= at {
                above.ranges.insert(s, e);
            } else {
                below.ranges.insert(s, at - 1);
                above.ranges.insert(at, e);
            }
        }
        (below, above)
    }

    /// The ranges of `a..=b` that hold no value of `set`.
    pub fn from_ranges_outside(a: u64, b: u64, set: &IntervalSet) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut next = a;
        for (s, e) in set.iter() {
            if next > b {
                return out;
            }
            if e < next {
                continue;
            }
            if s > b {
                break;
            }
            if s > next {
                out.push((next, s - 1));
            }
            match e.checked_add(1) {
                Some(n) => next = n,
                None => return out,
            }
        }
        if next <= b {
            out.push((next, b));
        }
        out
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
    /// At or below the highest number stored for the source, and not stored: refused.
    Backwards { highest: u64 },
    /// More than `max_jump` ahead of the highest number stored (or of 0 for a new source): refused, so
    /// that one wild number cannot make every later record of its source look as if it went backwards.
    Implausible { highest: u64, max_jump: u64 },
}

/// Default [`Sequencer::max_jump`]: a source may skip at most this many numbers at once.
pub const DEFAULT_MAX_JUMP: u64 = 1_000_000_000;

/// Per-source state of what has been stored and refused.
#[derive(Clone, Debug, Default)]
pub struct SourceState {
    /// Sequence numbers stored.
    pub accepted: IntervalSet,
    /// Sequence numbers refused (kept in the rejection log). They never advance the high-water mark.
    pub rejected: IntervalSet,
    /// Numbers stored before a reset at or above its next number: still duplicates if resent, no longer
    /// the high-water mark.
    pub stale: IntervalSet,
    /// The high-water mark a reset set (its next number minus one).
    pub floor: Option<u64>,
}

impl SourceState {
    /// The high-water mark: the highest number stored since the last reset, or the reset's floor.
    pub fn highest(&self) -> Option<u64> {
        self.accepted.max().max(self.floor)
    }

    fn stored(&self, seq: u64) -> bool {
        self.accepted.contains(seq) || self.stale.contains(seq)
    }

    fn reset(&mut self, next: u64) {
        let (below, above) = self.accepted.split_at(next);
        self.stale.extend(&above);
        self.accepted = below;
        self.floor = next.checked_sub(1);
    }
}

/// The state of every source.
#[derive(Clone, Debug)]
pub struct Sequencer {
    sources: HashMap<String, SourceState>,
    /// Largest step a source's number may take past its high-water mark.
    pub max_jump: u64,
}

impl Default for Sequencer {
    fn default() -> Self {
        Sequencer {
            sources: HashMap::new(),
            max_jump: DEFAULT_MAX_JUMP,
        }
    }
}

impl Sequencer {
    /// Decides on `(source, seq)` and records the decision.
    pub fn admit(&mut self, source: &str, seq: u64) -> Admission {
        let max_jump = self.max_jump;
        let state = self.state_mut(source);
        if state.stored(seq) {
            return Admission::Duplicate;
        }
        let highest = state.highest();
        if let Some(highest) = highest
            && seq <= highest
        {
            return Admission::Backwards { highest };
        }
        let base = highest.unwrap_or(0);
        if seq - base > max_jump {
            return Admission::Implausible {
                highest: base,
                max_jump,
            };
        }
        state.accepted.insert(seq);
        Admission::Accept
    }

    /// Sets the next number expected from `source` (an administrator's decision, sealed as a reset):
    /// numbers below it not yet stored are refused from now on, numbers from it on are accepted unless
    /// already stored. Returns the high-water mark before the reset.
    pub fn reset(&mut self, source: &str, next: u64) -> Option<u64> {
        let state = self.state_mut(source);
        let before = state.highest();
        state.reset(next);
        before
    }

    /// Records that `(source, seq)` was refused, so that it is accounted for.
    pub fn record_rejected(&mut self, source: &str, seq: u64) {
        let state = self.state_mut(source);
        if !state.stored(seq) {
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
        self.sources.get(source).is_some_and(|s| s.stored(seq))
    }

    /// The number after the highest one stored or refused for `source` (1 for a new source).
    pub fn next(&self, source: &str) -> u64 {
        self.sources
            .get(source)
            .and_then(|s| s.highest().max(s.rejected.max()))
            .map_or(1, |h| h.saturating_add(1))
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
        // A refused number does not advance the high-water mark: the corrected record gets in.
        q.record_rejected("a", 4);
        assert_eq!(q.admit("a", 4), Admission::Accept);
        assert_eq!(q.admit("a", 5), Admission::Accept);
    }

    #[test]
    fn one_wild_number_cannot_jam_a_source() {
        let mut q = Sequencer::default();
        assert_eq!(q.admit("a", 1), Admission::Accept);
        // Refused for another reason (bad NISS): the mark stays where it was.
        q.record_rejected("a", u64::MAX);
        assert_eq!(q.admit("a", 2), Admission::Accept);
        // Implausibly far ahead: refused with the limit, nothing recorded.
        assert_eq!(
            q.admit("a", u64::MAX),
            Admission::Implausible {
                highest: 2,
                max_jump: DEFAULT_MAX_JUMP
            }
        );
        assert_eq!(
            q.admit("new", DEFAULT_MAX_JUMP + 1),
            Admission::Implausible {
                highest: 0,
                max_jump: DEFAULT_MAX_JUMP
            }
        );
        assert_eq!(q.admit("a", 3), Admission::Accept);
        assert_eq!(q.admit("a", 2 + DEFAULT_MAX_JUMP), Admission::Accept);
        // A number accepted before the limit existed (or under a higher one) is undone by a reset.
        assert_eq!(q.reset("a", 4), Some(2 + DEFAULT_MAX_JUMP));
        assert_eq!(q.admit("a", 4), Admission::Accept);
        assert_eq!(q.admit("a", 2 + DEFAULT_MAX_JUMP), Admission::Duplicate);
        assert_eq!(q.admit("a", 3), Admission::Duplicate);
        assert_eq!(q.admit("a", 5), Admission::Accept);
        // A reset forward: the numbers skipped are refused as going backwards.
        q.reset("a", 100);
        assert_eq!(q.admit("a", 50), Admission::Backwards { highest: 99 });
        assert_eq!(q.admit("a", 100), Admission::Accept);
        let (below, above) = IntervalSet::from_values([1, 2, 3, 7, 8]).split_at(3);
        assert_eq!(below.iter().collect::<Vec<_>>(), vec![(1, 2)]);
        assert_eq!(above.iter().collect::<Vec<_>>(), vec![(3, 3), (7, 8)]);
    }
}
