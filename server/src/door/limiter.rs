//! Two small keyed limiters whose memory is bounded whoever knocks:
//!
//! - [`Backoff`]: failures (wrong passwords) earn growing waits. The first few are
//!   free; after them each attempt must wait twice as long as the one before, up to
//!   a longest wait, counted from the last failure. Quiet for long enough, a key is
//!   forgotten.
//! - [`Buckets`]: a token bucket per key (room code guesses, entries to a lobby): a
//!   burst, then so many a minute.
//!
//! Each holds at most `capacity` keys. When that is reached, keys whose state has
//! gone back to nothing are dropped; if every key still counts, new keys share one
//! overflow entry, so that however many addresses an attacker has, the memory stays
//! put and those new addresses are limited together. (`governor` would do the
//! buckets, but its keyed store grows with every key until it is swept, and has
//! nothing for growing waits; these are a few dozen lines each.)

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When an attempt is refused: how long until the next one may be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait(pub Duration);

impl Wait {
    /// Whole seconds, at least 1, for `Retry-After`.
    pub fn seconds(self) -> u64 {
        self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0)
    }
}

/// How a [`Backoff`] counts.
#[derive(Debug, Clone, Copy)]
pub struct BackoffRule {
    /// Failures that cost nothing.
    pub free: u32,
    /// The wait after the first failure past the free ones; each later one doubles it.
    pub first_wait: Duration,
    /// The longest wait.
    pub longest_wait: Duration,
    /// A key with no failure for this long is forgotten.
    pub forget_after: Duration,
}

