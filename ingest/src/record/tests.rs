use proptest::prelude::*;
use prost::Message as _;
use thermostat_metrics::Dimension;
use thermostat_proto::v1::{self as pb, MetricDatum, PutMetricDataRequest};

use super::*;
use crate::convert::validate_request;
use crate::intern::Interner;

const NOW: Timestamp = Timestamp(1_800_000_000_000);

/// An observation with its data spelled out, comparable bit for bit.
#[derive(Clone, Debug, PartialEq)]
enum Data {
    Value(u64),
    Values(Vec<u64>, Vec<u64>),
    Set([u64; 4]),
    /// Count, sum, minimum, maximum, values, counts.
    Dist {
        count: u64,
        sum: u64,
        min: Option<u64>,
        max: Option<u64>,
        values: Vec<u64>,
        counts: Vec<u64>,
    },
}

type Flat = (SeriesKey, i64, Unit, Resolution, Data);

fn bits(xs: &[f64]) -> Vec<u64> {
    xs.iter().map(|x| x.to_bits()).collect()
}

fn data(s: &Sample<'_>) -> Data {
    match s {
        Sample::Value(v) => Data::Value(v.to_bits()),
        Sample::Values { values, counts } => Data::Values(bits(values), bits(counts)),
        Sample::Set(s) => Data::Set([
            s.sample_count.to_bits(),
            s.sum.to_bits(),
            s.minimum.to_bits(),
            s.maximum.to_bits(),
        ]),
        Sample::Distribution(d) => Data::Dist {
            count: d.count.to_bits(),
            sum: d.sum.to_bits(),
            min: d.min.map(f64::to_bits),
            max: d.max.map(f64::to_bits),
            values: bits(d.values),
            counts: bits(d.counts),
        },
    }
}

fn flat(v: &ObservationBatch) -> Vec<Flat> {
    v.observations()
        .iter()
        .map(|(k, o)| {
            (
                k.clone(),
                o.timestamp.as_millis(),
                o.unit,
                o.resolution,
                data(&o.sample),
            )
        })
        .collect()
}

fn validated(items: &[Flat]) -> ObservationBatch {
    let mut v = ObservationBatch::default();
    for (key, t, unit, resolution, d) in items {
        let (values, counts);
        let sample = match d {
            Data::Value(x) => Sample::Value(f64::from_bits(*x)),
            Data::Set([n, s, lo, hi]) => Sample::Set(StatisticSet {
                sample_count: f64::from_bits(*n),
                sum: f64::from_bits(*s),
                minimum: f64::from_bits(*lo),
                maximum: f64::from_bits(*hi),
            }),
            Data::Values(vs, cs) => {
                values = vs.iter().map(|&x| f64::from_bits(x)).collect::<Vec<_>>();
                counts = cs.iter().map(|&x| f64::from_bits(x)).collect::<Vec<_>>();
                Sample::Values {
                    values: &values,
                    counts: &counts,
                }
            }
            Data::Dist {
                count,
                sum,
                min,
                max,
                values: vs,
                counts: cs,
            } => {
                values = vs.iter().map(|&x| f64::from_bits(x)).collect::<Vec<_>>();
                counts = cs.iter().map(|&x| f64::from_bits(x)).collect::<Vec<_>>();
                Sample::Distribution(Distribution {
                    count: f64::from_bits(*count),
                    sum: f64::from_bits(*sum),
                    min: min.map(f64::from_bits),
                    max: max.map(f64::from_bits),
                    values: &values,
                    counts: &counts,
                })
            }
        };
        v.samples += sample.sample_count();
        v.push_sample(key, Timestamp::from_millis(*t), *unit, *resolution, sample);
    }
    v
}

fn encoded(v: &ObservationBatch) -> Vec<u8> {
    let mut out = Vec::new();
    encode(v, &mut out);
    out
}

