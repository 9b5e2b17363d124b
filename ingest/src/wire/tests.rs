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

/// What the reader made of a request, in the same terms. Only for requests within the
/// reader's caps on kept entries (asserted).
fn via_reader(buf: &[u8]) -> Result<(String, Vec<Owned>), WireError> {
    let req = RequestView::read(buf)?;
    assert_eq!(req.datum_count, req.datums.len(), "more datums than kept");
    let mut d = DatumView::default();
    let mut out = Vec::new();
    for bytes in &req.datums {
        d.read(bytes)?;
        assert_eq!(
            d.dimension_count,
            d.dimensions.len(),
            "more dimensions than kept"
        );
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

// === Structured hostile input (issue 15, finding 1) ===
//
// Valid requests with one hostile fragment placed at every level the reader walks: the top
// level, a datum, a dimension and a statistic set. The reader must agree with prost (which
// stops nesting at depth 100) and never recurse: the largest bombs run on a thread with a
// small stack.

/// Where a fragment goes.
#[derive(Clone, Copy, Debug)]
enum Place {
    Top,
    Datum,
    Dimension,
    StatisticSet,
}

fn places() -> impl Strategy<Value = Place> {
    prop_oneof![
        Just(Place::Top),
        Just(Place::Datum),
        Just(Place::Dimension),
        Just(Place::StatisticSet),
    ]
}

fn varint(v: u64, out: &mut Vec<u8>) {
    prost::encoding::encode_varint(v, out);
}

fn key(field: u32, wire: u8, out: &mut Vec<u8>) {
    varint((u64::from(field) << 3) | u64::from(wire), out);
}

fn len_delimited(field: u32, body: &[u8], out: &mut Vec<u8>) {
    key(field, LEN, out);
    varint(body.len() as u64, out);
    out.extend_from_slice(body);
}

/// A valid request with `fragment` inside the message at `place`, between valid fields.
fn place(at: Place, fragment: &[u8]) -> Vec<u8> {
    let with = |mine: bool, before: &[u8], after: &[u8]| {
        let mut m = before.to_vec();
        if mine {
            m.extend_from_slice(fragment);
        }
        m.extend_from_slice(after);
        m
    };
    let mut name = Vec::new();
    len_delimited(1, b"Host", &mut name);
    let mut value = Vec::new();
    len_delimited(2, b"a", &mut value);
    let dimension = with(matches!(at, Place::Dimension), &name, &value);
    let mut count = Vec::new();
    key(1, FIXED64, &mut count);
    count.extend_from_slice(&2.0f64.to_le_bytes());
    let mut sum = Vec::new();
    key(2, FIXED64, &mut sum);
    sum.extend_from_slice(&3.0f64.to_le_bytes());
    let set = with(matches!(at, Place::StatisticSet), &count, &sum);
    let mut head = Vec::new();
    len_delimited(1, b"Latency", &mut head);
    len_delimited(2, &dimension, &mut head);
    let mut tail = Vec::new();
    len_delimited(5, &set, &mut tail);
    let datum = with(matches!(at, Place::Datum), &head, &tail);
    let mut ns = Vec::new();
    len_delimited(1, b"App", &mut ns);
    let mut data = Vec::new();
    len_delimited(2, &datum, &mut data);
    with(matches!(at, Place::Top), &ns, &data)
}

/// `depth` nested groups of `field`, closed (innermost first) when `balanced`, with a varint
/// field in the innermost when `filled`.
fn groups(depth: usize, field: u32, balanced: bool, filled: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..depth {
        key(field, START_GROUP, &mut out);
    }
    if filled {
        key(field + 1, VARINT, &mut out);
        out.push(7);
    }
    if balanced {
        for _ in 0..depth {
            key(field, END_GROUP, &mut out);
        }
    }
    out
}

/// A field number no message of the request knows (1 to 9 are taken somewhere).
fn unknown_field() -> impl Strategy<Value = u32> {
    prop_oneof![Just(15u32), 10u32..20_000, Just((1 << 29) - 1)]
}

/// The reader agrees with prost on `buf`: both refuse it, or both read the same.
fn agrees_with_prost(buf: &[u8]) -> Result<(), TestCaseError> {
    let ours = via_reader(buf);
    match PutMetricDataRequest::decode(buf) {
        Ok(req) => prop_assert_eq!(ours.unwrap(), via_prost(&req)),
        Err(e) => prop_assert!(
            ours.is_err(),
            "prost refused ({e}), the reader accepted {ours:?}"
        ),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Nested groups, balanced or not, empty or not, at every level and around prost's
    /// depth limit: the same answer as prost.
    #[test]
    fn nested_groups_read_as_prost_reads_them(
        at in places(),
        depth in prop_oneof![0usize..300, 95usize..105],
        field in unknown_field(),
        balanced in any::<bool>(),
        filled in any::<bool>(),
    ) {
        agrees_with_prost(&place(at, &groups(depth, field, balanced, filled)))?;
    }

    /// Groups closed by the wrong field, or end-group tags with nothing open.
    #[test]
    fn mismatched_group_ends_are_refused(
        at in places(),
        depth in 1usize..120,
        field in unknown_field(),
        wrong in 1u32..5,
    ) {
        let mut g = groups(depth, field, false, false);
        key(field + wrong, END_GROUP, &mut g);
        let buf = place(at, &g);
        prop_assert!(via_reader(&buf).is_err());
        agrees_with_prost(&buf)?;
        let mut stray = Vec::new();
        key(field, END_GROUP, &mut stray);
        agrees_with_prost(&place(at, &stray))?;
    }

    /// A length-delimited field (known or unknown) declaring more bytes than follow, up to
    /// u64::MAX: refused, as by prost, without reading past the buffer.
    #[test]
    fn huge_declared_lengths_are_refused(
        at in places(),
        field in prop_oneof![unknown_field(), 1u32..10],
        declared in prop_oneof![
            Just(u64::MAX),
            Just(u64::MAX - 1),
            Just(u64::from(u32::MAX) + 1),
            Just(usize::MAX as u64),
            64u64..1 << 40,
        ],
        follow in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut f = Vec::new();
        key(field, LEN, &mut f);
        varint(declared, &mut f);
        f.extend_from_slice(&follow);
        let buf = place(at, &f);
        prop_assert!(via_reader(&buf).is_err());
        agrees_with_prost(&buf)?;
    }

    /// Varints of 1 to 12 bytes, padded with continuation bits, with any last byte: where
    /// prost reads a value the reader reads the same, and what prost refuses it refuses.
    #[test]
    fn overlong_varints_read_as_prost_reads_them(
        at in places(),
        field in prop_oneof![unknown_field(), Just(3u32), Just(9u32)],
        continuations in 0usize..12,
        last in any::<u8>(),
        in_key in any::<bool>(),
    ) {
        let mut f = Vec::new();
        if in_key {
            // An overlong key: continuation bytes and no end, or a key past u32.
            f.extend(std::iter::repeat_n(0x80 | (field as u8 & 0x7f), continuations));
            f.push(last);
        } else {
            key(field, VARINT, &mut f);
            f.extend(std::iter::repeat_n(0xff, continuations));
            f.push(last);
        }
        agrees_with_prost(&place(at, &f))?;
    }

    /// Fields repeated many times: unknown fields, the same known scalar, embedded messages
    /// that merge. The same answer as prost.
    #[test]
    fn repeated_fields_read_as_prost_reads_them(
        at in places(),
        times in prop_oneof![1usize..50, 1_000usize..5_000],
        which in 0usize..3,
        field in unknown_field(),
    ) {
        let mut one = Vec::new();
        match (which, at) {
            (0, _) => {
                key(field, VARINT, &mut one);
                one.push(1);
            }
            (1, Place::Top) => len_delimited(1, b"Other", &mut one),
            (1, Place::Datum) => len_delimited(8, b"Percent", &mut one),
            (1, Place::Dimension) => len_delimited(2, b"b", &mut one),
            (1, Place::StatisticSet) => {
                key(3, FIXED64, &mut one);
                one.extend_from_slice(&1.0f64.to_le_bytes());
            }
            (_, Place::Datum) => {
                // An unpacked repeated double.
                key(6, FIXED64, &mut one);
                one.extend_from_slice(&4.0f64.to_le_bytes());
            }
            _ => {
                key(field, FIXED32, &mut one);
                one.extend_from_slice(&[1, 2, 3, 4]);
            }
        }
        agrees_with_prost(&place(at, &one.repeat(times)))?;
    }
}

/// Runs `f` on a thread with a 128 KiB stack: a reader that recursed once per nesting level
/// would overflow it on any of the bombs below (the probe's 27 KB bomb overflowed 8 MiB).
fn on_a_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(128 << 10)
        .spawn(f)
        .unwrap()
        .join()
        .expect("no stack overflow, no panic")
}

/// The probe's crash (finding 1), at every place and up to 1 MB: refused naming the limit,
/// on a small stack.
#[test]
fn regression_15_group_bombs_are_refused_without_recursion() {
    for at in [
        Place::Top,
        Place::Datum,
        Place::Dimension,
        Place::StatisticSet,
    ] {
        for size in [27_000usize, 100_000, 1_000_000] {
            for balanced in [false, true] {
                let depth = if balanced { size / 2 } else { size };
                let buf = place(at, &groups(depth, 15, balanced, false));
                let e = on_a_small_stack(move || via_reader(&buf).map(drop)).unwrap_err();
                assert!(
                    e.to_string().contains("nested more than 100 levels"),
                    "{at:?} {size}: {e}"
                );
            }
        }
    }
    // Deep but within the limit: read (and skipped) as prost skips it.
    let ok = place(Place::Top, &groups(100, 15, true, false));
    assert!(via_reader(&ok).is_ok());
    assert!(PutMetricDataRequest::decode(ok.as_slice()).is_ok());
    let too_deep = place(Place::Top, &groups(101, 15, true, false));
    assert!(via_reader(&too_deep).is_err());
    assert!(PutMetricDataRequest::decode(too_deep.as_slice()).is_err());
}

/// Repeated entries beyond what a request may hold are counted, not kept: memory stays
/// bounded by the caps however often a two-byte field repeats.
#[test]
fn repeated_datums_and_dimensions_are_counted_not_kept() {
    // 500,000 empty datums: two bytes each.
    let mut buf = Vec::new();
    len_delimited(1, b"App", &mut buf);
    for _ in 0..500_000 {
        len_delimited(2, b"", &mut buf);
    }
    let req = RequestView::read(&buf).unwrap();
    assert_eq!(req.datum_count, 500_000);
    assert_eq!(req.datums.len(), MAX_DATUMS);
    assert!(req.datums.capacity() < 4 * MAX_DATUMS);
    // 300,000 empty dimensions in one datum.
    let mut datum = Vec::new();
    len_delimited(1, b"Latency", &mut datum);
    for _ in 0..300_000 {
        len_delimited(2, b"", &mut datum);
    }
    let mut d = DatumView::default();
    d.read(&datum).unwrap();
    assert_eq!(d.dimension_count, 300_000);
    assert_eq!(d.dimensions.len(), MAX_DIMENSIONS);
    assert!(d.dimensions.capacity() < 4 * MAX_DIMENSIONS);
    // Each is still read: a malformed one late in the list is refused.
    let mut bad = datum.clone();
    len_delimited(2, &[(1 << 3) | 2, 5, b'x'], &mut bad);
    assert!(DatumView::default().read(&bad).is_err());
}

/// A view's contents, for comparing two reads of the same bytes.
fn view_of(d: &DatumView<'_>) -> String {
    format!(
        "{:?} {:?} {} {} {:?} {:?} {:?} {:?} {:?} {} {}",
        d.metric_name,
        d.dimensions,
        d.dimension_count,
        d.timestamp_ms,
        d.value.map(f64::to_bits),
        d.statistic_values
            .map(|s| [s.sample_count, s.sum, s.minimum, s.maximum].map(f64::to_bits)),
        d.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        d.counts.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        d.unit,
        d.storage_resolution,
        d.identity_end,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// The usual layout's shortcut takes every datum an encoder writes with only the usual
    /// fields, and reads any bytes it takes (valid, mutated or not) as the general reader does.
    #[test]
    fn the_usual_layout_reads_as_any_layout(
        datum in datum(),
        mutate in prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
    ) {
        let mut buf = datum.encode_to_vec();
        let usual_fields = !datum.metric_name.is_empty()
            && datum.statistic_values.is_none()
            && datum.values.is_empty()
            && datum.counts.is_empty()
            && datum.dimensions.iter().all(|d| !d.name.is_empty() && !d.value.is_empty());
        if let Some((at, byte)) = mutate
            && !buf.is_empty()
        {
            let i = at.index(buf.len());
            buf[i] = byte;
        }
        let mut usual = DatumView::default();
        let taken = usual.read_usual(&buf);
        if mutate.is_none() {
            prop_assert_eq!(taken, usual_fields);
        }
        if taken {
            let mut any = DatumView::default();
            prop_assert!(any.read_any(&buf).is_ok());
            prop_assert_eq!(view_of(&usual), view_of(&any));
        }
    }
}
