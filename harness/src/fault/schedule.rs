//! When a fault fires (after Jepsen's generators, reduced to what incidents need): once at an
//! offset into the workload window, or repeatedly; each firing optionally held for a while
//! before it is healed.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Schedule {
    /// First firing, after the workload window opens.
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// Repeat period; `None` fires once.
    #[serde(with = "humantime_serde")]
    pub every: Option<Duration>,
    /// How many firings at most (1 for a one-shot).
    pub times: u32,
    /// Each firing is delayed by a random amount in `0..=jitter` (seeded: reproducible).
    #[serde(with = "humantime_serde")]
    pub jitter: Duration,
    /// Heal this long after each firing; `None` keeps the fault until the window closes.
    #[serde(with = "humantime_serde")]
    pub hold: Option<Duration>,
}

impl Schedule {
    /// Fire once at `at` and keep the fault until the end of the window.
    pub fn at(at: Duration) -> Self {
        Self { at, every: None, times: 1, jitter: Duration::ZERO, hold: None }
    }

    /// In place from the start of the window to its end.
    pub fn throughout() -> Self {
        Self::at(Duration::ZERO)
    }

    pub fn every(mut self, period: Duration, times: u32) -> Self {
        self.every = Some(period);
        self.times = times.max(1);
        self
    }

    pub fn held_for(mut self, hold: Duration) -> Self {
        self.hold = Some(hold);
        self
    }

    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Offsets (from window start) of every firing that starts before `window` ends.
    pub fn firings(&self, window: Duration, rng: &mut impl Rng) -> Vec<Duration> {
        let mut out = Vec::new();
        for i in 0..self.times {
            let base = self.at + self.every.unwrap_or(Duration::ZERO) * i;
            let jitter = if self.jitter.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_nanos(rng.random_range(0..=self.jitter.as_nanos() as u64))
            };
            let when = base + jitter;
            if when >= window {
                break;
            }
            out.push(when);
            if self.every.is_none() {
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_repeating_schedule_stops_at_the_window_end() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let s = Schedule::at(Duration::from_secs(5)).every(Duration::from_secs(10), 10);
        let f = s.firings(Duration::from_secs(30), &mut rng);
        assert_eq!(f, vec![Duration::from_secs(5), Duration::from_secs(15), Duration::from_secs(25)]);
    }

    #[test]
    fn jitter_is_reproducible_from_the_seed() {
        let s = Schedule::at(Duration::ZERO).every(Duration::from_secs(1), 5).with_jitter(Duration::from_millis(500));
        let a = s.firings(Duration::from_secs(60), &mut rand::rngs::StdRng::seed_from_u64(7));
        let b = s.firings(Duration::from_secs(60), &mut rand::rngs::StdRng::seed_from_u64(7));
        assert_eq!(a, b);
        assert!(a.iter().zip(0..).all(|(t, i)| *t >= Duration::from_secs(i) && *t <= Duration::from_millis(i * 1000 + 500)));
    }
}