fn keys() -> Vec<SeriesKey> {
    vec![
        SeriesKey::new("App", "Latency", vec![]),
        SeriesKey::new(
            "App",
            "Latency",
            vec![Dimension::new("Host", "h1"), Dimension::new("AZ", "a")],
        ),
        SeriesKey::new("App", "CPU", vec![Dimension::new("Host", "h1")]),
        SeriesKey::new("Other/Ns", "CPU", vec![Dimension::new("Host", "ü")]),
        // Keys of 128 bytes and more: their length takes two bytes.
        SeriesKey::new("App", "CPU", vec![Dimension::new("Host", "h".repeat(130))]),
        SeriesKey::new(
            "App",
            "CPU",
            vec![
                Dimension::new("Host", "h".repeat(250)),
                Dimension::new("Pod", "p".repeat(250)),
            ],
        ),
    ]
}

/// A distribution of any bit patterns, with or without bounds and buckets (none up to a few).
fn dist() -> impl Strategy<Value = Data> {
    (
        any::<(u64, u64)>(),
        any::<(Option<u64>, Option<u64>)>(),
        prop::collection::vec(any::<(u64, u64)>(), 0..5),
    )
        .prop_map(|((count, sum), (min, max), buckets)| Data::Dist {
            count,
            sum,
            min,
            max,
            values: buckets.iter().map(|b| b.0).collect(),
            counts: buckets.iter().map(|b| b.1).collect(),
        })
}

fn items() -> impl Strategy<Value = Vec<Flat>> {
    let data = prop_oneof![
        any::<u64>().prop_map(Data::Value),
        prop::collection::vec(any::<u64>(), 1..5).prop_map(|v| Data::Values(v, vec![])),
        prop::collection::vec((any::<u64>(), any::<u64>()), 1..5).prop_map(|p| Data::Values(
            p.iter().map(|x| x.0).collect(),
            p.iter().map(|x| x.1).collect()
        )),
        any::<[u64; 4]>().prop_map(Data::Set),
        dist(),
    ];
    let time = prop_oneof![
        any::<i64>(),
        (0i64..100).prop_map(|s| NOW.as_millis() - s * 1000),
    ];
    let one = (
        prop::sample::select(keys()),
        time,
        prop::sample::select(Unit::ALL.to_vec()),
        prop::sample::select(vec![Resolution::High, Resolution::Standard]),
        data,
        1usize..4,
    );
    prop::collection::vec(one, 0..30).prop_map(|xs| {
        // Repeats make runs of one series; the keys are shared as the interner shares them.
        xs.into_iter()
            .flat_map(|(k, t, u, r, d, repeat)| {
                (0..repeat).map(move |i| (k.clone(), t.wrapping_add(i as i64), u, r, d.clone()))
            })
            .collect()
    })
}

proptest! {
    /// Whatever the observations (every kind of data, unit and resolution, any timestamp and
    /// bit pattern, series changing or repeating), decoding gives back exactly them.
    #[test]
    fn payloads_decode_to_what_was_encoded(items in items()) {
        let v = validated(&items);
        let payload = encoded(&v);
        let back = Decoder::new().decode(&payload).unwrap();
        prop_assert_eq!(flat(&back), items);
        // The same counts, summed otherwise (a run of plain values adds its length at once
        // where the request added one a datum): equal up to rounding, as counts reach 2^64.
        let (got, want) = (back.samples, v.samples);
        prop_assert!(
            got.to_bits() == want.to_bits() || (got - want).abs() <= want.abs() * 1e-12,
            "{got} != {want}"
        );
    }

    /// Garbage never panics or allocates beyond the payload; it is an error or some data.
    #[test]
    fn any_bytes_decode_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = Decoder::new().decode(&bytes);
    }

    /// A payload cut short is refused, unless it is cut between runs (then it is a prefix).
    #[test]
    fn a_cut_payload_is_an_error_or_a_prefix(items in items(), cut in any::<prop::sample::Index>()) {
        let payload = encoded(&validated(&items));
        prop_assume!(!payload.is_empty());
        let at = cut.index(payload.len());
        if let Ok(v) = Decoder::new().decode(&payload[..at]) {
            let got = flat(&v);
            prop_assert!(got.len() < items.len() || items.is_empty());
            prop_assert_eq!(&items[..got.len()], &got[..]);
        }
    }

    /// A flipped byte never panics the decoder.
    #[test]
    fn a_flipped_byte_never_panics(items in items(), at in any::<prop::sample::Index>(), x in 1u8..) {
        let mut payload = encoded(&validated(&items));
        prop_assume!(!payload.is_empty());
        let i = at.index(payload.len());
        payload[i] ^= x;
        let _ = Decoder::new().decode(&payload);
    }
}

