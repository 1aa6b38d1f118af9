//! Small bitsets of CPU and node numbers, with Linux "cpulist" syntax.
//!
//! # Design
//!
//! One generic type, [`IdSet<K>`], backs both [`CpuSet`] and [`NodeSet`]. The
//! marker `K` ([`Cpu`] or [`Node`]) only exists at compile time, so a node
//! mask can never be passed where a CPU mask is expected (a real bug class in
//! NUMA code, where both are "a set of small integers").
//!
//! Memory layout: bit `id % 64` of word `id / 64`, little-endian words, the
//! same layout as the kernel's `unsigned long` masks on 64-bit Linux, so `sys`
//! hands the words to `sched_setaffinity`/`set_mempolicy` without copying
//! bit by bit.
//!
//! ```text
//!   words[0]             words[1]
//!   bit 0 .. bit 63      bit 64 .. bit 127      ...
//!   CPU 0 .. CPU 63      CPU 64 .. CPU 127
//! ```
//!
//! Invariant: `words` never ends with a zero word. It makes the derived
//! equality and hashing structural (two equal sets have equal vectors) and
//! `is_empty` a length check. Every mutating method re-establishes it through
//! `trim`.
//!
//! Ids are limited to [`IdSet::LIMIT`] (65,536): the kernel's own limits are
//! 8,192 CPUs and 1,024 nodes, and the bound keeps a hostile cpulist such as
//! `0-4294967295` from allocating gigabytes.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::str::FromStr;

mod sealed {
    pub trait Sealed {}
}

/// What an [`IdSet`] holds: CPU numbers ([`Cpu`]) or NUMA node numbers
/// ([`Node`]). Sealed: only those two kinds exist.
pub trait IdKind: sealed::Sealed + 'static {
    /// Singular noun used in messages, e.g. `"CPU"`.
    const NOUN: &'static str;
    /// Name of the set type used by `Debug`, e.g. `"CpuSet"`.
    const TYPE_NAME: &'static str;
}

/// Marker for sets of CPU numbers (logical CPUs, as the kernel numbers them).
#[derive(Debug)]
pub enum Cpu {}

/// Marker for sets of NUMA node numbers.
#[derive(Debug)]
pub enum Node {}

impl sealed::Sealed for Cpu {}
impl sealed::Sealed for Node {}

impl IdKind for Cpu {
    const NOUN: &'static str = "CPU";
    const TYPE_NAME: &'static str = "CpuSet";
}

impl IdKind for Node {
    const NOUN: &'static str = "node";
    const TYPE_NAME: &'static str = "NodeSet";
}

/// A set of logical CPU numbers.
pub type CpuSet = IdSet<Cpu>;

/// A set of NUMA node numbers.
pub type NodeSet = IdSet<Node>;

const WORD_BITS: usize = 64;

/// A small bitset of CPU or node numbers; see [`CpuSet`] and [`NodeSet`].
///
/// Parses and formats the Linux list syntax used by sysfs and by
/// `taskset -c`/`numactl`: comma-separated numbers and inclusive ranges.
///
/// ```
/// use pinstack_numa::CpuSet;
///
/// let set: CpuSet = "0-3,8,10-11".parse()?;
/// assert_eq!(set.len(), 7);
/// assert!(set.contains(8) && !set.contains(9));
/// assert_eq!(set.to_string(), "0-3,8,10-11");
/// assert_eq!(set.iter().collect::<Vec<_>>(), [0, 1, 2, 3, 8, 10, 11]);
/// # Ok::<(), pinstack_numa::ParseIdSetError>(())
/// ```
pub struct IdSet<K: IdKind> {
    /// Bit `i % 64` of `words[i / 64]`; no trailing zero word.
    words: Vec<u64>,
    kind: PhantomData<fn() -> K>,
}

impl<K: IdKind> IdSet<K> {
    /// One past the largest id a set can hold (65,536).
    pub const LIMIT: usize = 1 << 16;

    /// The empty set.
    pub const fn new() -> Self {
        IdSet {
            words: Vec::new(),
            kind: PhantomData,
        }
    }

    /// The set holding `id` alone.
    ///
    /// # Panics
    ///
    /// If `id >= Self::LIMIT`.
    pub fn single(id: usize) -> Self {
        let mut set = Self::new();
        set.insert(id);
        set
    }

    /// The set `start..end` (empty if `start >= end`).
    ///
    /// # Panics
    ///
    /// If `end > Self::LIMIT`.
    pub fn range(start: usize, end: usize) -> Self {
        (start..end).collect()
    }

