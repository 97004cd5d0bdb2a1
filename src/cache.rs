//! Small in-process caches for public reads.
//!
//! What a cache may hold is decided where it is used: only values that may be a little old
//! (result pages, category filters, rating pages), never what must change at once (a product's
//! visibility, price or stock). Each node keeps its own; a write clears the writing node's
//! entries, and the others catch up within the TTL.

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

struct Entries<V> {
    map: HashMap<String, (Instant, V)>,
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
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
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
            map.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if map.len() >= Self::MAX_KEYS {
                map.clear();
            }
        }
        map.insert(key, (Instant::now(), v));
    }

    /// The fresh value under `key`, or `compute`'s (then kept, unless the cache was cleared
    /// while it was computed: it may predate the write that cleared it).
    pub fn get_or(
        &self,
        key: String,
        compute: impl FnOnce() -> Result<V, AppError>,
    ) -> Result<V, AppError> {
        let generation = {
            let entries = self.lock();
            if let Some((at, v)) = entries.map.get(&key) {
                if at.elapsed() < self.ttl {
                    return Ok(v.clone());
                }
            }
            entries.generation
        };
        let v = compute()?;
        self.put_unless_cleared(key, v.clone(), generation);
        Ok(v)
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
