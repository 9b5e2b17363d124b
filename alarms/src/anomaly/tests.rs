//! Tests of the anomaly model: seasonality choice, trend, exclusions, time zones, state,
//! serde, robustness (reference §3.12; the method is `docs/anomaly.md`).

use jiff::tz::TimeZone;
use proptest::prelude::*;
use thermostat_metrics::Timestamp;

use super::*;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// A tiny deterministic generator (Knuth's MMIX LCG), so tests need no `rand`.
struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// Uniform noise in `[-amplitude, amplitude]`.
    fn noise(&mut self, amplitude: f64) -> f64 {
        (self.unit() * 2.0 - 1.0) * amplitude
    }
}

fn ts(rfc3339: &str) -> Timestamp {
    let t: jiff::Timestamp = rfc3339.parse().expect("test timestamp");
    Timestamp::from_millis(t.as_millisecond())
}

/// One point a minute over `[start, start + minutes)`.
fn series(start: Timestamp, minutes: i64, mut f: impl FnMut(i64) -> f64) -> Vec<(Timestamp, f64)> {
    (0..minutes)
        .map(|i| {
            let t = start.add_millis(i * MINUTE);
            (t, f(t.as_millis()))
        })
        .collect()
}

/// Daily sine peaking at 14:00 UTC: 100 ± 50.
fn daily_level(t: i64) -> f64 {
    let hour = t.rem_euclid(DAY) as f64 / HOUR as f64;
    100.0 + 50.0 * (std::f64::consts::TAU * (hour - 8.0) / 24.0).sin()
}

fn share_inside(model: &Model, points: &[(Timestamp, f64)], k: f64) -> f64 {
    let inside = points
        .iter()
        .filter(|&&(t, v)| model.band(t, k).is_some_and(|(lo, hi)| lo <= v && v <= hi))
        .count();
    inside as f64 / points.len() as f64
}

#[test]
fn daily_seasonal_data_trains_a_daily_model_that_flags_an_off_hours_spike() {
    let start = ts("2026-03-02T00:00:00Z");
    let mut rng = Lcg(1);
    let history = series(start, 14 * 24 * 60, |t| daily_level(t) + rng.noise(5.0));
    let now = start.add_millis(14 * DAY);
    let model = train(&history, &AnomalyConfig::default(), now);
    assert_eq!(model.state(), ModelState::Trained);
    assert_eq!(model.seasonality(), Seasonality::Daily);
    assert_eq!(model.trend_per_hour(), None);

    let next_day = series(now, 24 * 60, |t| daily_level(t) + rng.noise(5.0));
    let share = share_inside(&model, &next_day, 2.0);
    assert!(
        share >= 0.99,
        "only {share} of a normal day inside the band"
    );

    // At 04:00 the metric sits near 57; the day-time level (150) is an anomaly there.
    let four_am = now.add_millis(4 * HOUR);
    let (lo, hi) = model.band(four_am, 2.0).expect("band");
    assert!(hi < 80.0 && lo > 30.0, "band at 04:00 is ({lo}, {hi})");
    assert!(150.0 > hi);
    // ...but not at 14:00.
    let (lo, hi) = model.band(now.add_millis(14 * HOUR), 2.0).expect("band");
    assert!(lo <= 150.0 && 150.0 <= hi, "band at 14:00 is ({lo}, {hi})");
}