/// The bytes of a small record, spelled out: the format is what old logs hold, so it must not
/// change by accident.
#[test]
fn the_format_is_stable() {
    let key = SeriesKey::new("App", "M", vec![Dimension::new("H", "a")]);
    let v = validated(&[
        (
            key.clone(),
            1_000,
            Unit::Percent,
            Resolution::Standard,
            Data::Value(1.5f64.to_bits()),
        ),
        (
            key.clone(),
            999,
            Unit::Percent,
            Resolution::Standard,
            Data::Value(2.0f64.to_bits()),
        ),
        (
            key,
            999,
            Unit::Count,
            Resolution::High,
            Data::Values(vec![3.0f64.to_bits()], vec![2.0f64.to_bits()]),
        ),
    ]);
    let mut expected = vec![1, 3, b'A', b'p', b'p'];
    let key_bytes = [1, b'M', 1, 1, b'H', 1, b'a'];
    // Run 1: Percent (13), standard (1), single values (0), two of them.
    expected.extend([2, 7]);
    expected.extend(key_bytes);
    expected.extend([13, 1, 0, 2]);
    expected.extend([0xd0, 0x0f]); // zigzag(1000) = 2000
    expected.extend(1.5f64.to_le_bytes());
    expected.push(1); // zigzag(-1)
    expected.extend(2.0f64.to_le_bytes());
    // Run 2: Count (14), high (0), values with counts (2), one.
    expected.extend([2, 7]);
    expected.extend(key_bytes);
    expected.extend([14, 0, 2, 1]);
    expected.push(0);
    expected.push(1);
    expected.extend(3.0f64.to_le_bytes());
    expected.extend(2.0f64.to_le_bytes());
    assert_eq!(encoded(&v), expected);
}

/// An agent's flush (one host's 10 metrics × 100 samples, 1,000 datums) takes a fifth of its
/// request's bytes or less in the log, and means the same after the trip.
#[test]
fn an_agent_flush_is_compact() {
    let metric_data = (0..10)
        .flat_map(|m| {
            (0..100).map(move |s| MetricDatum {
                metric_name: format!("Metric{m}Utilization"),
                dimensions: vec![pb::Dimension {
                    name: "Host".into(),
                    value: "h0001".into(),
                }],
                timestamp_ms: NOW.as_millis() - (100 - s) * 1000,
                value: Some(f64::from(s as u32) * 0.37),
                unit: "Percent".into(),
                storage_resolution: 60,
                ..MetricDatum::default()
            })
        })
        .collect();
    let req = PutMetricDataRequest {
        namespace: "Thermostat/Loadgen".into(),
        metric_data,
    };
    let bytes = req.encode_to_vec();
    let v = validate_request(&bytes, NOW, &Interner::new(100)).unwrap();
    let payload = encoded(&v);
    assert!(
        payload.len() * 5 <= bytes.len(),
        "{} bytes in the log for a {}-byte request",
        payload.len(),
        bytes.len()
    );
    let back = Decoder::new().decode(&payload).unwrap();
    assert_eq!(flat(&back), flat(&v));
    assert_eq!(back.samples, 1000.0);
}

/// Errors say where and what.
#[test]
fn errors_name_the_byte_and_the_field() {
    let e = Decoder::new().decode(&[2, 0]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "record payload byte 0: a run before any namespace"
    );
    let e = Decoder::new()
        .decode(&[1, 3, b'A', b'p', b'p', 9])
        .unwrap_err();
    assert_eq!(e.to_string(), "record payload byte 5: item tag");
}

