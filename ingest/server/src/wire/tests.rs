use proptest::prelude::*;
use prost::Message as _;
use thermostat_proto::v1::{Dimension, MetricDatum, PutMetricDataRequest, StatisticSet};

use super::*;

/// What prost made of a request, in the reader's terms.
fn via_prost(req: &PutMetricDataRequest) -> (String, Vec<Owned>) {
    let datums = req
        .metric_data
        .iter()
        .map(|d| Owned {
            metric_name: d.metric_name.clone(),
            dimensions: d
                .dimensions
                .iter()
                .map(|x| (x.name.clone(), x.value.clone()))
                .collect(),
            timestamp_ms: d.timestamp_ms,
            value: d.value.map(f64::to_bits),
            set: d
                .statistic_values
                .as_ref()
                .map(|s| [s.sample_count, s.sum, s.minimum, s.maximum].map(f64::to_bits)),
            values: d.values.iter().map(|v| v.to_bits()).collect(),
            counts: d.counts.iter().map(|v| v.to_bits()).collect(),
            unit: d.unit.clone(),
            storage_resolution: d.storage_resolution,
        })
        .collect();
    (req.namespace.clone(), datums)
}

#[derive(Debug, PartialEq)]
struct Owned {
    metric_name: String,
    dimensions: Vec<(String, String)>,
    timestamp_ms: i64,
    value: Option<u64>,
    set: Option<[u64; 4]>,
    values: Vec<u64>,
    counts: Vec<u64>,
    unit: String,
    storage_resolution: i32,
}

fn via_reader(buf: &[u8]) -> Result<(String, Vec<Owned>), WireError> {
    let req = RequestView::read(buf)?;
    let mut d = DatumView::default();
    let mut out = Vec::new();
    for bytes in &req.datums {
        d.read(bytes)?;
        let mut dimensions = Vec::new();
        for (n, v) in &d.dimensions {
            dimensions.push((text(n, "name")?.to_owned(), text(v, "value")?.to_owned()));
        }
        out.push(Owned {
            metric_name: text(d.metric_name, "metric_name")?.to_owned(),
            dimensions,
            timestamp_ms: d.timestamp_ms,
            value: d.value.map(f64::to_bits),
            set: d
                .statistic_values
                .map(|s| [s.sample_count, s.sum, s.minimum, s.maximum].map(f64::to_bits)),
            values: d.values.iter().map(|v| v.to_bits()).collect(),
            counts: d.counts.iter().map(|v| v.to_bits()).collect(),
            unit: text(d.unit, "unit")?.to_owned(),
            storage_resolution: d.storage_resolution,
        });
    }
    Ok((req.namespace.to_owned(), out))
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9_/.:-]{0,12}", "\\PC{0,6}", Just(String::new()),]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        -1e6..1e6f64,
        Just(0.0),
        Just(f64::NAN),
        Just(f64::INFINITY)
    ]
}

fn datum() -> impl Strategy<Value = MetricDatum> {
    (
        any_text(),
        prop::collection::vec((any_text(), any_text()), 0..4),
        any::<i64>(),
        prop::option::of(float()),
        prop::option::of((float(), float(), float(), float())),
        prop::collection::vec(float(), 0..5),
        prop::collection::vec(float(), 0..5),
        any_text(),
        any::<i32>(),
    )
        .prop_map(
            |(m, dims, ts, value, set, values, counts, unit, res)| MetricDatum {
                metric_name: m,
                dimensions: dims
                    .into_iter()
                    .map(|(name, value)| Dimension { name, value })
                    .collect(),
                timestamp_ms: ts,
                value,
                statistic_values: set.map(|(a, b, c, d)| StatisticSet {
                    sample_count: a,
                    sum: b,
                    minimum: c,
                    maximum: d,
                }),
                values,
                counts,
                unit,
                storage_resolution: res,
            },
        )
}

fn request() -> impl Strategy<Value = PutMetricDataRequest> {
    (any_text(), prop::collection::vec(datum(), 0..6)).prop_map(|(namespace, metric_data)| {
        PutMetricDataRequest {
            namespace,
            metric_data,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever prost encodes, the reader reads back exactly as prost decodes it.
    #[test]
    fn reads_what_prost_encodes(req in request()) {
        let buf = req.encode_to_vec();
        let decoded = PutMetricDataRequest::decode(buf.as_slice()).unwrap();
        prop_assert_eq!(via_reader(&buf).unwrap(), via_prost(&decoded));
    }

    /// On arbitrary bytes the reader accepts exactly what prost accepts, with the same result.
    #[test]
    fn agrees_with_prost_on_arbitrary_bytes(buf in prop::collection::vec(any::<u8>(), 0..64)) {
        let ours = via_reader(&buf);
        match PutMetricDataRequest::decode(buf.as_slice()) {
            Ok(req) => prop_assert_eq!(ours.unwrap(), via_prost(&req)),
            Err(e) => prop_assert!(ours.is_err(), "prost refused ({e}), the reader accepted {ours:?}"),
        }
    }

    /// Mutating a valid encoding: same agreement (reaches deeper than random bytes).
    #[test]
    fn agrees_with_prost_on_mutated_requests(req in request(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut buf = req.encode_to_vec();
        if !buf.is_empty() {
            let i = at.index(buf.len());
            buf[i] = byte;
        }
        let ours = via_reader(&buf);
        match PutMetricDataRequest::decode(buf.as_slice()) {
            Ok(req) => prop_assert_eq!(ours.unwrap(), via_prost(&req)),
            Err(e) => prop_assert!(ours.is_err(), "prost refused ({e}), the reader accepted {ours:?}"),
        }
    }
}

#[test]
fn unpacked_repeated_doubles_and_merged_sets_read_as_prost_reads_them() {
    // values as two unpacked fields (tag 6, wire type 1), statistic_values twice (merged).
    let mut datum = Vec::new();
    for v in [1.5f64, 2.5] {
        datum.push((6 << 3) | 1);
        datum.extend_from_slice(&v.to_le_bytes());
    }
    let set1 = StatisticSet {
        sample_count: 3.0,
        sum: 6.0,
        ..Default::default()
    }
    .encode_to_vec();
    let set2 = StatisticSet {
        maximum: 9.0,
        ..Default::default()
    }
    .encode_to_vec();
    for s in [set1, set2] {
        datum.push((5 << 3) | 2);
        datum.push(s.len() as u8);
        datum.extend_from_slice(&s);
    }
    let mut req = vec![(2 << 3) | 2, datum.len() as u8];
    req.extend_from_slice(&datum);
    let decoded = PutMetricDataRequest::decode(req.as_slice()).unwrap();
    assert_eq!(decoded.metric_data[0].values, vec![1.5, 2.5]);
    assert_eq!(
        decoded.metric_data[0]
            .statistic_values
            .unwrap()
            .sample_count,
        3.0
    );
    assert_eq!(via_reader(&req).unwrap(), via_prost(&decoded));
}

#[test]
fn bad_utf8_is_refused() {
    let req = vec![(1 << 3) | 2, 2, 0xff, 0xfe];
    let e = via_reader(&req).unwrap_err();
    assert!(e.to_string().contains("UTF-8"), "{e}");
}