#[test]
fn weekday_and_weekend_levels_choose_weekly_even_when_the_last_day_is_a_weekday() {
    // 2026-03-04 is a Wednesday, so the last day of history is a Tuesday.
    let start = ts("2026-03-04T00:00:00Z");
    let mut rng = Lcg(2);
    let weekend = |t: i64| (t.div_euclid(DAY) + 3).rem_euclid(7) >= 5;
    let level = |t: i64| if weekend(t) { 20.0 } else { 100.0 };
    let history = series(start, 14 * 24 * 60, |t| level(t) + rng.noise(5.0));
    let now = start.add_millis(14 * DAY);
    let model = train(&history, &AnomalyConfig::default(), now);
    assert_eq!(model.state(), ModelState::Trained);
    assert_eq!(
        model.seasonality(),
        Seasonality::Weekly,
        "{:?}",
        model.candidates()
    );

    let saturday_noon = ts("2026-03-21T12:00:00Z");
    let (lo, hi) = model.band(saturday_noon, 2.0).expect("band");
    assert!(lo <= 20.0 && 20.0 <= hi, "Saturday band ({lo}, {hi})");
    assert!(
        100.0 > hi,
        "a weekday level on Saturday must be outside ({lo}, {hi})"
    );
    let wednesday_noon = ts("2026-03-18T12:00:00Z");
    let (lo, hi) = model.band(wednesday_noon, 2.0).expect("band");
    assert!(lo <= 100.0 && 100.0 <= hi, "Wednesday band ({lo}, {hi})");
}

#[test]
fn a_quiet_sunday_alone_is_found_by_holding_out_each_of_the_last_seven_days() {
    // Only Sundays differ; the last day of history (a Tuesday) looks like any weekday, so
    // holding out only that day would keep the daily model (docs/anomaly.md §2.3).
    let start = ts("2026-03-04T00:00:00Z");
    let mut rng = Lcg(10);
    let sunday = |t: i64| (t.div_euclid(DAY) + 3).rem_euclid(7) == 6;
    let history = series(
        start,
        14 * 24 * 60,
        |t| if sunday(t) { 20.0 } else { 100.0 } + rng.noise(5.0),
    );
    let now = start.add_millis(14 * DAY);
    let model = train(&history, &AnomalyConfig::default(), now);
    assert_eq!(
        model.seasonality(),
        Seasonality::Weekly,
        "{:?}",
        model.candidates()
    );
    let (lo, hi) = model.band(ts("2026-03-22T12:00:00Z"), 2.0).expect("band");
    assert!(
        lo <= 20.0 && (20.0..100.0).contains(&hi),
        "Sunday band ({lo}, {hi})"
    );
}

#[test]
fn flat_noise_chooses_no_seasonality_and_no_trend() {
    let start = ts("2026-03-02T00:00:00Z");
    let mut rng = Lcg(3);
    let history = series(start, 14 * 24 * 60, |_| 50.0 + rng.noise(2.0));
    let now = start.add_millis(14 * DAY);
    let model = train(&history, &AnomalyConfig::default(), now);
    assert_eq!(model.state(), ModelState::Trained);
    assert_eq!(
        model.seasonality(),
        Seasonality::None,
        "{:?}",
        model.candidates()
    );
    assert_eq!(model.trend_per_hour(), None, "{:?}", model.candidates());
    let next_day = series(now, 24 * 60, |_| 50.0 + rng.noise(2.0));
    assert!(share_inside(&model, &next_day, 2.0) >= 0.99);
    let (lo, hi) = model.band(now, 2.0).expect("band");
    assert!(lo > 45.0 && hi < 55.0, "({lo}, {hi})");
}

#[test]
fn a_linear_trend_is_followed() {
    let start = ts("2026-03-02T00:00:00Z");
    let mut rng = Lcg(4);
    let line = |t: i64| 10.0 + 0.5 * (t - start.as_millis()) as f64 / HOUR as f64;
    let history = series(start, 14 * 24 * 60, |t| line(t) + rng.noise(1.0));
    let now = start.add_millis(14 * DAY);
    let model = train(&history, &AnomalyConfig::default(), now);
    let slope = model.trend_per_hour().expect("a trend");
    assert!((slope - 0.5).abs() < 0.01, "slope {slope}");
    let next_day = series(now, 24 * 60, |t| line(t) + rng.noise(1.0));
    let share = share_inside(&model, &next_day, 2.0);
    assert!(share >= 0.99, "only {share} of the continuing trend inside");
    // The level of a week ago is now anomalous.
    let (lo, _) = model.band(now.add_millis(HOUR), 2.0).expect("band");
    assert!(line(now.as_millis() - 7 * DAY) < lo);
}

