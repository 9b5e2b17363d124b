//! [`train()`]: fits the candidate models and keeps the one that predicts held-out days best.

use thermostat_metrics::Timestamp;

use super::config::{AnomalyConfig, resolve_time_zone};
use super::model::{CandidateScore, Model, ModelState, Seasonality, interpolate, local_position};
use super::{
    DAY_MS, HOUR_MS, MAD_SCALE, MAX_ABS_VALUE, MIN_POINTS, MIN_SEASONAL_SPAN_MS, MIN_SPAN_MS,
    MIN_WEEKLY_SPAN_MS, TRAINING_WINDOW_MS,
};

/// A more complex candidate replaces the chosen one only if its held-out error is below
/// this fraction of the chosen one's (a 5 % improvement).
const IMPROVEMENT: f64 = 0.95;
/// At most this many held-out days (the last seven, one of each weekday).
const MAX_FOLDS: i64 = 7;
/// The trend is fitted on the medians of 6-hour blocks of deseasonalised values.
const TREND_BLOCK_MS: i64 = 6 * HOUR_MS;
/// Pseudo-count shrinking a sparse bucket's weight in smoothing: `n / (n + 3)`.
const SMOOTHING_SHRINK: f64 = 3.0;

/// One usable point with its local positions.
#[derive(Clone, Copy, Debug)]
struct Sample {
    t: i64,
    v: f64,
    day_minute: f64,
    week_minute: f64,
}

/// One fitted candidate.
#[derive(Debug)]
struct Fit {
    seasonality: Seasonality,
    trend: bool,
    origin: i64,
    slope_per_ms: f64,
    expected: Vec<f64>,
    spread: Vec<f64>,
}

/// Trains an anomaly model from a metric's (or expression's) points — any order, gaps
/// allowed — as of `now`. Pure and total: it never panics.
///
/// Usable points are those in `(now − 14 days, now]`, outside `config.excluded`, with a
/// finite value of magnitude below [`super::MAX_ABS_VALUE`]. With fewer than
/// [`MIN_POINTS`] or less than 3 hours of them the model is
/// [`ModelState::PendingTraining`]; below 2 days it is a plain median ± spread
/// ([`ModelState::TrainedInsufficientData`]); from 2 days on seasonality (none, daily,
/// weekly from 8 days) and trend are chosen by held-out error ([`ModelState::Trained`]).
/// `config` should have passed [`AnomalyConfig::validate`]; an unknown time zone is taken
/// as UTC.
pub fn train(points: &[(Timestamp, f64)], config: &AnomalyConfig, now: Timestamp) -> Model {
    let tz = resolve_time_zone(config.time_zone.as_deref());
    let start = now.sub_millis(TRAINING_WINDOW_MS);
    let mut samples: Vec<Sample> = points
        .iter()
        .filter(|&&(t, v)| {
            t > start
                && t <= now
                && v.is_finite()
                && v.abs() < MAX_ABS_VALUE
                && !config.is_excluded(t)
        })
        .map(|&(t, v)| {
            let (day_minute, week_minute) = local_position(t.as_millis(), &tz);
            Sample {
                t: t.as_millis(),
                v,
                day_minute,
                week_minute,
            }
        })
        .collect();
    samples.sort_by(|a, b| a.t.cmp(&b.t).then(a.v.total_cmp(&b.v)));
    let history_ms = match (samples.first(), samples.last()) {
        (Some(a), Some(b)) => b.t.saturating_sub(a.t),
        _ => 0,
    };
    let mut model = Model {
        state: ModelState::PendingTraining,
        trained_at: now,
        time_zone: config.time_zone.clone(),
        points: samples.len(),
        history_ms,
        seasonality: Seasonality::None,
        trend: false,
        trend_per_hour: 0.0,
        trend_origin: now,
        expected: Vec::new(),
        spread: Vec::new(),
        typical_magnitude: 0.0,
        candidates: Vec::new(),
    };
    if samples.len() < MIN_POINTS || history_ms < MIN_SPAN_MS {
        return model;
    }
    model.typical_magnitude =
        median(&mut samples.iter().map(|s| s.v.abs()).collect::<Vec<_>>()).unwrap_or(0.0);

    let (state, chosen) = if history_ms < MIN_SEASONAL_SPAN_MS {
        (
            ModelState::TrainedInsufficientData,
            (Seasonality::None, false),
        )
    } else {
        let (chosen, scores) = choose(&samples, history_ms);
        model.candidates = scores;
        (ModelState::Trained, chosen)
    };
    let fit = fit(&samples, chosen.0, chosen.1);
    model.state = state;
    model.seasonality = fit.seasonality;
    model.trend = fit.trend;
    model.trend_per_hour = fit.slope_per_ms * HOUR_MS as f64;
    model.trend_origin = Timestamp::from_millis(fit.origin);
    model.expected = fit.expected;
    model.spread = fit.spread;
    model
}