/// A kind-4 record (a distribution) spelled out: count, sum, flags, the bounds present, the
/// number of buckets, their representatives, their counts.
#[test]
fn the_distribution_format_is_stable() {
    let key = SeriesKey::new("App", "M", vec![]);
    let dist = |min: Option<f64>, max: Option<f64>, values: &[f64], counts: &[f64]| Data::Dist {
        count: 3.0f64.to_bits(),
        sum: 7.5f64.to_bits(),
        min: min.map(f64::to_bits),
        max: max.map(f64::to_bits),
        values: bits(values),
        counts: bits(counts),
    };
    let v = validated(&[
        (
            key.clone(),
            0,
            Unit::Seconds,
            Resolution::Standard,
            dist(Some(0.5), Some(4.0), &[1.0, 3.0], &[2.0, 1.0]),
        ),
        (
            key.clone(),
            0,
            Unit::Seconds,
            Resolution::Standard,
            dist(None, Some(4.0), &[], &[]),
        ),
        (
            key,
            0,
            Unit::Seconds,
            Resolution::Standard,
            dist(Some(0.5), None, &[], &[]),
        ),
    ]);
    let mut expected = vec![1, 3, b'A', b'p', b'p'];
    // One run: Seconds (0), standard (1), distributions (4), three of them.
    expected.extend([2, 3, 1, b'M', 0, 0, 1, 4, 3]);
    expected.push(0);
    expected.extend(3.0f64.to_le_bytes());
    expected.extend(7.5f64.to_le_bytes());
    expected.push(0b11);
    expected.extend(0.5f64.to_le_bytes());
    expected.extend(4.0f64.to_le_bytes());
    expected.push(2);
    for x in [1.0f64, 3.0, 2.0, 1.0] {
        expected.extend(x.to_le_bytes());
    }
    expected.push(0);
    expected.extend(3.0f64.to_le_bytes());
    expected.extend(7.5f64.to_le_bytes());
    expected.push(0b10);
    expected.extend(4.0f64.to_le_bytes());
    expected.push(0);
    expected.push(0);
    expected.extend(3.0f64.to_le_bytes());
    expected.extend(7.5f64.to_le_bytes());
    expected.push(0b01);
    expected.extend(0.5f64.to_le_bytes());
    expected.push(0);
    assert_eq!(Unit::ALL[0], Unit::Seconds);
    assert_eq!(encoded(&v), expected);
    let back = Decoder::new().decode(&expected).unwrap();
    assert_eq!(flat(&back), flat(&v));
    assert_eq!(back.samples, 9.0, "a distribution counts its count");
}

/// The start of a payload of one distribution of `App/M`, up to its flags.
fn distribution_prefix(flags: u8) -> Vec<u8> {
    let mut p = vec![1, 3, b'A', b'p', b'p', 2, 3, 1, b'M', 0, 1, 1, 4, 1, 0];
    p.extend(3.0f64.to_le_bytes());
    p.extend(7.5f64.to_le_bytes());
    p.push(flags);
    p
}