    /// Adds `id`; returns whether it was absent.
    ///
    /// # Panics
    ///
    /// If `id >= Self::LIMIT`; use [`IdSet::try_insert`] for ids that come
    /// from outside the program.
    pub fn insert(&mut self, id: usize) -> bool {
        match self.try_insert(id) {
            Ok(added) => added,
            Err(limit) => panic!("{limit}"),
        }
    }

    /// Adds `id`; returns whether it was absent, or an error if `id` is not
    /// below [`IdSet::LIMIT`].
    pub fn try_insert(&mut self, id: usize) -> Result<bool, IdLimitError> {
        if id >= Self::LIMIT {
            return Err(IdLimitError {
                noun: K::NOUN,
                id,
                limit: Self::LIMIT,
            });
        }
        let (word, bit) = (id / WORD_BITS, id % WORD_BITS);
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
        }
        let absent = self.words[word] & (1 << bit) == 0;
        self.words[word] |= 1 << bit;
        Ok(absent)
    }

    /// Removes `id`; returns whether it was present.
    pub fn remove(&mut self, id: usize) -> bool {
        let (word, bit) = (id / WORD_BITS, id % WORD_BITS);
        let Some(w) = self.words.get_mut(word) else {
            return false;
        };
        let present = *w & (1 << bit) != 0;
        *w &= !(1 << bit);
        self.trim();
        present
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: usize) -> bool {
        self.words
            .get(id / WORD_BITS)
            .is_some_and(|w| w & (1 << (id % WORD_BITS)) != 0)
    }

    /// Number of ids in the set.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The smallest id, if any.
    pub fn first(&self) -> Option<usize> {
        self.iter().next()
    }

    /// The largest id, if any.
    pub fn last(&self) -> Option<usize> {
        let top = self.words.len().checked_sub(1)?;
        let word = self.words[top];
        Some(top * WORD_BITS + (WORD_BITS - 1 - word.leading_zeros() as usize))
    }

    /// The ids in increasing order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            words: &self.words,
            word: 0,
            bits: self.words.first().copied().unwrap_or(0),
        }
    }

    /// Ids in both sets.
    pub fn intersection(&self, other: &Self) -> Self {
        let words = self
            .words
            .iter()
            .zip(&other.words)
            .map(|(a, b)| a & b)
            .collect();
        Self::from_words(words)
    }

    /// Ids in either set.
    pub fn union(&self, other: &Self) -> Self {
        let (long, short) = if self.words.len() >= other.words.len() {
            (&self.words, &other.words)
        } else {
            (&other.words, &self.words)
        };
        let mut words = long.clone();
        for (w, s) in words.iter_mut().zip(short) {
            *w |= s;
        }
        Self::from_words(words)
    }

    /// Ids in `self` but not in `other`.
    pub fn difference(&self, other: &Self) -> Self {
        let words = self
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| w & !other.words.get(i).copied().unwrap_or(0))
            .collect();
        Self::from_words(words)
    }

    /// Whether every id of `self` is in `other`.
    pub fn is_subset(&self, other: &Self) -> bool {
        self.difference(other).is_empty()
    }

    /// Whether the sets share no id.
    pub fn is_disjoint(&self, other: &Self) -> bool {
        self.intersection(other).is_empty()
    }

    /// The kernel mask words (bit `i % 64` of word `i / 64`), no trailing
    /// zero word.
    pub(crate) fn words(&self) -> &[u64] {
        &self.words
    }

    /// Builds a set from kernel mask words; trailing zero words are dropped.
    pub(crate) fn from_words(words: Vec<u64>) -> Self {
        let mut set = IdSet {
            words,
            kind: PhantomData,
        };
        set.words.truncate(Self::LIMIT / WORD_BITS);
        set.trim();
        set
    }

    /// Re-establishes the "no trailing zero word" invariant.
    fn trim(&mut self) {
        while self.words.last() == Some(&0) {
            self.words.pop();
        }
    }
}

impl<K: IdKind> Default for IdSet<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: IdKind> Clone for IdSet<K> {
    fn clone(&self) -> Self {
        IdSet {
            words: self.words.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: IdKind> PartialEq for IdSet<K> {
    fn eq(&self, other: &Self) -> bool {
        self.words == other.words
    }
}

impl<K: IdKind> Eq for IdSet<K> {}

impl<K: IdKind> Hash for IdSet<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.words.hash(state);
    }
}

impl<K: IdKind> fmt::Debug for IdSet<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", K::TYPE_NAME, self)
    }
}

