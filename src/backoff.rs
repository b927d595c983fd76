//! Capped exponential backoff with jitter, as a pure function of the attempt number and
//! a jitter draw, so retry schedules are tested without clocks or randomness.

use std::time::Duration;

/// Why a backoff could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("backoff initial delay must be positive")]
    ZeroInitial,
    #[error("backoff initial delay {initial:?} exceeds the maximum {max:?}")]
    InitialAboveMax { initial: Duration, max: Duration },
}

/// `initial · 2^(attempt-1)`, capped at `max`, then scaled by a jitter factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Result<Self, Error> {
        if initial.is_zero() {
            return Err(Error::ZeroInitial);
        }
        if initial > max {
            return Err(Error::InitialAboveMax { initial, max });
        }
        Ok(Self { initial, max })
    }

    /// A backoff with constant bounds, checked when the constant is evaluated (a bad
    /// pair fails the build when used in a `const`).
    pub const fn constant(initial: Duration, max: Duration) -> Self {
        assert!(!initial.is_zero(), "backoff initial delay must be positive");
        assert!(
            initial.as_nanos() <= max.as_nanos(),
            "backoff initial delay exceeds the maximum"
        );
        Self { initial, max }
    }

    /// The delay before retry number `attempt` (1-based; 0 is treated as 1).
    /// `jitter` in `[0, 1)` scales the delay into `[50 %, 100 %]` of the capped value
    /// ("equal jitter"), so synchronized failures spread out but never retry too early.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(31);
        let base = self
            .initial
            .checked_mul(1u32 << exponent)
            .unwrap_or(self.max)
            .min(self.max);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        base.mul_f64(0.5 + 0.5 * jitter)
    }

    /// [`Backoff::delay`] with a random jitter.
    pub fn delay_random(&self, attempt: u32) -> Duration {
        self.delay(attempt, fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn doubles_then_caps() {
        let b = Backoff::new(S(1), S(60)).unwrap();
        let full: Vec<_> = (1..=8).map(|n| b.delay(n, 1.0)).collect();
        assert_eq!(full, [S(1), S(2), S(4), S(8), S(16), S(32), S(60), S(60)]);
        assert_eq!(b.delay(0, 1.0), S(1));
        assert_eq!(b.delay(u32::MAX, 1.0), S(60));
    }

    #[test]
    fn jitter_stays_within_half_and_full() {
        let b = Backoff::new(S(10), S(100)).unwrap();
        assert_eq!(b.delay(1, 0.0), S(5));
        assert_eq!(b.delay(1, 0.5), Duration::from_millis(7500));
        assert_eq!(b.delay(1, 7.0), S(10), "out-of-range jitter is clamped");
        for _ in 0..100 {
            let d = b.delay_random(3);
            assert!(d >= S(20) && d <= S(40), "{d:?}");
        }
    }

    #[test]
    fn rejects_bad_bounds() {
        assert_eq!(
            Backoff::constant(S(1), S(2)),
            Backoff::new(S(1), S(2)).unwrap()
        );
        assert_eq!(Backoff::new(S(0), S(1)), Err(Error::ZeroInitial));
        assert!(matches!(
            Backoff::new(S(2), S(1)),
            Err(Error::InitialAboveMax { .. })
        ));
    }
}
