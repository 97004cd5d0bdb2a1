//! Small in-process caches for public reads.
//!
//! What a cache may hold is decided where it is used: only values that may be a little old
//! (result pages, category filters, rating pages), never what must change at once (a product's
//! visibility, price or stock). Each node keeps its own; a write clears the writing node's
//! entries, and the others catch up within the TTL.
//!
//! When a busy value expires, one caller reads it again while the others keep getting the old
//! one (up to a second TTL): without that, every request in flight for a popular search missed
//! at the same moment and computed the page at once, 64 connections stalling together for
//! 0.5–2.7 s every 15 s (ab's per-request log at 64 connections; p99 was fine, the maximum not).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::AppError;

/// String-keyed values that are reused for a while, bounded in number (a flood of distinct
/// queries empties it rather than growing it).
pub struct Ttl<V> {
    map: Mutex<Entries<V>>,
    ttl: Duration,
}

struct Entry<V> {
    at: Instant,
    value: V,
    /// A caller is reading it again (the others get `value` meanwhile).
    refreshing: bool,
}

struct Entries<V> {
    map: HashMap<String, Entry<V>>,
    /// Bumped by every [`Ttl::clear`]: a value computed before a clear is not kept after it.
    generation: u64,
}

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Entries {
            map: HashMap::new(),
            generation: 0,
        }
    }
}

impl<V: Clone> Ttl<V> {
    const MAX_KEYS: usize = 10_000;

    pub fn new(ttl: Duration) -> Self {
        Ttl {
            map: Mutex::default(),
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries<V>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value under `key` if it is fresh.
    pub fn get(&self, key: &str) -> Option<V> {
        self.lock()
            .map
            .get(key)
            .filter(|e| e.at.elapsed() < self.ttl)
            .map(|e| e.value.clone())
    }

    pub fn put(&self, key: String, v: V) {
        let generation = self.lock().generation;
        self.put_unless_cleared(key, v, generation);
    }

    /// Keeps `v` unless [`Ttl::clear`] ran since `generation` was read.
    fn put_unless_cleared(&self, key: String, v: V, generation: u64) {
        let mut entries = self.lock();
        if entries.generation != generation {
            return;
        }
        let map = &mut entries.map;
        if map.len() >= Self::MAX_KEYS {
            map.retain(|_, e| e.at.elapsed() < self.ttl);
            if map.len() >= Self::MAX_KEYS {
                map.clear();
            }
        }
        let entry = Entry {
            at: Instant::now(),
            value: v,
            refreshing: false,
        };
        map.insert(key, entry);
    }

    /// The fresh value under `key`, or `compute`'s (then kept, unless the cache was cleared
    /// while it was computed: it may predate the write that cleared it). An expired value is
    /// read again by one caller at a time; the others get the expired one meanwhile, for up to
    /// another TTL (past that, or after an error, the next caller reads again too).
    pub fn get_or(
        &self,
        key: String,
        compute: impl FnOnce() -> Result<V, AppError>,
    ) -> Result<V, AppError> {
        let generation = {
            let mut entries = self.lock();
            let generation = entries.generation;
            if let Some(e) = entries.map.get_mut(&key) {
                let age = e.at.elapsed();
                if age < self.ttl || (e.refreshing && age < self.ttl * 2) {
                    return Ok(e.value.clone());
                }
                e.refreshing = true;
            }
            generation
        };
        match compute() {
            Ok(v) => {
                self.put_unless_cleared(key, v.clone(), generation);
                Ok(v)
            }
            Err(e) => {
                if let Some(entry) = self.lock().map.get_mut(&key) {
                    entry.refreshing = false;
                }
                Err(e)
            }
        }
    }

    /// Forgets every value (after a write that may change any of them).
    pub fn clear(&self) {
        let mut entries = self.lock();
        entries.map.clear();
        entries.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_reused_until_they_expire_or_are_cleared() {
        let cache = Ttl::new(Duration::from_secs(60));
        let mut computed = 0;
        let mut load = |n: i64| {
            computed += 1;
            Ok::<_, AppError>(n)
        };
        assert_eq!(cache.get_or("a".into(), || load(1)).unwrap(), 1);
        assert_eq!(cache.get_or("a".into(), || load(2)).unwrap(), 1);
        cache.clear();
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.get_or("a".into(), || load(3)).unwrap(), 3);
        assert_eq!(computed, 2);

        let expired = Ttl::new(Duration::ZERO);
        expired.put("a".into(), 1);
        assert_eq!(expired.get("a"), None);
    }

    #[test]
    fn an_expired_value_is_read_again_by_one_caller_while_the_others_get_it() {
        let cache = Ttl::new(Duration::from_millis(50));
        cache.put("a".into(), 1);
        std::thread::sleep(Duration::from_millis(60));
        let v = cache
            .get_or("a".into(), || {
                // Meanwhile another caller gets the expired value, without computing.
                let other = cache.get_or("a".into(), || panic!("a second refresh"));
                assert_eq!(other.unwrap(), 1);
                Ok(2)
            })
            .unwrap();
        assert_eq!(v, 2);
        assert_eq!(cache.get("a"), Some(2));

        // A failed refresh: the next caller tries again.
        std::thread::sleep(Duration::from_millis(60));
        let failed = cache.get_or("a".into(), || Err(AppError::NotFound));
        assert!(failed.is_err());
        assert_eq!(cache.get_or("a".into(), || Ok(3)).unwrap(), 3);

        // Past a second TTL nobody gets the old value, refreshing or not.
        cache.lock().map.get_mut("a").unwrap().refreshing = true;
        std::thread::sleep(Duration::from_millis(110));
        assert_eq!(cache.get_or("a".into(), || Ok(4)).unwrap(), 4);
    }

    #[test]
    fn a_value_computed_across_a_clear_is_not_kept() {
        let cache = Ttl::new(Duration::from_secs(60));
        // The computation read the old data; a write cleared the cache meanwhile.
        let v = cache
            .get_or("a".into(), || {
                cache.clear();
                Ok(1)
            })
            .unwrap();
        assert_eq!(v, 1, "the caller still gets what it computed");
        assert_eq!(cache.get("a"), None, "but the next caller reads again");
    }
}
