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
    /// The earliest time RFC 3339 can write, `0000-01-01T00:00:00Z`.
    pub const EARLIEST: Timestamp = Timestamp(-62_167_219_200_000);
    /// The latest time RFC 3339 can write, `9999-12-31T23:59:59.999Z`.
    pub const LATEST: Timestamp = Timestamp(253_402_300_799_999);

    /// A timestamp from Unix milliseconds.
    pub const fn from_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    /// A timestamp from Unix seconds.
    pub const fn from_secs(seconds: i64) -> Self {
        Timestamp(seconds.saturating_mul(1000))
    }

    /// Unix milliseconds.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// This timestamp plus `millis` milliseconds (saturating).
    pub const fn add_millis(self, millis: i64) -> Self {
        Timestamp(self.0.saturating_add(millis))
    }

    /// This timestamp minus `millis` milliseconds (saturating).
    pub const fn sub_millis(self, millis: i64) -> Self {
        Timestamp(self.0.saturating_sub(millis))
    }

    /// This timestamp plus `millis` milliseconds, or `None` when that is not an `i64`.
    pub const fn checked_add_millis(self, millis: i64) -> Option<Self> {
        match self.0.checked_add(millis) {
            Some(t) => Some(Timestamp(t)),
            None => None,
        }
    }

    /// Rounds down to a multiple of `step_ms` since the epoch (`step_ms` > 0); saturates at
    /// `i64::MIN` instead of overflowing (see [`Timestamp::checked_floor_to`]).
    pub const fn floor_to(self, step_ms: i64) -> Self {
        Timestamp(self.0.saturating_sub(self.0.rem_euclid(step_ms)))
    }

    /// Rounds down to a multiple of `step_ms` since the epoch, or `None` when `step_ms` is not
    /// positive or the multiple is below `i64::MIN`.
    pub const fn checked_floor_to(self, step_ms: i64) -> Option<Self> {
        if step_ms <= 0 {
            return None;
        }
        match self.0.checked_sub(self.0.rem_euclid(step_ms)) {
            Some(t) => Some(Timestamp(t)),
            None => None,
        }
    }

    /// Whether RFC 3339 can write this time: [`Timestamp::EARLIEST`]..=[`Timestamp::LATEST`].
    pub const fn is_representable(self) -> bool {
        self.0 >= Self::EARLIEST.0 && self.0 <= Self::LATEST.0
    }

    /// A timestamp from Unix milliseconds that RFC 3339 can write (years 0000 to 9999).
    ///
    /// # Errors
    /// [`TimeError::OutOfRange`] outside [`Timestamp::EARLIEST`]..=[`Timestamp::LATEST`].
    pub const fn try_from_millis(millis: i64) -> Result<Self, TimeError> {
        let t = Timestamp(millis);
        if t.is_representable() {
            Ok(t)
        } else {
            Err(TimeError::OutOfRange)
        }
    }

    /// A timestamp from Unix seconds with a fraction (rounded to the millisecond).
    ///
    /// # Errors
    /// [`TimeError::NotFinite`] for NaN and infinities, [`TimeError::OutOfRange`] outside
    /// years 0000 to 9999.
    pub fn try_from_secs_f64(seconds: f64) -> Result<Self, TimeError> {
        if !seconds.is_finite() {
            return Err(TimeError::NotFinite);
        }
        let ms = (seconds * 1000.0).round();
        // Compared as floats first: every representable time is far inside f64's exact range.
        if ms < Self::EARLIEST.0 as f64 || ms > Self::LATEST.0 as f64 {
            return Err(TimeError::OutOfRange);
        }
        Self::try_from_millis(ms as i64)
    }

    /// Parses an RFC 3339 time (`2024-01-01T00:00:00Z`, `2024-01-01T01:00:00.5+01:00`): any
    /// date from 0000-01-01 to 9999-12-31 with a time and a UTC offset, as long as the instant
    /// it names in UTC is in that range too. A leap second (`:60`) is read as `:59`, and the
    /// fraction is truncated to the millisecond. jiff's own `Timestamp` stops a day short of
    /// the end of 9999 (it leaves room for any offset), so the date, time and offset are read
    /// with jiff's parser and combined here.
    ///
    /// # Errors
    /// [`TimeError::NotRfc3339`] when the text is not such a time, [`TimeError::OutOfRange`]
    /// when the instant is outside years 0000 to 9999 in UTC.
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimeError> {
        let not_rfc3339 = || TimeError::NotRfc3339(crate::quote::quote(text));
        let t = text.trim();
        if t.len() > MAX_RFC3339_LEN {
            return Err(not_rfc3339());
        }
        let pieces = jiff::fmt::temporal::Pieces::parse(t).map_err(|_| not_rfc3339())?;
        let (Some(time), Some(offset)) = (pieces.time(), pieces.to_numeric_offset()) else {
            return Err(not_rfc3339());
        };
        let local = pieces.date().to_datetime(time);
        let since_epoch = local.duration_since(jiff::civil::date(1970, 1, 1).at(0, 0, 0, 0));
        let ms = since_epoch.as_millis() - i128::from(offset.seconds()) * 1000;
        let ms = i64::try_from(ms).map_err(|_| TimeError::OutOfRange)?;
        Self::try_from_millis(ms)
    }

    /// RFC 3339 rendering in UTC with millisecond precision when needed; a time outside
    /// years 0000 to 9999 is written as `<n>ms`.
    pub fn to_rfc3339(self) -> String {
        if let Ok(ts) = jiff::Timestamp::from_millisecond(self.0) {
            return ts.to_string();
        }
        // jiff's Timestamp ends a day before 9999 does: the last day is written from its
        // civil date and time.
        let epoch = jiff::civil::date(1970, 1, 1).at(0, 0, 0, 0);
        match epoch.checked_add(jiff::SignedDuration::from_millis(self.0)) {
            Ok(dt) if self.is_representable() => format!("{dt}Z"),
            _ => format!("{}ms", self.0),
        }
    }
}

