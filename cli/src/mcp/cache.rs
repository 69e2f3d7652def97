//! A least-recently-used cache bounded by bytes, for decrypted pages within one MCP session.
//!
//! Entries are shared (`Arc`) so a hit costs no copy. The owner decides what a key means and when
//! the whole cache must go (the session clears it when the keyring changes).

use std::collections::BTreeMap;
use std::sync::Arc;

/// An LRU map whose entries each declare a size; the total stays within a byte budget.
#[derive(Debug)]
pub struct ByteLru<K: Ord + Clone, V> {
    budget: usize,
    used: usize,
    tick: u64,
    entries: BTreeMap<K, Entry<V>>,
    /// Last use → key, oldest first.
    order: BTreeMap<u64, K>,
}

#[derive(Debug)]
struct Entry<V> {
    value: Arc<V>,
    size: usize,
    tick: u64,
}

impl<K: Ord + Clone, V> ByteLru<K, V> {
    /// An empty cache holding at most `budget` bytes.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            used: 0,
            tick: 0,
            entries: BTreeMap::new(),
            order: BTreeMap::new(),
        }
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// The value for `key`, marked as just used.
    pub fn get(&mut self, key: &K) -> Option<Arc<V>> {
        let tick = self.next_tick();
        let entry = self.entries.get_mut(key)?;
        self.order.remove(&entry.tick);
        entry.tick = tick;
        self.order.insert(tick, key.clone());
        Some(Arc::clone(&entry.value))
    }

    /// Adds or replaces an entry, evicting the least recently used ones beyond the budget. An
    /// entry larger than the whole budget is not kept.
    pub fn insert(&mut self, key: K, value: Arc<V>, size: usize) {
        self.remove(&key);
        if size > self.budget {
            return;
        }
        let tick = self.next_tick();
        self.used += size;
        self.order.insert(tick, key.clone());
        self.entries.insert(key, Entry { value, size, tick });
        while self.used > self.budget {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                self.used -= e.size;
            }
        }
    }

    fn remove(&mut self, key: &K) {
        if let Some(e) = self.entries.remove(key) {
            self.order.remove(&e.tick);
            self.used -= e.size;
        }
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
        self.used = 0;
    }

    /// Bytes held (as declared at insertion).
    pub fn used(&self) -> usize {
        self.used
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_within_the_byte_budget() {
        let mut c: ByteLru<u32, &str> = ByteLru::new(10);
        c.insert(1, Arc::new("a"), 4);
        c.insert(2, Arc::new("b"), 4);
        assert_eq!(c.get(&1).as_deref(), Some(&"a"), "1 is now the most recent");
        c.insert(3, Arc::new("c"), 4);
        assert!(c.get(&2).is_none(), "2 was the least recently used");
        assert!(c.get(&1).is_some() && c.get(&3).is_some());
        assert_eq!((c.len(), c.used()), (2, 8));
        c.insert(4, Arc::new("too big"), 11);
        assert!(c.get(&4).is_none(), "larger than the budget: not kept");
        c.insert(1, Arc::new("a2"), 2);
        assert_eq!((c.get(&1).as_deref(), c.used()), (Some(&"a2"), 6));
        c.clear();
        assert!(c.is_empty() && c.used() == 0);
    }
}
