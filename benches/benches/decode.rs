//! Cost of the ingest edge before the store, for a 1000-datum `PutMetricDataRequest`: prost
//! decoding (the reference the server no longer uses), and the server's zero-copy reading plus
//! validation and series lookup (`validate_request`), with every series new (cold interner)
//! and with every series known (the steady state).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message as _;
use thermostat_benches::{Workload, WorkloadSpec};
use thermostat_ingest::bench::{Interner, validate_request};
use thermostat_metrics::Timestamp;
use thermostat_proto::v1::PutMetricDataRequest;

const DATUMS: usize = 1000;
const NOW_MS: i64 = 1_700_000_000_000;

fn decode(c: &mut Criterion) {
    // One request of 1000 series at one timestamp, as loadgen sends.
    let workload = Workload::new(
        WorkloadSpec {
            series: DATUMS,
            samples_per_series: 1,
            batch: DATUMS,
            ..WorkloadSpec::default()
        },
        NOW_MS,
    )
    .unwrap_or_else(|e| panic!("the bench workload is valid: {e}"));
    let bytes = workload.request(0).encode_to_vec();
    let now = Timestamp::from_millis(NOW_MS);

    let mut g = c.benchmark_group("decode");
    g.measurement_time(Duration::from_secs(3)).sample_size(20);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("prost_1000_datums_bytes", |b| {
        b.iter(|| PutMetricDataRequest::decode(black_box(&bytes[..])))
    });
    g.throughput(Throughput::Elements(DATUMS as u64));
    g.bench_function("prost_1000_datums", |b| {
        b.iter(|| PutMetricDataRequest::decode(black_box(&bytes[..])))
    });
    g.bench_function("read_and_validate_1000_datums_cold", |b| {
        b.iter(|| {
            let interner = Interner::new(1 << 16);
            let Ok(v) = validate_request(black_box(&bytes), now, &interner) else {
                unreachable!("the generated request is valid")
            };
            black_box(v.samples)
        })
    });
    let interner = Interner::new(1 << 16);
    g.bench_function("read_and_validate_1000_datums_warm", |b| {
        b.iter(|| validate_request(black_box(&bytes), now, &interner).map(|v| v.samples))
    });
    g.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