/// Longest text [`Timestamp::parse_rfc3339`] reads (a time with nanoseconds, an offset and a
/// time zone annotation fits); longer text is refused before it is parsed.
const MAX_RFC3339_LEN: usize = 128;

/// Why a time was refused. Messages state the rule; the caller names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// The text is not an RFC 3339 time.
    #[error("must be an RFC 3339 time with a UTC offset, such as 2024-01-01T00:00:00Z (got {0})")]
    NotRfc3339(String),
    /// The time is outside what RFC 3339 can write.
    #[error("must be between 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z")]
    OutOfRange,
    /// A number of seconds that is NaN or infinite.
    #[error("must be a finite number")]
    NotFinite,
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

    /// The start of the period that contains `timestamp`, periods being aligned to the epoch.
    pub const fn window_start(self, timestamp: Timestamp) -> Timestamp {
        timestamp.floor_to(self.as_millis())
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
    pub fn set(&self, timestamp: Timestamp) {
        self.0.store(timestamp.0, Ordering::SeqCst);
    }

    /// Moves the time forward by `millis` milliseconds.
    pub fn advance_millis(&self, millis: i64) {
        self.0.fetch_add(millis, Ordering::SeqCst);
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
    fn floor_saturates_instead_of_overflowing() {
        assert_eq!(Timestamp(i64::MIN).floor_to(MINUTE_MS), Timestamp(i64::MIN));
        assert_eq!(Timestamp(i64::MIN).checked_floor_to(MINUTE_MS), None);
        assert_eq!(
            Timestamp(i64::MIN).checked_floor_to(1),
            Some(Timestamp(i64::MIN))
        );
        assert_eq!(Timestamp(i64::MAX).checked_floor_to(0), None);
        assert_eq!(
            Timestamp(i64::MAX).checked_floor_to(MINUTE_MS),
            Some(Timestamp(i64::MAX - i64::MAX % MINUTE_MS))
        );
        assert_eq!(Timestamp(-1).checked_floor_to(1000), Some(Timestamp(-1000)));
        assert_eq!(Timestamp(i64::MAX).checked_add_millis(1), None);
        assert_eq!(Timestamp(1).checked_add_millis(-2), Some(Timestamp(-1)));
    }

    #[test]
    fn parses_every_rfc3339_year_from_0000_to_9999() {
        let p = Timestamp::parse_rfc3339;
        assert_eq!(
            p("9999-12-31T23:59:59Z"),
            Ok(Timestamp(253_402_300_799_000))
        );
        assert_eq!(p("9999-12-31T23:59:59.999Z"), Ok(Timestamp::LATEST));
        assert_eq!(p("9999-12-31T23:59:59.9999999Z"), Ok(Timestamp::LATEST));
        assert_eq!(p("0000-01-01T00:00:00Z"), Ok(Timestamp::EARLIEST));
        assert_eq!(p("1970-01-01T01:00:00+01:00"), Ok(Timestamp::EPOCH));
        assert_eq!(p(" 1970-01-01t00:00:01.5z "), Ok(Timestamp(1_500)));
        // A leap second is read as the second before it (as jiff does).
        assert_eq!(p("1970-01-01T00:00:60Z"), Ok(Timestamp(59_000)));
        // Written in range, but in UTC outside it.
        assert_eq!(p("9999-12-31T23:59:59-00:01"), Err(TimeError::OutOfRange));
        assert_eq!(p("0000-01-01T00:00:00+00:01"), Err(TimeError::OutOfRange));
        assert_eq!(p("-000001-01-01T00:00:00Z"), Err(TimeError::OutOfRange));
        for bad in [
            "10000-01-01T00:00:00Z",
            "+010000-01-01T00:00:00Z",
            "2024-01-01",
            "2024-01-01T00:00:00",
            "2024-02-30T00:00:00Z",
            "2024-01-01T24:00:01Z",
            "yesterday",
            "",
        ] {
            assert!(
                matches!(p(bad), Err(TimeError::NotRfc3339(_))),
                "{bad}: {:?}",
                p(bad)
            );
        }
    }

    #[test]
    fn errors_quote_a_bounded_prefix() {
        let long = "9".repeat(100_000);
        let msg = Timestamp::parse_rfc3339(&long).unwrap_err().to_string();
        assert!(msg.len() < 250, "{msg}");
        assert!(msg.contains("(100000 bytes)"), "{msg}");
    }

    #[test]
    fn renders_the_whole_range() {
        assert_eq!(Timestamp::LATEST.to_rfc3339(), "9999-12-31T23:59:59.999Z");
        assert_eq!(
            Timestamp(253_402_300_799_000).to_rfc3339(),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(Timestamp::EARLIEST.to_rfc3339(), "0000-01-01T00:00:00Z");
        assert_eq!(Timestamp(i64::MAX).to_rfc3339(), format!("{}ms", i64::MAX));
        assert_eq!(Timestamp(i64::MIN).to_rfc3339(), format!("{}ms", i64::MIN));
        for t in [
            Timestamp::EARLIEST,
            Timestamp(0),
            Timestamp(1_500),
            Timestamp::LATEST,
        ] {
            assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Ok(t));
        }
    }

    #[test]
    fn seconds_must_be_finite_and_in_range() {
        let s = Timestamp::try_from_secs_f64;
        assert_eq!(s(1.5), Ok(Timestamp(1_500)));
        assert_eq!(s(f64::NAN), Err(TimeError::NotFinite));
        assert_eq!(s(f64::INFINITY), Err(TimeError::NotFinite));
        assert_eq!(s(-1e300), Err(TimeError::OutOfRange));
        assert_eq!(s(1e300), Err(TimeError::OutOfRange));
        assert_eq!(s(253_402_300_799.999), Ok(Timestamp::LATEST));
        assert_eq!(s(253_402_300_800.0), Err(TimeError::OutOfRange));
        assert_eq!(
            Timestamp::try_from_millis(i64::MIN),
            Err(TimeError::OutOfRange)
        );
        assert_eq!(
            Timestamp::try_from_millis(i64::MAX),
            Err(TimeError::OutOfRange)
        );
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