#[test]
fn excluded_ranges_keep_an_incident_out_of_training() {
    let start = ts("2026-03-02T00:00:00Z");
    let incident = (start.add_millis(3 * DAY), start.add_millis(9 * DAY));
    let mut rng = Lcg(5);
    let history = series(start, 14 * 24 * 60, |t| {
        let normal = 50.0 + rng.noise(2.0);
        if incident.0.as_millis() <= t && t < incident.1.as_millis() {
            normal + 450.0
        } else {
            normal
        }
    });
    let now = start.add_millis(14 * DAY);
    let config = AnomalyConfig {
        excluded: vec![incident],
        time_zone: None,
    };
    config.validate().expect("valid");
    let excluded = train(&history, &config, now);
    let clean: Vec<_> = history
        .iter()
        .copied()
        .filter(|&(t, _)| t < incident.0 || t >= incident.1)
        .collect();
    let reference = train(&clean, &AnomalyConfig::default(), now);
    let included = train(&history, &AnomalyConfig::default(), now);

    let at = now.add_millis(HOUR);
    let band = excluded.band(at, 2.0).expect("band");
    assert_eq!(Some(band), reference.band(at, 2.0));
    assert!(band.0 > 45.0 && band.1 < 55.0, "{band:?}");
    // Without the exclusion the incident does widen (or move) the band.
    let widened = included.band(at, 2.0).expect("band");
    assert!(widened.1 - band.1 > 3.0, "{widened:?} vs {band:?}");
}

#[test]
fn daily_seasonality_follows_local_time_across_a_dst_change() {
    let berlin = TimeZone::get("Europe/Berlin").expect("tz");
    // Europe/Berlin switches to summer time on 2026-03-29.
    let start = ts("2026-03-20T00:00:00Z");
    let peak_at_local_14 = |t: i64| {
        let z = jiff::Timestamp::from_millisecond(t)
            .expect("ts")
            .to_zoned(berlin.clone());
        let hour = f64::from(z.hour()) + f64::from(z.minute()) / 60.0;
        100.0 + 100.0 * (-0.5 * (hour - 14.0).powi(2)).exp()
    };
    let mut rng = Lcg(6);
    let history = series(start, 14 * 24 * 60, |t| {
        peak_at_local_14(t) + rng.noise(2.0)
    });
    let now = start.add_millis(14 * DAY);
    let config = AnomalyConfig {
        excluded: Vec::new(),
        time_zone: Some("Europe/Berlin".to_owned()),
    };
    config.validate().expect("valid");
    let model = train(&history, &config, now);
    assert_eq!(model.seasonality(), Seasonality::Daily);

    // Local 14:00 is 12:00 UTC in summer time and 13:00 UTC in winter time.
    for at in ["2026-04-03T12:00:00Z", "2026-03-20T13:00:00Z"] {
        let expected = model.expected(ts(at)).expect("expected");
        assert!(
            (expected - 200.0).abs() < 5.0,
            "expected {expected} at {at}"
        );
    }
    let (_, hi) = model.band(ts("2026-04-03T02:00:00Z"), 2.0).expect("band");
    assert!(200.0 > hi);

    // The same data seen in UTC blurs the peak (sensitivity of this test).
    let utc = train(&history, &AnomalyConfig::default(), now);
    let blurred = utc.expected(ts("2026-04-03T12:00:00Z")).expect("expected");
    assert!(
        (blurred - 200.0).abs() > 20.0,
        "UTC model expected {blurred}"
    );
}

#[test]
fn too_little_data_is_pending_training_without_a_band() {
    let start = ts("2026-03-02T00:00:00Z");
    let history = series(start, 60, |_| 5.0);
    let now = start.add_millis(HOUR);
    let model = train(&history, &AnomalyConfig::default(), now);
    assert_eq!(model.state(), ModelState::PendingTraining);
    assert_eq!(model.state().as_str(), "PENDING_TRAINING");
    assert_eq!(model.band(now, 2.0), None);
    let reason = model.insufficient_data_reason().expect("reason");
    assert_eq!(
        reason,
        "the anomaly model has not seen enough data yet: 60 datapoints spanning 0 h 59 min in \
         the last 14 days outside excluded ranges (needs at least 30 datapoints spanning 3 h)"
    );
    let empty = train(&[], &AnomalyConfig::default(), now);
    assert_eq!(empty.state(), ModelState::PendingTraining);
    assert_eq!(empty.band(now, 2.0), None);
}