/// Hostile distributions are errors that say what is wrong, never a panic or an allocation
/// by a length the payload cannot hold.
#[test]
fn hostile_distributions_are_refused() {
    // A bucket count of 2^60 (and of u64::MAX) in a payload of a few dozen bytes.
    for m in [1u64 << 60, u64::MAX, 1] {
        let mut p = distribution_prefix(0);
        encode_varint(m, &mut p);
        p.extend(1.0f64.to_le_bytes());
        let e = Decoder::new().decode(&p).unwrap_err();
        assert_eq!(e.what, "bucket count", "m = {m}");
    }
    // Flags other than the two bounds.
    let e = Decoder::new()
        .decode(&distribution_prefix(0b100))
        .unwrap_err();
    assert_eq!(e.to_string(), "record payload byte 32: distribution flags");
    // A bound announced but missing.
    let e = Decoder::new()
        .decode(&distribution_prefix(0b11))
        .unwrap_err();
    assert_eq!(e.what, "distribution minimum");
    let mut p = distribution_prefix(0b10);
    p.extend(2.0f64.to_le_bytes()[..5].iter());
    assert_eq!(
        Decoder::new().decode(&p).unwrap_err().what,
        "distribution maximum"
    );
    // Cut anywhere inside the observation: an error.
    let mut whole = distribution_prefix(0b01);
    whole.extend(0.5f64.to_le_bytes());
    whole.push(1);
    whole.extend(2.0f64.to_le_bytes());
    whole.extend(3.0f64.to_le_bytes());
    assert!(Decoder::new().decode(&whole).is_ok());
    for cut in 14..whole.len() {
        assert!(
            Decoder::new().decode(&whole[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    // A kind after the last one known.
    let mut p = distribution_prefix(0);
    p[12] = 5;
    assert_eq!(Decoder::new().decode(&p).unwrap_err().what, "kind");
}

/// Distributions replayed from the log aggregate with other data, and the windows they make
/// (with percentiles, or without for want of buckets) come back alike from a snapshot,
/// before and after compaction seals them.
#[test]
fn replayed_distributions_survive_a_snapshot() {
    use thermostat_metrics::{Period, Query, Store};

    let bucketed = SeriesKey::new("App", "Latency", vec![]);
    let summary = SeriesKey::new("App", "Summary", vec![]);
    let t = NOW.as_millis() - 600_000;
    let (values, counts) = ([0.5, 5.0, 50.0], [10.0, 80.0, 10.0]);
    let mut batch = ObservationBatch::default();
    batch.push_value(
        &bucketed,
        Timestamp::from_millis(t),
        Unit::Seconds,
        Resolution::Standard,
        7.0,
    );
    for (key, values, counts) in [
        (&bucketed, &values[..], &counts[..]),
        (&summary, &[][..], &[][..]),
    ] {
        batch.push_distribution(
            key,
            Timestamp::from_millis(t + 1),
            Unit::Seconds,
            Resolution::Standard,
            &Distribution {
                count: 100.0,
                sum: 915.0,
                min: Some(0.1),
                max: None,
                values,
                counts,
            },
        );
    }
    let payload = encoded(&batch);
    let store = Store::new(4);
    Decoder::new()
        .decode(&payload)
        .unwrap()
        .record_into(&store, 1);

    let stats = |store: &Store, key: &SeriesKey| {
        let q = Query {
            key: key.clone(),
            unit: None,
            start: Timestamp::from_millis(t - 3_600_000),
            end: NOW,
            period: Period::ONE_HOUR,
            statistics: ["SampleCount", "Sum", "Minimum", "Maximum", "p50", "p99"]
                .iter()
                .map(|s| s.parse().unwrap())
                .collect(),
        };
        store.query(&q, NOW).unwrap()
    };
    let want_bucketed = stats(&store, &bucketed);
    assert_eq!(want_bucketed.len(), 1);
    let [n, sum, min, max, p50, p99] = want_bucketed[0].values[..] else {
        panic!("six statistics")
    };
    assert_eq!(
        (n, sum, min, max),
        (Some(101.0), Some(922.0), Some(0.1), Some(50.0))
    );
    assert!(p50.is_some_and(|p| (p - 5.0).abs() <= 0.05), "{p50:?}");
    assert!(p99.is_some_and(|p| (p - 50.0).abs() <= 0.5), "{p99:?}");
    let want_summary = stats(&store, &summary);
    assert_eq!(
        want_summary[0].values,
        [Some(100.0), Some(915.0), Some(0.1), Some(9.15), None, None],
        "no buckets: the mean bounds the maximum, and no percentiles"
    );

    for compact in [false, true] {
        if compact {
            store.compact(NOW);
        }
        let dir = tempfile::tempdir().unwrap();
        crate::persist::save_snapshot(&store, dir.path()).unwrap();
        let back = Store::new(4);
        crate::persist::load_snapshot(&back, dir.path())
            .unwrap()
            .unwrap();
        assert_eq!(
            stats(&back, &bucketed),
            want_bucketed,
            "compacted: {compact}"
        );
        assert_eq!(stats(&back, &summary), want_summary, "compacted: {compact}");
    }
}
