//! [`Model`]: a trained anomaly model (pure data, serde) and its band.

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use thermostat_metrics::Timestamp;

use super::config::resolve_time_zone;
use super::{
    HOUR_MS, MIN_POINTS, MIN_SPAN_MS, PENDING_RETRAIN_INTERVAL_MS, RETRAIN_INTERVAL_MS,
    SPREAD_FLOOR_ABSOLUTE, SPREAD_FLOOR_FRACTION,
};

const DAY_MINUTES: f64 = 1440.0;

/// The training state of a model, as CloudWatch's anomaly detector `StateValue`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ModelState {
    /// Too little usable history (fewer than [`MIN_POINTS`] points or less than
    /// [`MIN_SPAN_MS`] between the first and last): no band.
    PendingTraining,
    /// At least 3 hours but less than 2 days of history: a band without seasonality or
    /// trend (median ± spread), wide on seasonal metrics since it spans their whole cycle.
    TrainedInsufficientData,
    /// At least 2 days of history: seasonality and trend chosen by held-out error.
    Trained,
}

impl ModelState {
    /// The CloudWatch name: `PENDING_TRAINING`, `TRAINED_INSUFFICIENT_DATA` or `TRAINED`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelState::PendingTraining => "PENDING_TRAINING",
            ModelState::TrainedInsufficientData => "TRAINED_INSUFFICIENT_DATA",
            ModelState::Trained => "TRAINED",
        }
    }
}

/// The repeating pattern a model follows, in the configured time zone's local time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seasonality {
    /// No pattern: one bucket.
    None,
    /// The time of the local day: 96 buckets of 15 minutes.
    Daily,
    /// The hour of the local week (Monday 00:00 first): 168 buckets of 1 hour.
    Weekly,
}

impl Seasonality {
    /// `none`, `daily` or `weekly`.
    pub fn as_str(self) -> &'static str {
        match self {
            Seasonality::None => "none",
            Seasonality::Daily => "daily",
            Seasonality::Weekly => "weekly",
        }
    }

    /// How many buckets the profile has.
    pub fn buckets(self) -> usize {
        match self {
            Seasonality::None => 1,
            Seasonality::Daily => 96,
            Seasonality::Weekly => 168,
        }
    }

    /// The width of a bucket in minutes.
    pub(super) fn bucket_minutes(self) -> f64 {
        match self {
            Seasonality::None => 7.0 * DAY_MINUTES,
            Seasonality::Daily => 15.0,
            Seasonality::Weekly => 60.0,
        }
    }

    /// The position (minutes into the local day or week) among precomputed positions.
    pub(super) fn pick(self, day_minute: f64, week_minute: f64) -> f64 {
        match self {
            Seasonality::None => 0.0,
            Seasonality::Daily => day_minute,
            Seasonality::Weekly => week_minute,
        }
    }

    /// The bucket of a position.
    pub(super) fn bucket(self, position: f64) -> usize {
        let n = self.buckets();
        let b = (position / self.bucket_minutes()).floor();
        if b.is_finite() && b >= 0.0 {
            (b as usize).min(n - 1)
        } else {
            0
        }
    }
}

/// Minutes into the local day and into the local week (Monday 00:00 = 0) of `t` in `tz`.
/// Local clock time, so that a DST change keeps a daily peak at its local time; times jiff
/// cannot represent fall back to UTC arithmetic.
pub(super) fn local_position(t: i64, tz: &TimeZone) -> (f64, f64) {
    const DAY_MS: i64 = 24 * HOUR_MS;
    let (day_minute, weekday) = match jiff::Timestamp::from_millisecond(t) {
        Ok(ts) => {
            let z = ts.to_zoned(tz.clone());
            let minute = f64::from(z.hour()) * 60.0
                + f64::from(z.minute())
                + f64::from(z.second()) / 60.0
                + f64::from(z.millisecond()) / 60_000.0;
            (minute, f64::from(z.weekday().to_monday_zero_offset()))
        }
        Err(_) => {
            // 1970-01-01 was a Thursday (Monday-zero offset 3).
            let minute = t.rem_euclid(DAY_MS) as f64 / 60_000.0;
            (minute, (t.div_euclid(DAY_MS) + 3).rem_euclid(7) as f64)
        }
    };
    (day_minute, weekday * DAY_MINUTES + day_minute)
}