#[test]
fn less_than_two_days_is_trained_insufficient_data_with_a_plain_band() {
    let start = ts("2026-03-02T00:00:00Z");
    let mut rng = Lcg(7);
    let history = series(start, 10 * 60, |t| daily_level(t) + rng.noise(1.0));
    let now = start.add_millis(10 * HOUR);
    let model = train(&history, &AnomalyConfig::default(), now);
    assert_eq!(model.state(), ModelState::TrainedInsufficientData);
    assert_eq!(model.seasonality(), Seasonality::None);
    assert!(model.candidates().is_empty());
    assert_eq!(model.insufficient_data_reason(), None);
    assert!(model.band(now, 2.0).is_some());
}

#[test]
fn a_flat_metric_gets_a_floor_on_its_spread() {
    let start = ts("2026-03-02T00:00:00Z");
    let history = series(start, 3 * 24 * 60, |_| 100.0);
    let now = start.add_millis(3 * DAY);
    let model = train(&history, &AnomalyConfig::default(), now);
    let (lo, hi) = model.band(now, 2.0).expect("band");
    assert!(
        (lo - 98.0).abs() < 1e-9 && (hi - 102.0).abs() < 1e-9,
        "({lo}, {hi})"
    );
    // Always zero: the absolute floor.
    let zeros = train(
        &series(start, 3 * 24 * 60, |_| 0.0),
        &AnomalyConfig::default(),
        now,
    );
    let (lo, hi) = zeros.band(now, 2.0).expect("band");
    assert!(lo < 0.0 && hi > 0.0 && hi < 1e-6, "({lo}, {hi})");
}

#[test]
fn serde_round_trip_keeps_the_band_and_the_model_is_small() {
    let start = ts("2026-03-04T00:00:00Z");
    let mut rng = Lcg(8);
    let weekend = |t: i64| (t.div_euclid(DAY) + 3).rem_euclid(7) >= 5;
    let history = series(start, 14 * 24 * 60, |t| {
        (if weekend(t) { 20.0 } else { daily_level(t) }) + rng.noise(3.0)
    });
    let now = start.add_millis(14 * DAY);
    let config = AnomalyConfig {
        excluded: Vec::new(),
        time_zone: Some("Asia/Tokyo".to_owned()),
    };
    let model = train(&history, &config, now);
    let json = serde_json::to_string(&model).expect("serialise");
    assert!(json.len() < 10_000, "model is {} bytes", json.len());
    let back: Model = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, model);
    for hours in [0, 5, 13, 30, 100] {
        let t = now.add_millis(hours * HOUR);
        assert_eq!(back.band(t, 2.0), model.band(t, 2.0));
        assert_eq!(back.band(t, 3.0), model.band(t, 3.0));
    }
}

#[test]
fn nan_and_infinite_points_are_ignored_and_order_does_not_matter() {
    let start = ts("2026-03-02T00:00:00Z");
    let mut rng = Lcg(9);
    let history = series(start, 3 * 24 * 60, |t| daily_level(t) + rng.noise(5.0));
    let now = start.add_millis(3 * DAY);
    let clean = train(&history, &AnomalyConfig::default(), now);
    let mut dirty = history.clone();
    for (i, bad) in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e200]
        .into_iter()
        .enumerate()
    {
        dirty.push((start.add_millis(i as i64 * 7 * MINUTE + 30_000), bad));
    }
    dirty.reverse();
    assert_eq!(train(&dirty, &AnomalyConfig::default(), now), clean);
}