/// Leave-one-day-out over the last (up to) seven days: each candidate is fitted on all
/// other points and scored by its mean absolute error on the held-out day; candidates are
/// taken from simplest to most complex and one replaces the chosen only with a 5 % lower
/// error.
fn choose(samples: &[Sample], history_ms: i64) -> ((Seasonality, bool), Vec<CandidateScore>) {
    let weekly = history_ms >= MIN_WEEKLY_SPAN_MS;
    let mut candidates = vec![
        (Seasonality::None, false),
        (Seasonality::None, true),
        (Seasonality::Daily, false),
        (Seasonality::Daily, true),
    ];
    if weekly {
        candidates.extend([(Seasonality::Weekly, false), (Seasonality::Weekly, true)]);
    }
    let days = history_ms / DAY_MS;
    // Weekly needs the held-out hours of the week one week earlier in training.
    let folds = if weekly { days - 7 } else { days - 1 }.clamp(1, MAX_FOLDS);
    let last = samples.last().map_or(0, |s| s.t);
    let mut errors = vec![0.0_f64; candidates.len()];
    let mut tested = 0_usize;
    for fold in 0..folds {
        let hi = last.saturating_sub(fold * DAY_MS);
        let lo = hi.saturating_sub(DAY_MS);
        let (test, training): (Vec<Sample>, Vec<Sample>) =
            samples.iter().partition(|s| lo < s.t && s.t <= hi);
        if test.is_empty() || training.len() < MIN_POINTS {
            continue;
        }
        tested += test.len();
        for (error, &(seasonality, trend)) in errors.iter_mut().zip(&candidates) {
            let f = fit(&training, seasonality, trend);
            *error += test.iter().map(|s| (s.v - f.predict(s)).abs()).sum::<f64>();
        }
    }
    if tested == 0 {
        return ((Seasonality::None, false), Vec::new());
    }
    let scores: Vec<CandidateScore> = candidates
        .iter()
        .zip(&errors)
        .map(|(&(seasonality, trend), &e)| {
            let mae = e / tested as f64;
            CandidateScore {
                seasonality,
                trend,
                mean_absolute_error: if mae.is_finite() { mae } else { f64::MAX },
            }
        })
        .collect();
    let mut best = 0;
    for (i, score) in scores.iter().enumerate().skip(1) {
        if score.mean_absolute_error < scores[best].mean_absolute_error * IMPROVEMENT {
            best = i;
        }
    }
    ((scores[best].seasonality, scores[best].trend), scores)
}

/// Fits one candidate on `samples` (sorted by time, not empty).
fn fit(samples: &[Sample], seasonality: Seasonality, trend: bool) -> Fit {
    let first = samples.first().map_or(0, |s| s.t);
    let last = samples.last().map_or(0, |s| s.t);
    let origin = first + (last - first) / 2;
    let positions: Vec<f64> = samples
        .iter()
        .map(|s| seasonality.pick(s.day_minute, s.week_minute))
        .collect();
    let slope_per_ms = if trend {
        let values: Vec<f64> = samples.iter().map(|s| s.v).collect();
        let seasonal = profile(&values, &positions, seasonality);
        let residuals: Vec<(i64, f64)> = samples
            .iter()
            .zip(&positions)
            .map(|(s, &p)| (s.t, s.v - interpolate(&seasonal, seasonality, p)))
            .collect();
        theil_sen(&residuals)
    } else {
        0.0
    };
    let detrended: Vec<f64> = samples
        .iter()
        .map(|s| s.v - slope_per_ms * (s.t - origin) as f64)
        .collect();
    let expected = profile(&detrended, &positions, seasonality);
    let deviations: Vec<f64> = detrended
        .iter()
        .zip(&positions)
        .map(|(&y, &p)| (y - interpolate(&expected, seasonality, p)).abs())
        .collect();
    let spread = profile(&deviations, &positions, seasonality)
        .into_iter()
        .map(|d| d * MAD_SCALE)
        .collect();
    Fit {
        seasonality,
        trend,
        origin,
        slope_per_ms,
        expected,
        spread,
    }
}

