//! A bounded, keyed log: the newest `cap` items in arrival order, each
//! reachable by key in O(1) so that later events update it in place.
//! Items get increasing sequence numbers, which outlive eviction and let
//! the views anchor a selection or freeze a snapshot.

use std::collections::{HashMap, VecDeque};

/// Which proxy said it, and its id there (request_id or tool_use_id).
pub(super) type Key = (u32, String);

pub(super) struct Ring<T> {
    items: VecDeque<(Key, T)>,
    /// Sequence number of `items[0]`.
    first: u64,
    index: HashMap<Key, u64>,
    cap: usize,
}

impl<T> Ring<T> {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            items: VecDeque::new(),
            first: 0,
            index: HashMap::new(),
            cap: cap.max(1),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    /// The sequence number the next pushed item gets.
    pub(super) fn next_seq(&self) -> u64 {
        self.first + self.items.len() as u64
    }

    pub(super) fn get_mut(&mut self, key: &Key) -> Option<&mut T> {
        let seq = *self.index.get(key)?;
        let at = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        self.items.get_mut(at).map(|(_, item)| item)
    }

    /// The item under `key`, or a new one made by `make` (then `true`).
    pub(super) fn get_or_push(&mut self, key: Key, make: impl FnOnce(&Key) -> T) -> (&mut T, bool) {
        let at = self
            .index
            .get(&key)
            .and_then(|seq| usize::try_from(seq.checked_sub(self.first)?).ok())
            .filter(|at| *at < self.items.len());
        match at {
            Some(at) => (&mut self.items[at].1, false),
            None => {
                let item = make(&key);
                (self.push(key, item), true)
            }
        }
    }

    /// Appends `item` under `key` (which must not be present), evicting the
    /// oldest item when full.
    pub(super) fn push(&mut self, key: Key, item: T) -> &mut T {
        while self.items.len() >= self.cap {
            if let Some((old, _)) = self.items.pop_front() {
                if self.index.get(&old) == Some(&self.first) {
                    self.index.remove(&old);
                }
            }
            self.first += 1;
        }
        let seq = self.next_seq();
        self.index.insert(key.clone(), seq);
        self.items.push_back((key, item));
        let last = self.items.len() - 1;
        &mut self.items[last].1
    }

    /// Items with their sequence numbers, newest first.
    pub(super) fn newest_first(&self) -> impl Iterator<Item = (u64, &T)> + '_ {
        let first = self.first;
        self.items
            .iter()
            .enumerate()
            .rev()
            .map(move |(i, (_, item))| (first + i as u64, item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Key {
        (1, s.to_string())
    }

    #[test]
    fn evicts_oldest_and_forgets_its_key() {
        let mut r = Ring::new(2);
        r.push(k("a"), 1);
        r.push(k("b"), 2);
        r.push(k("c"), 3);
        assert_eq!(r.len(), 2);
        assert!(r.get_mut(&k("a")).is_none());
        *r.get_mut(&k("b")).unwrap() += 10;
        let all: Vec<_> = r.newest_first().map(|(s, v)| (s, *v)).collect();
        assert_eq!(all, vec![(2, 3), (1, 12)]);
        assert_eq!(r.next_seq(), 3);
    }
}
