//! A clock tests set and advance, and a reproducible random source.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

use crate::ports::{Clock, Random};

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct SettableClock {
    millis: AtomicI64,
}

impl SettableClock {
    pub fn at_millis(millis: i64) -> Self {
        Self {
            millis: AtomicI64::new(millis),
        }
    }

    /// Now, to the millisecond, so tests read naturally against wall-clock tokens.
    pub fn now_ish() -> Self {
        Self::at_millis(Utc::now().timestamp_millis())
    }

    pub fn set_millis(&self, millis: i64) {
        self.millis.store(millis, Ordering::SeqCst);
    }

    pub fn advance(&self, by: std::time::Duration) {
        self.millis
            .fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for SettableClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.millis.load(Ordering::SeqCst))
            .expect("a representable instant")
    }
}

/// SplitMix64 from a seed: the same seed gives the same ids, salts and shards.
#[derive(Debug)]
pub struct SeededRandom {
    state: Mutex<u64>,
}

impl SeededRandom {
    pub fn new(seed: u64) -> Self {
        Self {
            state: Mutex::new(seed),
        }
    }
}

impl Random for SeededRandom {
    fn fill(&self, buf: &mut [u8]) {
        let mut state = self.state.lock().expect("random state");
        for chunk in buf.chunks_mut(8) {
            *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = *state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_moves_only_when_told() {
        let clock = SettableClock::at_millis(1_000);
        assert_eq!(clock.now_millis(), 1_000);
        clock.advance(std::time::Duration::from_secs(2));
        assert_eq!(clock.now_millis(), 3_000);
        clock.set_millis(10);
        assert_eq!(clock.now_millis(), 10);
    }

    #[test]
    fn same_seed_same_bytes() {
        let (a, b) = (SeededRandom::new(7), SeededRandom::new(7));
        assert_eq!(a.bytes(19), b.bytes(19));
        assert_ne!(a.bytes(16), SeededRandom::new(8).bytes(16));
        assert!(a.below(16) < 16);
    }
}
