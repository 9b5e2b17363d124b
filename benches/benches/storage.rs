//! Why ingest has its own write-ahead log (ARCHITECTURE.md, "Decisions"): the cost of making
//! 1,000 samples durable, as one 1,000-datum request appended to a log file and synced, against
//! 1,000 sample rows committed to redb in one durable transaction.

#![allow(clippy::unwrap_used, reason = "benchmark setup")]

use std::fs::OpenOptions;
use std::hint::black_box;
use std::io::Write as _;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message as _;
use redb::{Database, TableDefinition};
use thermostat_proto::v1::{Dimension, MetricDatum, PutMetricDataRequest};

const SAMPLES: usize = 1000;
const TABLE: TableDefinition<(u32, i64), f64> = TableDefinition::new("samples");

fn request(round: i64) -> PutMetricDataRequest {
    PutMetricDataRequest {
        namespace: "Bench".into(),
        metric_data: (0..SAMPLES)
            .map(|i| MetricDatum {
                metric_name: "CPUUtilization".into(),
                dimensions: vec![Dimension {
                    name: "InstanceId".into(),
                    value: format!("i-{:08x}", i % 100),
                }],
                timestamp_ms: 1_800_000_000_000 + round * 1000 + i as i64,
                value: Some(i as f64),
                ..Default::default()
            })
            .collect(),
    }
}

fn durable_writes(c: &mut Criterion) {
    let mut g = c.benchmark_group("durable_1000_samples");
    g.throughput(Throughput::Elements(SAMPLES as u64))
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));

    let dir = tempfile::tempdir().unwrap();
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("log"))
        .unwrap();
    let mut round = 0;
    g.bench_function("log_append_and_fdatasync", |b| {
        b.iter(|| {
            round += 1;
            let bytes = request(round).encode_to_vec();
            log.write_all(&(bytes.len() as u32).to_le_bytes()).unwrap();
            log.write_all(&bytes).unwrap();
            log.sync_data().unwrap();
        })
    });

    let db = Database::create(dir.path().join("samples.redb")).unwrap();
    let mut round = 0i64;
    g.bench_function("redb_rows_one_durable_transaction", |b| {
        b.iter(|| {
            round += 1;
            let tx = db.begin_write().unwrap();
            {
                let mut t = tx.open_table(TABLE).unwrap();
                for i in 0..SAMPLES {
                    t.insert(
                        ((i % 100) as u32, round * 1000 + i as i64),
                        black_box(i as f64),
                    )
                    .unwrap();
                }
            }
            tx.commit().unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, durable_writes);
criterion_main!(benches);