/// A profile's value at a position: linear between the centres of the two nearest buckets
/// (cyclically), so the expected value has no steps at bucket edges.
pub(super) fn interpolate(values: &[f64], seasonality: Seasonality, position: f64) -> f64 {
    let n = values.len();
    if n <= 1 {
        return values.first().copied().unwrap_or(0.0);
    }
    let x = position / seasonality.bucket_minutes() - 0.5;
    let below = x.floor();
    let frac = if (0.0..=1.0).contains(&(x - below)) {
        x - below
    } else {
        0.0
    };
    let i0 = if below.is_finite() {
        (below as i64).rem_euclid(n as i64) as usize
    } else {
        0
    };
    let i1 = (i0 + 1) % n;
    values[i0] * (1.0 - frac) + values[i1] * frac
}

/// The held-out error of one candidate considered by training.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CandidateScore {
    /// The candidate's seasonality.
    pub seasonality: Seasonality,
    /// Whether the candidate follows a linear trend.
    pub trend: bool,
    /// Mean absolute error of its predictions of the held-out days.
    #[serde(with = "exact")]
    pub mean_absolute_error: f64,
}

/// A trained anomaly model: `expected(t) ± k · spread(t)`; see `docs/anomaly.md`.
///
/// Serialisable (a few KB: at most 2 × 168 numbers) so the runtime stores it across
/// restarts instead of the history. Its numbers are written as shortest round-trip decimal
/// strings (`"19.935117491410537"`), so a restored model is bit-for-bit the same in any
/// serde format (serde_json's default float parser may be one ulp off).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub(super) state: ModelState,
    pub(super) trained_at: Timestamp,
    pub(super) time_zone: Option<String>,
    /// Usable points trained on.
    pub(super) points: usize,
    /// Milliseconds from the first to the last usable point.
    pub(super) history_ms: i64,
    pub(super) seasonality: Seasonality,
    pub(super) trend: bool,
    /// Slope of the trend, per hour (0 without trend).
    #[serde(with = "exact")]
    pub(super) trend_per_hour: f64,
    /// Where the trend term is 0 (the middle of the training span).
    pub(super) trend_origin: Timestamp,
    /// Expected value per bucket, trend removed (empty while pending).
    #[serde(with = "exact_vec")]
    pub(super) expected: Vec<f64>,
    /// Spread per bucket (1.4826 × median absolute residual), before the floor.
    #[serde(with = "exact_vec")]
    pub(super) spread: Vec<f64>,
    /// Median |value| of the training points, for the spread floor.
    #[serde(with = "exact")]
    pub(super) typical_magnitude: f64,
    /// Held-out errors of the candidates considered (empty below 2 days of history).
    pub(super) candidates: Vec<CandidateScore>,
}

// === impl Model ===

impl Model {
    /// The training state.
    pub fn state(&self) -> ModelState {
        self.state
    }

    /// The seasonality chosen ([`Seasonality::None`] while pending or below 2 days).
    pub fn seasonality(&self) -> Seasonality {
        self.seasonality
    }

    /// The trend slope per hour when the model follows a trend, else `None`.
    pub fn trend_per_hour(&self) -> Option<f64> {
        self.trend.then_some(self.trend_per_hour)
    }

    /// When the model was trained (the `now` given to [`super::train`]).
    pub fn trained_at(&self) -> Timestamp {
        self.trained_at
    }

    /// The IANA time zone of the seasonality (UTC when `None`).
    pub fn time_zone(&self) -> Option<&str> {
        self.time_zone.as_deref()
    }

    /// How many usable points training saw.
    pub fn points(&self) -> usize {
        self.points
    }

    /// The held-out errors of the candidates training compared, in the order considered
    /// (none, none + trend, daily, daily + trend, weekly, weekly + trend).
    pub fn candidates(&self) -> &[CandidateScore] {
        &self.candidates
    }

