//! INTERIM stand-in with the agreed API, replaced by the real wheel at merge.
#![allow(dead_code)]
use std::collections::BTreeMap;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerKey(u64, u64);
#[derive(Debug)]
pub(crate) struct Wheel<T> {
    map: BTreeMap<(u64, u64), T>,
    seq: u64,
}
impl<T> Wheel<T> {
    pub(crate) fn new() -> Self {
        Wheel {
            map: BTreeMap::new(),
            seq: 0,
        }
    }
    pub(crate) fn insert(&mut self, deadline: u64, value: T) -> TimerKey {
        self.seq += 1;
        self.map.insert((deadline, self.seq), value);
        TimerKey(deadline, self.seq)
    }
    pub(crate) fn cancel(&mut self, key: TimerKey) -> Option<T> {
        self.map.remove(&(key.0, key.1))
    }
    pub(crate) fn advance(&mut self, now: u64, mut fire: impl FnMut(T)) {
        while let Some(e) = self.map.first_entry() {
            if e.key().0 > now {
                break;
            }
            fire(e.remove());
        }
    }
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.map.keys().next().map(|k| k.0)
    }
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
