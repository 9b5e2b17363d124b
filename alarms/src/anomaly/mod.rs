//! Anomaly-detection models: the expected band of a metric (or math expression) learnt from
//! its stored history, as CloudWatch's `ANOMALY_DETECTION_BAND(m, k)` (reference §3.12).
//!
//! CloudWatch does not publish its algorithm; Thermostat uses its own, documented in
//! `docs/anomaly.md` so that users can predict the band:
//!
//! - [`train()`] reads up to the last 14 days of points (outside the excluded ranges of the
//!   [`AnomalyConfig`]) and chooses the seasonality ([`Seasonality::None`], daily or weekly,
//!   in the configured time zone) and whether to follow a linear trend, by which candidate
//!   predicts held-out days best (leave-one-day-out over the last seven days).
//! - The expected value is a per-bucket median profile (96 quarter-hours of the local day,
//!   or 168 hours of the local week), smoothed over neighbouring buckets and interpolated
//!   between bucket centres, plus the trend; the spread is the per-bucket median absolute
//!   residual scaled by 1.4826 (a standard-deviation estimate for normal noise), never
//!   below a floor of 1 % of the expected value or of the typical magnitude.
//! - [`Model::band`] is `expected(t) ± k · spread(t)`.
//!
//! The model is pure data (serde), a few KB, so the runtime persists it and retrains it when
//! [`Model::needs_retraining`] says so.
//!
//! # Layout
//! `config.rs` ([`AnomalyConfig`] and its validation), `train.rs` (fitting and the choice of
//! candidate), `model.rs` ([`Model`], the band), `tests.rs`.

mod config;
mod model;
mod train;

#[cfg(test)]
mod tests;

pub use config::{AnomalyConfig, AnomalyConfigError, AnomalyConfigErrors, MAX_EXCLUDED_RANGES};
pub use model::{CandidateScore, Model, ModelState, Seasonality};
pub use train::train;

/// How far back training reads: 14 days, as CloudWatch ("up to two weeks").
pub const TRAINING_WINDOW_MS: i64 = 14 * DAY_MS;
/// Fewest usable datapoints for any model (else [`ModelState::PendingTraining`]).
pub const MIN_POINTS: usize = 30;
/// Shortest usable history (first to last point) for any model: 3 hours.
pub const MIN_SPAN_MS: i64 = 3 * HOUR_MS;
/// Shortest history for which seasonality and trend are assessed (and the model is
/// [`ModelState::Trained`]): 2 days. Below it the model is a plain median ± spread
/// ([`ModelState::TrainedInsufficientData`]).
pub const MIN_SEASONAL_SPAN_MS: i64 = 2 * DAY_MS;
/// Shortest history for which weekly seasonality is a candidate: 8 days (each held-out day
/// has the same hours of the week one week earlier).
pub const MIN_WEEKLY_SPAN_MS: i64 = 8 * DAY_MS;
/// How often a trained model is retrained: every hour.
pub const RETRAIN_INTERVAL_MS: i64 = HOUR_MS;
/// How often a model still [`ModelState::PendingTraining`] is retrained: every 10 minutes.
pub const PENDING_RETRAIN_INTERVAL_MS: i64 = 10 * 60_000;
/// Scale from the median absolute deviation to a standard deviation (normal noise).
pub const MAD_SCALE: f64 = 1.4826;
/// The spread floor, as a fraction of `|expected(t)|` and of the typical magnitude.
pub const SPREAD_FLOOR_FRACTION: f64 = 0.01;
/// The absolute spread floor, for metrics that are always 0.
pub const SPREAD_FLOOR_ABSOLUTE: f64 = 1e-9;
/// Points whose magnitude is at least this are ignored as corrupt (as are NaN and ±∞).
pub const MAX_ABS_VALUE: f64 = 1e150;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