/// Formats the set in Linux list syntax, e.g. `0-3,8,10-11` (empty string
/// for the empty set).
impl<K: IdKind> fmt::Display for IdSet<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids = self.iter().peekable();
        let mut first = true;
        while let Some(start) = ids.next() {
            let mut end = start;
            while ids.peek() == Some(&(end + 1)) {
                end += 1;
                ids.next();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if end == start {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

/// Parses Linux list syntax: `0-3,8,10-11`. Surrounding whitespace (such as
/// the newline at the end of a sysfs file) is ignored; an empty or blank
/// string is the empty set.
impl<K: IdKind> FromStr for IdSet<K> {
    type Err = ParseIdSetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let mut set = Self::new();
        if text.is_empty() {
            return Ok(set);
        }
        let err = |problem| ParseIdSetError {
            noun: K::NOUN,
            input: s.to_owned(),
            problem,
        };
        for item in text.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err(err(Problem::EmptyItem));
            }
            let (start, end) = match item.split_once('-') {
                Some((a, b)) => (parse_id::<K>(a, &err)?, parse_id::<K>(b, &err)?),
                None => {
                    let id = parse_id::<K>(item, &err)?;
                    (id, id)
                }
            };
            if start > end {
                return Err(err(Problem::ReversedRange(start, end)));
            }
            for id in start..=end {
                set.try_insert(id).map_err(|_| err(Problem::TooLarge(id)))?;
            }
        }
        Ok(set)
    }
}

fn parse_id<K: IdKind>(
    token: &str,
    err: &dyn Fn(Problem) -> ParseIdSetError,
) -> Result<usize, ParseIdSetError> {
    let token = token.trim();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(Problem::NotANumber(token.to_owned())));
    }
    match token.parse::<usize>() {
        Ok(id) if id < IdSet::<K>::LIMIT => Ok(id),
        Ok(id) => Err(err(Problem::TooLarge(id))),
        // Digits only, so the parse can fail only on overflow.
        Err(_) => Err(err(Problem::TooLarge(usize::MAX))),
    }
}

impl<K: IdKind> FromIterator<usize> for IdSet<K> {
    /// # Panics
    ///
    /// If an id is not below [`IdSet::LIMIT`].
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> Self {
        let mut set = Self::new();
        set.extend(iter);
        set
    }
}

impl<K: IdKind> Extend<usize> for IdSet<K> {
    /// # Panics
    ///
    /// If an id is not below [`IdSet::LIMIT`].
    fn extend<I: IntoIterator<Item = usize>>(&mut self, iter: I) {
        for id in iter {
            self.insert(id);
        }
    }
}

impl<'a, K: IdKind> IntoIterator for &'a IdSet<K> {
    type Item = usize;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Iterator over the ids of an [`IdSet`], in increasing order.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    words: &'a [u64],
    /// Index of the word `bits` came from.
    word: usize,
    /// Bits of `words[word]` not yet yielded.
    bits: u64,
}

impl Iterator for Iter<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.bits == 0 {
            self.word += 1;
            self.bits = *self.words.get(self.word)?;
        }
        let bit = self.bits.trailing_zeros() as usize;
        self.bits &= self.bits - 1;
        Some(self.word * WORD_BITS + bit)
    }
}

/// An id given to [`IdSet::try_insert`] is not below [`IdSet::LIMIT`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdLimitError {
    noun: &'static str,
    id: usize,
    limit: usize,
}

impl fmt::Display for IdLimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} number {} is too large: sets hold numbers below {}",
            self.noun, self.id, self.limit
        )
    }
}

impl std::error::Error for IdLimitError {}

/// A string is not valid Linux list syntax (`0-3,8,10-11`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseIdSetError {
    noun: &'static str,
    input: String,
    problem: Problem,
}

impl ParseIdSetError {
    /// The text that failed to parse.
    pub fn input(&self) -> &str {
        &self.input
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    /// `0,,3` or a trailing comma.
    EmptyItem,
    /// A token that is not a decimal number.
    NotANumber(String),
    /// `5-3`.
    ReversedRange(usize, usize),
    /// A number at or above `IdSet::LIMIT` (`usize::MAX` if it overflowed).
    TooLarge(usize),
}

impl fmt::Display for ParseIdSetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let noun = self.noun;
        write!(f, "invalid {noun} list {:?}: ", self.input)?;
        match &self.problem {
            Problem::EmptyItem => write!(f, "empty item between commas")?,
            Problem::NotANumber(t) => write!(f, "{t:?} is not a {noun} number")?,
            Problem::ReversedRange(a, b) => write!(f, "range {a}-{b} ends before it starts")?,
            Problem::TooLarge(usize::MAX) => write!(f, "a {noun} number does not fit in usize")?,
            Problem::TooLarge(id) => write!(f, "{noun} number {id} is too large")?,
        }
        write!(
            f,
            " (expected decimal numbers and inclusive ranges below {}, e.g. \"0-3,8,10-11\")",
            IdSet::<Cpu>::LIMIT
        )
    }
}