impl Fit {
    fn predict(&self, s: &Sample) -> f64 {
        let position = self.seasonality.pick(s.day_minute, s.week_minute);
        interpolate(&self.expected, self.seasonality, position)
            + self.slope_per_ms * (s.t - self.origin) as f64
    }
}

/// Per-bucket medians of `values`, smoothed over neighbouring buckets (see [`smooth`]).
fn profile(values: &[f64], positions: &[f64], seasonality: Seasonality) -> Vec<f64> {
    let mut groups = vec![Vec::new(); seasonality.buckets()];
    for (&v, &p) in values.iter().zip(positions) {
        groups[seasonality.bucket(p)].push(v);
    }
    let fallback = median(&mut values.to_vec()).unwrap_or(0.0);
    let counts: Vec<usize> = groups.iter().map(Vec::len).collect();
    let medians: Vec<Option<f64>> = groups.iter_mut().map(|g| median(g)).collect();
    smooth(&medians, &counts, fallback)
}

/// Cyclic weighted average of bucket medians: kernel `[1, 2, 1]` (radius 1) times
/// `n / (n + 3)` for a bucket of `n` points; a bucket with no data in reach doubles the
/// radius (triangular kernel `r + 1 − |j|`) until some bucket has data, else `fallback`.
fn smooth(medians: &[Option<f64>], counts: &[usize], fallback: f64) -> Vec<f64> {
    let n = medians.len();
    if n <= 1 {
        return vec![medians.first().copied().flatten().unwrap_or(fallback)];
    }
    (0..n)
        .map(|b| {
            let mut radius = 1_i64;
            loop {
                let (mut sum, mut weights) = (0.0, 0.0);
                for j in -radius..=radius {
                    let i = (b as i64 + j).rem_euclid(n as i64) as usize;
                    if let Some(m) = medians[i] {
                        let c = counts[i] as f64;
                        let w = (radius + 1 - j.abs()) as f64 * c / (c + SMOOTHING_SHRINK);
                        sum += w * m;
                        weights += w;
                    }
                }
                if weights > 0.0 {
                    return sum / weights;
                }
                if radius as usize >= n / 2 {
                    return fallback;
                }
                radius *= 2;
            }
        })
        .collect()
}

/// Theil–Sen slope (per ms) of the 6-hour block medians of `(t, residual)` (sorted by `t`):
/// the median of the slopes between all pairs of blocks; 0 with fewer than two blocks.
fn theil_sen(points: &[(i64, f64)]) -> f64 {
    let Some(&(first, _)) = points.first() else {
        return 0.0;
    };
    let mut blocks: Vec<(f64, f64)> = Vec::new();
    let mut i = 0;
    while i < points.len() {
        let block = (points[i].0 - first) / TREND_BLOCK_MS;
        let mut j = i;
        while j < points.len() && (points[j].0 - first) / TREND_BLOCK_MS == block {
            j += 1;
        }
        let slice = &points[i..j];
        let centre =
            slice.iter().map(|&(t, _)| (t - first) as f64).sum::<f64>() / slice.len() as f64;
        let mut values: Vec<f64> = slice.iter().map(|&(_, r)| r).collect();
        if let Some(m) = median(&mut values) {
            blocks.push((centre, m));
        }
        i = j;
    }
    let mut slopes = Vec::new();
    for (a, &(ta, ra)) in blocks.iter().enumerate() {
        for &(tb, rb) in &blocks[a + 1..] {
            if tb > ta {
                slopes.push((rb - ra) / (tb - ta));
            }
        }
    }
    median(&mut slopes).filter(|s| s.is_finite()).unwrap_or(0.0)
}

/// The median (mean of the two middle values for an even count); `None` when empty.
fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let len = values.len();
    let (below, &mut m, _) = values.select_nth_unstable_by(len / 2, f64::total_cmp);
    if len % 2 == 1 {
        Some(m)
    } else {
        let lower = below.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(lower / 2.0 + m / 2.0)
    }
}
