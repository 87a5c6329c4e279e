//! Allowances: how much a connection, or a participant, may still send.

use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How much a sender may still send (messages, or bytes): `rate` a second, up to
/// `burst` saved up.
pub struct Allowance {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl Allowance {
    pub fn new(rate: u32, burst: u32) -> Allowance {
        Allowance {
            tokens: f64::from(burst),
            rate: f64::from(rate),
            burst: f64::from(burst),
            last: Instant::now(),
        }
    }

    /// Takes `amount` (a message, or bytes), if there is that much.
    pub fn take(&mut self, now: Instant, amount: f64) -> bool {
        let earned = now.saturating_duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + earned).min(self.burst);
        self.last = now;
        if self.tokens >= amount {
            self.tokens -= amount;
            true
        } else {
            false
        }
    }

    /// Whether as much has been saved up again by `now` as at the start: an allowance
    /// that is full is no different from a new one.
    pub fn is_full(&self, now: Instant) -> bool {
        let earned = now.saturating_duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens + earned >= self.burst
    }
}

/// An allowance several connections share, and take from one at a time.
#[derive(Clone)]
pub struct Shared(Arc<Mutex<Allowance>>);

impl Shared {
    pub fn new(allowance: Allowance) -> Shared {
        Shared(Arc::new(Mutex::new(allowance)))
    }

    pub fn take(&self, now: Instant, amount: f64) -> bool {
        self.lock().take(now, amount)
    }

    /// Whether nothing but the holder of this one uses it, and it is full again.
    pub fn unused(&self, now: Instant) -> bool {
        Arc::strong_count(&self.0) == 1 && self.lock().is_full(now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Allowance> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_is_allowed_then_only_the_rate() {
        let start = Instant::now();
        let mut allowance = Allowance::new(10, 5);
        allowance.last = start;
        assert!((0..5).all(|_| allowance.take(start, 1.0)));
        assert!(!allowance.take(start, 1.0));
        // A tenth of a second earns one more, and no more than one.
        let later = start + Duration::from_millis(100);
        assert!(allowance.take(later, 1.0));
        assert!(!allowance.take(later, 1.0));
        // A long quiet spell saves up no more than the burst.
        let much_later = later + Duration::from_secs(60);
        assert_eq!(
            (0..10).filter(|_| allowance.take(much_later, 1.0)).count(),
            5
        );
    }
}