impl std::error::Error for ParseIdSetError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format_round_trip() {
        for text in [
            "",
            "0",
            "0-3",
            "0-3,8,10-11",
            "1,3,5",
            "63-65",
            "127,129",
            "65535",
        ] {
            let set: CpuSet = text.parse().unwrap();
            assert_eq!(set.to_string(), text);
        }
    }

    #[test]
    fn parse_normalises_overlaps_and_whitespace() {
        let set: CpuSet = " 3,0-2, 1-4 \n".parse().unwrap();
        assert_eq!(set.iter().collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        assert_eq!(set.to_string(), "0-4");
        assert_eq!("\n".parse::<CpuSet>().unwrap(), CpuSet::new());
    }

    #[test]
    fn parse_errors_name_the_input_and_the_problem() {
        let cases = [
            ("0,,3", "empty item"),
            ("0,", "empty item"),
            ("0-a", "\"a\" is not a CPU number"),
            ("-1", "\"\" is not a CPU number"),
            ("+1", "\"+1\" is not a CPU number"),
            ("5-3", "range 5-3 ends before it starts"),
            ("65536", "too large"),
            ("0-4294967295", "too large"),
            ("99999999999999999999999", "does not fit"),
            ("0-15:2", "\"15:2\" is not a CPU number"),
        ];
        for (text, needle) in cases {
            let err = text.parse::<CpuSet>().unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(needle), "{text:?}: {msg}");
            assert!(msg.contains(&format!("{text:?}")), "{msg}");
            assert_eq!(err.input(), text);
        }
        let msg = "x".parse::<NodeSet>().unwrap_err().to_string();
        assert!(msg.starts_with("invalid node list"), "{msg}");
    }

    #[test]
    fn set_operations() {
        let a: CpuSet = "0-5".parse().unwrap();
        let b: CpuSet = "4-9,70".parse().unwrap();
        assert_eq!(a.intersection(&b).to_string(), "4-5");
        assert_eq!(a.union(&b).to_string(), "0-9,70");
        assert_eq!(b.union(&a), a.union(&b));
        assert_eq!(a.difference(&b).to_string(), "0-3");
        assert_eq!(b.difference(&a).to_string(), "6-9,70");
        assert!(CpuSet::range(1, 3).is_subset(&a));
        assert!(!b.is_subset(&a));
        assert!(a.is_disjoint(&CpuSet::single(70)));
        assert_eq!(b.first(), Some(4));
        assert_eq!(b.last(), Some(70));
        assert_eq!(CpuSet::new().last(), None);
        assert_eq!(b.len(), 7);
    }

    #[test]
    fn removal_keeps_equality_structural() {
        let mut a: CpuSet = "1,100".parse().unwrap();
        assert!(a.remove(100));
        assert!(!a.remove(100));
        assert!(!a.remove(100_000));
        assert_eq!(a, CpuSet::single(1));
        assert!(a.remove(1));
        assert!(a.is_empty());
        assert_eq!(a, CpuSet::new());
        // Intersection that clears high words also compares equal.
        let b: CpuSet = "0,200".parse().unwrap();
        assert_eq!(b.intersection(&CpuSet::single(0)), CpuSet::single(0));
    }

    #[test]
    fn insert_reports_novelty_and_limit() {
        let mut s = NodeSet::new();
        assert!(s.insert(3));
        assert!(!s.insert(3));
        let err = s.try_insert(NodeSet::LIMIT).unwrap_err();
        assert!(
            err.to_string().contains("node number 65536 is too large"),
            "{err}"
        );
        assert_eq!(format!("{s:?}"), "NodeSet(3)");
    }

    #[test]
    fn words_match_kernel_layout() {
        let s: CpuSet = "0,63,64".parse().unwrap();
        assert_eq!(s.words(), [1 | 1 << 63, 1]);
        assert_eq!(CpuSet::from_words(vec![0b101, 0, 0]).to_string(), "0,2");
    }
}