    /// Whether the runtime should retrain now: [`RETRAIN_INTERVAL_MS`] (1 hour) after
    /// training, [`PENDING_RETRAIN_INTERVAL_MS`] (10 minutes) while pending, or when the
    /// clock went back before `trained_at`.
    pub fn needs_retraining(&self, now: Timestamp) -> bool {
        let interval = if self.state == ModelState::PendingTraining {
            PENDING_RETRAIN_INTERVAL_MS
        } else {
            RETRAIN_INTERVAL_MS
        };
        now < self.trained_at
            || now.as_millis().saturating_sub(self.trained_at.as_millis()) >= interval
    }

    /// The expected value at `t`, or `None` while pending.
    pub fn expected(&self, t: Timestamp) -> Option<f64> {
        self.expected_and_spread(t).map(|(e, _)| e)
    }

    /// The spread (one standard deviation, floored) at `t`, or `None` while pending.
    pub fn spread(&self, t: Timestamp) -> Option<f64> {
        self.expected_and_spread(t).map(|(_, s)| s)
    }

    /// The band `(lower, upper) = expected(t) ∓ k · spread(t)` of
    /// `ANOMALY_DETECTION_BAND(m, k)`; `None` while [`ModelState::PendingTraining`], or
    /// when `k` is negative or not finite. Always `lower ≤ upper` when `Some`.
    pub fn band(&self, t: Timestamp, k: f64) -> Option<(f64, f64)> {
        if !k.is_finite() || k < 0.0 {
            return None;
        }
        let (expected, spread) = self.expected_and_spread(t)?;
        let (lower, upper) = (expected - k * spread, expected + k * spread);
        (lower <= upper).then_some((lower, upper))
    }

    /// The reason of an alarm's `INSUFFICIENT_DATA` while the model is pending, e.g.
    /// `the anomaly model has not seen enough data yet: 12 datapoints spanning 0 h 11 min …`;
    /// `None` once a band exists.
    pub fn insufficient_data_reason(&self) -> Option<String> {
        if self.state != ModelState::PendingTraining {
            return None;
        }
        let minutes = self.history_ms / 60_000;
        Some(format!(
            "the anomaly model has not seen enough data yet: {} datapoint{} spanning {} h {} min \
             in the last 14 days outside excluded ranges (needs at least {} datapoints spanning {} h)",
            self.points,
            if self.points == 1 { "" } else { "s" },
            minutes / 60,
            minutes % 60,
            MIN_POINTS,
            MIN_SPAN_MS / HOUR_MS,
        ))
    }

    fn expected_and_spread(&self, t: Timestamp) -> Option<(f64, f64)> {
        if self.state == ModelState::PendingTraining || self.expected.is_empty() {
            return None;
        }
        let position = match self.seasonality {
            Seasonality::None => 0.0,
            s => {
                let tz = resolve_time_zone(self.time_zone.as_deref());
                let (day, week) = local_position(t.as_millis(), &tz);
                s.pick(day, week)
            }
        };
        let hours = (t.as_millis() as f64 - self.trend_origin.as_millis() as f64) / HOUR_MS as f64;
        let trend = if self.trend {
            self.trend_per_hour * hours
        } else {
            0.0
        };
        let expected = interpolate(&self.expected, self.seasonality, position) + trend;
        let floor = (SPREAD_FLOOR_FRACTION * expected.abs())
            .max(SPREAD_FLOOR_FRACTION * self.typical_magnitude)
            .max(SPREAD_FLOOR_ABSOLUTE);
        let spread = interpolate(&self.spread, self.seasonality, position).max(floor);
        (expected.is_finite() && spread.is_finite()).then_some((expected, spread))
    }
}

/// Serde for an `f64` as its shortest round-trip decimal string (Rust's `{:?}`: `"0.5"`,
/// `"1e-9"`), parsed back exactly by `str::parse`.
mod exact {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{value:?}"))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map_err(|_| D::Error::custom(format!("not a number: {text:?}")))
    }
}

/// Serde for a `Vec<f64>` as a list of [`exact`] strings.
mod exact_vec {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(
        values: &[f64],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(values.iter().map(|v| format!("{v:?}")))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<f64>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|text| {
                text.parse()
                    .map_err(|_| D::Error::custom(format!("not a number: {text:?}")))
            })
            .collect()
    }
}
