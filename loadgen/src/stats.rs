//! Summaries of latency samples.

use serde::Serialize;

/// The value at percentile `p` (0 < p ≤ 100) of `sorted`, by the nearest-rank
/// method: the smallest sample that at least `p`% of samples are at or below. It
/// is always one of the samples, never an interpolation.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() || !(p > 0.0 && p <= 100.0) {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    pub samples: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    /// Summarises samples in microseconds; sorts them in place.
    pub fn from_micros(samples: &mut [u32]) -> Option<Latency> {
        samples.sort_unstable();
        let ms = |p: f64| percentile(samples, p).map(|us| f64::from(us) / 1000.0);
        let total: u64 = samples.iter().map(|&us| u64::from(us)).sum();
        Some(Latency {
            samples: samples.len(),
            p50_ms: ms(50.0)?,
            p95_ms: ms(95.0)?,
            p99_ms: ms(99.0)?,
            max_ms: ms(100.0)?,
            mean_ms: total as f64 / samples.len() as f64 / 1000.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(samples: &[u32], p: f64, expected: Option<u32>) {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        assert_eq!(percentile(&sorted, p), expected, "p{p} of {samples:?}");
    }

    #[test]
    fn the_median_of_an_odd_count_is_the_middle() {
        check(&[3, 1, 2], 50.0, Some(2));
    }

    #[test]
    fn the_median_of_an_even_count_is_the_lower_middle() {
        check(&[1, 2, 3, 4], 50.0, Some(2));
    }

    #[test]
    fn p99_of_a_hundred_is_the_ninety_ninth() {
        let samples: Vec<u32> = (1..=100).collect();
        check(&samples, 99.0, Some(99));
        check(&samples, 95.0, Some(95));
        check(&samples, 100.0, Some(100));
    }

    #[test]
    fn p99_of_a_few_samples_is_the_largest() {
        check(&[5, 1, 9], 99.0, Some(9));
    }

    #[test]
    fn a_tiny_percentile_is_the_smallest() {
        check(&[5, 1, 9], 0.001, Some(1));
    }

    #[test]
    fn no_samples_or_nonsense_give_nothing() {
        check(&[], 50.0, None);
        check(&[1], 0.0, None);
        check(&[1], 101.0, None);
        check(&[1], f64::NAN, None);
    }

    #[test]
    fn a_summary_is_in_milliseconds() {
        let mut samples = vec![1000, 3000, 2000];
        let summary = Latency::from_micros(&mut samples).unwrap();
        assert_eq!(summary.p50_ms, 2.0);
        assert_eq!(summary.max_ms, 3.0);
        assert_eq!(summary.mean_ms, 2.0);
        assert_eq!(Latency::from_micros(&mut []), None);
    }
}