impl BackoffRule {
    /// How long after the last failure the next attempt may come, after `failures`.
    fn wait_after(&self, failures: u32) -> Duration {
        if failures < self.free {
            return Duration::ZERO;
        }
        let doublings = (failures - self.free).min(30);
        self.first_wait
            .saturating_mul(1 << doublings)
            .min(self.longest_wait)
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Failures by key, with growing waits.
pub struct Backoff<K> {
    rule: BackoffRule,
    capacity: usize,
    entries: Mutex<Entries<K, Failures>>,
}

struct Entries<K, V> {
    by_key: HashMap<K, V>,
    /// Shared by the keys that came when the map was full.
    overflow: Option<V>,
}

impl<K, V> Default for Entries<K, V> {
    fn default() -> Self {
        Entries {
            by_key: HashMap::new(),
            overflow: None,
        }
    }
}

impl<K: Hash + Eq + Clone, V: Copy> Entries<K, V> {
    /// The entry of `key`, made with `new` if there is none and there is room (after
    /// dropping the entries `spent` says hold nothing); else the overflow entry.
    fn entry(
        &mut self,
        key: &K,
        capacity: usize,
        new: impl Fn() -> V,
        spent: impl Fn(&V) -> bool,
    ) -> &mut V {
        if !self.by_key.contains_key(key) && self.by_key.len() >= capacity {
            self.by_key.retain(|_, v| !spent(v));
            if self.overflow.as_ref().is_some_and(&spent) {
                self.overflow = None;
            }
        }
        if self.by_key.contains_key(key) || self.by_key.len() < capacity {
            self.by_key.entry(key.clone()).or_insert_with(new)
        } else {
            self.overflow.get_or_insert_with(new)
        }
    }
}

impl<K: Hash + Eq + Clone> Backoff<K> {
    pub fn new(rule: BackoffRule, capacity: usize) -> Backoff<K> {
        Backoff {
            rule,
            capacity,
            entries: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries<K, Failures>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `key` may make an attempt now; if not, how long it must wait.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Wait> {
        let entries = self.lock();
        let failures = match entries.by_key.get(key) {
            Some(failures) => *failures,
            None if entries.by_key.len() >= self.capacity => match entries.overflow {
                Some(failures) => failures,
                None => return Ok(()),
            },
            None => return Ok(()),
        };
        if now.duration_since(failures.last) >= self.rule.forget_after {
            return Ok(());
        }
        let allowed_at = failures.last + self.rule.wait_after(failures.count);
        if now >= allowed_at {
            Ok(())
        } else {
            Err(Wait(allowed_at - now))
        }
    }

    /// Counts a failure of `key`; returns how many it has had (since it was last
    /// forgotten).
    pub fn fail(&self, key: &K, now: Instant) -> u32 {
        let rule = self.rule;
        let mut entries = self.lock();
        let failures = entries.entry(
            key,
            self.capacity,
            || Failures {
                count: 0,
                last: now,
            },
            |f| now.duration_since(f.last) >= rule.forget_after,
        );
        if now.duration_since(failures.last) >= rule.forget_after {
            failures.count = 0;
        }
        failures.count = failures.count.saturating_add(1);
        failures.last = now;
        failures.count
    }

    /// Forgets `key`'s failures (its owner proved who they are).
    pub fn forgive(&self, key: &K) {
        self.lock().by_key.remove(key);
    }

    /// How many keys are held (for tests and the log).
    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How a [`Buckets`] refills.
#[derive(Debug, Clone, Copy)]
pub struct BucketRule {
    /// Attempts at once, after a quiet spell.
    pub burst: u32,
    /// Attempts a minute, on average.
    pub per_minute: u32,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per key.
pub struct Buckets<K> {
    rule: BucketRule,
    capacity: usize,
    entries: Mutex<Entries<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    pub fn new(rule: BucketRule, capacity: usize) -> Buckets<K> {
        Buckets {
            rule,
            capacity,
            entries: Mutex::default(),
        }
    }

    /// Takes one attempt for `key`, or says how long until there is one.
    pub fn take(&self, key: &K, now: Instant) -> Result<(), Wait> {
        let rule = self.rule;
        let per_second = f64::from(rule.per_minute.max(1)) / 60.0;
        let burst = f64::from(rule.burst.max(1));
        let refill = move |bucket: &Bucket| {
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * per_second).min(burst)
        };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = entries.entry(
            key,
            self.capacity,
            || Bucket {
                tokens: burst,
                at: now,
            },
            |b| refill(b) >= burst,
        );
        bucket.tokens = refill(bucket);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Wait(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / per_second,
            )))
        }
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_key
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: BackoffRule = BackoffRule {
        free: 3,
        first_wait: Duration::from_secs(1),
        longest_wait: Duration::from_secs(8),
        forget_after: Duration::from_secs(3600),
    };

    #[test]
    fn free_failures_cost_nothing_then_each_wait_doubles_up_to_the_longest() {
        let backoff = Backoff::new(RULE, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(backoff.check(&"a", t0), Ok(()));
            backoff.fail(&"a", t0);
        }
        // Three failures: the fourth attempt waits 1 s.
        assert_eq!(backoff.check(&"a", t0), Err(Wait(Duration::from_secs(1))));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(backoff.check(&"a", t1), Ok(()));
        backoff.fail(&"a", t1);
        assert_eq!(backoff.check(&"a", t1), Err(Wait(Duration::from_secs(2))));
        let mut t = t1;
        for _ in 0..10 {
            backoff.fail(&"a", t);
            t += Duration::from_secs(100);
        }
        t -= Duration::from_secs(100);
        assert_eq!(backoff.check(&"a", t), Err(Wait(Duration::from_secs(8))));
        // Another key is not touched; forgiving forgets.
        assert_eq!(backoff.check(&"b", t), Ok(()));
        backoff.forgive(&"a");
        assert_eq!(backoff.check(&"a", t), Ok(()));
    }

    #[test]
    fn a_quiet_key_is_forgotten() {
        let backoff = Backoff::new(RULE, 10);
        let t0 = Instant::now();
        for _ in 0..5 {
            backoff.fail(&"a", t0);
        }
        assert!(backoff.check(&"a", t0).is_err());
        let later = t0 + RULE.forget_after;
        assert_eq!(backoff.check(&"a", later), Ok(()));
        assert_eq!(backoff.fail(&"a", later), 1);
    }

    #[test]
    fn a_full_map_drops_forgotten_keys_then_shares_one_entry() {
        let backoff = Backoff::new(RULE, 2);
        let t0 = Instant::now();
        backoff.fail(&1, t0);
        backoff.fail(&2, t0);
        // Full of keys that still count: 3 and 4 share the overflow entry.
        for _ in 0..3 {
            backoff.fail(&3, t0);
        }
        assert_eq!(backoff.len(), 2);
        assert!(backoff.check(&4, t0).is_err(), "the overflow is shared");
        assert_eq!(backoff.check(&1, t0), Ok(()));
        // Once 1 and 2 are forgotten, a new key gets its own entry again.
        let later = t0 + RULE.forget_after;
        backoff.fail(&5, later);
        assert_eq!(backoff.len(), 1);
        assert_eq!(backoff.check(&4, later), Ok(()));
    }

    #[test]
    fn a_bucket_gives_its_burst_then_its_rate() {
        let buckets = Buckets::new(
            BucketRule {
                burst: 3,
                per_minute: 60,
            },
            10,
        );
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(buckets.take(&"a", t0), Ok(()));
        }
        assert_eq!(buckets.take(&"a", t0), Err(Wait(Duration::from_secs(1))));
        assert_eq!(buckets.take(&"b", t0), Ok(()));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(buckets.take(&"a", t1), Ok(()));
        assert!(buckets.take(&"a", t1).is_err());
    }

    #[test]
    fn full_buckets_are_dropped_to_make_room_and_otherwise_share() {
        let rule = BucketRule {
            burst: 1,
            per_minute: 1,
        };
        let buckets = Buckets::new(rule, 1);
        let t0 = Instant::now();
        assert_eq!(buckets.take(&1, t0), Ok(()));
        assert_eq!(buckets.take(&2, t0), Ok(()), "the overflow's first");
        assert!(buckets.take(&3, t0).is_err(), "shared with 2");
        let later = t0 + Duration::from_secs(60);
        assert_eq!(buckets.take(&3, later), Ok(()));
        assert_eq!(buckets.len(), 1);
    }
}
