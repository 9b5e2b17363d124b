//! Time as data: [`Timestamp`], [`Period`] and the [`Clock`] port.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// A timestamp from Unix milliseconds.
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// A timestamp from Unix seconds.
    pub const fn from_secs(s: i64) -> Self {
        Timestamp(s.saturating_mul(1000))
    }

    /// Unix milliseconds.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// This timestamp plus `ms` milliseconds (saturating).
    pub const fn add_millis(self, ms: i64) -> Self {
        Timestamp(self.0.saturating_add(ms))
    }

    /// This timestamp minus `ms` milliseconds (saturating).
    pub const fn sub_millis(self, ms: i64) -> Self {
        Timestamp(self.0.saturating_sub(ms))
    }

    /// Rounds down to a multiple of `step_ms` since the epoch (`step_ms` > 0).
    pub const fn floor_to(self, step_ms: i64) -> Self {
        Timestamp(self.0.div_euclid(step_ms) * step_ms)
    }

    /// RFC 3339 rendering in UTC with millisecond precision when needed.
    pub fn to_rfc3339(self) -> String {
        match jiff::Timestamp::from_millisecond(self.0) {
            Ok(ts) => ts.to_string(),
            Err(_) => format!("{}ms", self.0),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// One second in milliseconds.
pub const SECOND_MS: i64 = 1000;
/// One minute in milliseconds.
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
/// One hour in milliseconds.
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
/// One day in milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// An aggregation period: a whole, positive number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Period(u32);

impl Period {
    /// One second (high-resolution storage granularity).
    pub const ONE_SECOND: Period = Period(1);
    /// One minute (standard storage granularity).
    pub const ONE_MINUTE: Period = Period(60);
    /// Five minutes (first roll-up).
    pub const FIVE_MINUTES: Period = Period(300);
    /// One hour (second roll-up).
    pub const ONE_HOUR: Period = Period(3600);

    /// A period of `seconds`, which must be positive.
    ///
    /// # Errors
    /// Returns the rule broken when `seconds` is zero or negative.
    pub fn try_from_secs(seconds: i64) -> Result<Self, &'static str> {
        if seconds <= 0 {
            return Err("must be a positive number of seconds");
        }
        u32::try_from(seconds)
            .map(Period)
            .map_err(|_| "is too large")
    }

    /// Seconds in this period.
    pub const fn as_secs(self) -> u32 {
        self.0
    }

    /// Milliseconds in this period.
    pub const fn as_millis(self) -> i64 {
        self.0 as i64 * SECOND_MS
    }

    /// The start of the period that contains `ts`, periods being aligned to the epoch.
    pub const fn window_start(self, ts: Timestamp) -> Timestamp {
        ts.floor_to(self.as_millis())
    }
}

/// The clock port. Cores never read the wall clock; they take `now` as a parameter and the
/// shell asks a `Clock`.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The wall clock: the only place in the workspace that reads `SystemTime::now`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(
        clippy::disallowed_methods,
        reason = "SystemClock is the one sanctioned reader of the wall clock"
    )]
    fn now(&self) -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that moves only when told to: for tests, back-tests and simulations.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock(AtomicI64::new(start.0))
    }

    /// Sets the time.
    pub fn set(&self, ts: Timestamp) {
        self.0.store(ts.0, Ordering::SeqCst);
    }

    /// Moves the time forward by `ms` milliseconds.
    pub fn advance_millis(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_handles_negative_times() {
        assert_eq!(Timestamp(-1).floor_to(MINUTE_MS), Timestamp(-MINUTE_MS));
        assert_eq!(Timestamp(59_999).floor_to(MINUTE_MS), Timestamp(0));
        assert_eq!(
            Period::ONE_MINUTE.window_start(Timestamp(61_000)),
            Timestamp(60_000)
        );
    }

    #[test]
    fn period_rejects_non_positive() {
        assert!(Period::try_from_secs(0).is_err());
        assert!(Period::try_from_secs(-60).is_err());
        assert_eq!(Period::try_from_secs(300).map(Period::as_secs), Ok(300));
    }

    #[test]
    fn rfc3339_rendering() {
        assert_eq!(Timestamp::from_secs(0).to_rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp(1_500).to_rfc3339(), "1970-01-01T00:00:01.5Z");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Timestamp(10));
        assert_eq!(c.now(), Timestamp(10));
        c.advance_millis(5);
        assert_eq!(c.now(), Timestamp(15));
        c.set(Timestamp(3));
        assert_eq!(c.now(), Timestamp(3));
    }
}