#[test]
fn retraining_is_due_hourly_and_every_ten_minutes_while_pending() {
    let start = ts("2026-03-02T00:00:00Z");
    let now = start.add_millis(3 * DAY);
    let trained = train(
        &series(start, 3 * 24 * 60, |_| 1.0),
        &AnomalyConfig::default(),
        now,
    );
    assert_eq!(trained.trained_at(), now);
    assert!(!trained.needs_retraining(now.add_millis(59 * MINUTE)));
    assert!(trained.needs_retraining(now.add_millis(HOUR)));
    assert!(trained.needs_retraining(now.sub_millis(1)));
    let pending = train(&[], &AnomalyConfig::default(), now);
    assert!(!pending.needs_retraining(now.add_millis(9 * MINUTE)));
    assert!(pending.needs_retraining(now.add_millis(10 * MINUTE)));
}

#[test]
fn validation_reports_every_problem() {
    let t = Timestamp::from_secs(1_000);
    let mut excluded = vec![(t, t.add_millis(1)); 10];
    excluded.push((t, t));
    let config = AnomalyConfig {
        excluded,
        time_zone: Some("Mars/Olympus_Mons".to_owned()),
    };
    let errors = config.validate().expect_err("invalid");
    assert_eq!(
        errors.0,
        vec![
            AnomalyConfigError::TooManyExcludedRanges { count: 11, max: 10 },
            AnomalyConfigError::EmptyRange {
                index: 10,
                start: t,
                end: t
            },
            AnomalyConfigError::UnknownTimeZone {
                name: "Mars/Olympus_Mons".to_owned()
            },
        ]
    );
    let text = errors.to_string();
    assert!(text.contains("excluded: at most 10 ranges"), "{text}");
    assert!(
        text.contains("excluded[10]: start must be before end"),
        "{text}"
    );
    assert!(
        text.contains("time_zone: unknown IANA time zone \"Mars/Olympus_Mons\""),
        "{text}"
    );
    let ok = AnomalyConfig {
        excluded: vec![(t, t.add_millis(1))],
        time_zone: Some("UTC".into()),
    };
    assert_eq!(ok.validate(), Ok(()));
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        -1e6..1e6_f64,
        any::<f64>(),
        Just(0.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::MAX),
    ]
}

fn time() -> impl Strategy<Value = i64> {
    prop_oneof![4 => 0..9 * DAY, 1 => any::<i64>()]
}

proptest! {
    #[test]
    fn train_never_panics_and_bands_are_ordered(
        points in prop::collection::vec((time(), value()), 0..400),
        now in time(),
        zone in prop::option::of(prop_oneof![Just("Europe/Berlin".to_owned()), Just("Nowhere".to_owned())]),
        queries in prop::collection::vec((time(), -1.0..10.0_f64), 1..8),
    ) {
        let points: Vec<_> = points.into_iter().map(|(t, v)| (Timestamp::from_millis(t), v)).collect();
        let config = AnomalyConfig { excluded: Vec::new(), time_zone: zone };
        let model = train(&points, &config, Timestamp::from_millis(now));
        for (t, k) in queries {
            match model.band(Timestamp::from_millis(t), k) {
                Some((lo, hi)) => prop_assert!(lo <= hi, "({}, {})", lo, hi),
                None => prop_assert!(k < 0.0 || model.state() == ModelState::PendingTraining),
            }
        }
        let json = serde_json::to_string(&model).expect("serialise");
        let back: Model = serde_json::from_str(&json).expect("deserialise");
        prop_assert_eq!(back, model);
    }

    #[test]
    fn four_hours_or_more_of_regular_data_always_get_a_band(
        seed in any::<u64>(),
        days in 0..4_i64,
    ) {
        let mut rng = Lcg(seed);
        let start = Timestamp::from_millis(0);
        let history = series(start, (days * 24 + 4) * 12, |_| 10.0 + rng.noise(1.0))
            .into_iter()
            .map(|(t, v)| (Timestamp::from_millis(t.as_millis() * 5), v))
            .collect::<Vec<_>>();
        let now = history.last().map_or(start, |p| p.0);
        let model = train(&history, &AnomalyConfig::default(), now);
        prop_assert_ne!(model.state(), ModelState::PendingTraining);
        let (lo, hi) = model.band(now, 2.0).expect("band");
        prop_assert!(lo < 10.0 && 10.0 < hi);
    }
}
