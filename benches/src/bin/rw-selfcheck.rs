//! TEMPORARY (deleted before hand-off): runs the remote-write round-trip checks in release.
#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]
use std::collections::HashSet;
use thermostat_benches::remote_write::*;
use thermostat_benches::{Layout, Order, Workload, WorkloadSpec};
use thermostat_proto::v1::PutMetricDataRequest;
type Flat = (String, String, Vec<(String, String)>, i64, u64);
fn workload(series: usize, samples: usize, batch: usize, layout: Layout, order: Order) -> Workload {
    Workload::new(WorkloadSpec { series, samples_per_series: samples, batch, seed: 5, layout, order, ..WorkloadSpec::default() }, 1_700_000_000_123).unwrap()
}
fn native_samples(r: &PutMetricDataRequest) -> Vec<Flat> {
    r.metric_data.iter().map(|d| {
        let mut dims: Vec<(String, String)> = d.dimensions.iter().map(|x| (x.name.clone(), x.value.clone())).collect();
        dims.sort();
        (r.namespace.clone(), d.metric_name.clone(), dims, d.timestamp_ms, d.value.unwrap().to_bits())
    }).collect()
}
fn rw_samples(body: &[u8]) -> Vec<Flat> {
    let r = thermostat_prometheus::decode_v1(body).unwrap();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for ts in &r.timeseries {
        assert!(ts.labels.windows(2).all(|w| w[0].name < w[1].name));
        assert!(seen.insert(ts.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect::<Vec<_>>()));
        assert!(ts.samples.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
        let value = |n: &str| ts.labels.iter().find(|l| l.name == n).unwrap().value.clone();
        let dims: Vec<(String, String)> = ts.labels.iter().filter(|l| l.name != NAME_LABEL && l.name != NAMESPACE_LABEL).map(|l| (l.name.clone(), l.value.clone())).collect();
        for s in &ts.samples {
            out.push((value(NAMESPACE_LABEL), value(NAME_LABEL), dims.clone(), s.timestamp, s.value.to_bits()));
        }
    }
    out
}
fn grouped(native: Vec<Flat>) -> Vec<Flat> {
    let mut order: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for s in &native { let series = (s.1.clone(), s.2.clone()); if !order.contains(&series) { order.push(series); } }
    let mut out = native;
    out.sort_by_key(|s| order.iter().position(|o| o.0 == s.1 && o.1 == s.2));
    out
}
fn main() {
    let specs = vec![
        workload(50, 20, 100, Layout::Instances, Order::Time),
        workload(7, 13, 10, Layout::Instances, Order::Time),
        workload(3, 5, 1000, Layout::Instances, Order::Agent),
        workload(40, 6, 25, Layout::Hosts { metrics: 10 }, Order::Time),
        workload(100, 50, 1000, Layout::Hosts { metrics: 10 }, Order::Time),
        workload(21, 10, 6, Layout::Hosts { metrics: 3 }, Order::Agent),
        workload(200, 100, 1000, Layout::Hosts { metrics: 10 }, Order::Agent),
    ];
    let mut checked = 0;
    for w in &specs {
        for per in [1, 3] {
            let e = w.encode_remote_write(per);
            let n = w.request_count();
            assert_eq!(e.bodies.len(), n.div_ceil(per));
            assert_eq!(e.samples.iter().sum::<u64>(), w.samples());
            for (r, body) in e.bodies.iter().enumerate() {
                let native: Vec<Flat> = (r * per..((r + 1) * per).min(n)).flat_map(|k| native_samples(&w.request(k))).collect();
                let d = rw_samples(body);
                assert_eq!(d.len() as u64, e.samples[r]);
                assert_eq!(d, grouped(native));
                checked += d.len();
            }
        }
        {
            use prost::Message as _;
            let e = w.encode_remote_write(2);
            for (r, body) in e.bodies.iter().enumerate() {
                let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
                let ks = 2 * r..(2 * r + 2).min(w.request_count());
                assert_eq!(raw, w.remote_write_request(ks).encode_to_vec());
            }
        }
        let mut a: Vec<Flat> = w.requests().flat_map(|r| native_samples(&r)).collect();
        let mut b: Vec<Flat> = w.encode_remote_write(1).bodies.iter().flat_map(|x| rw_samples(x)).collect();
        a.sort(); b.sort(); assert_eq!(a, b);
    }
    eprintln!("round trip ok: {checked} samples");
    // Text form of the compare CI workload for a VM cross-check.
    let w = Workload::new(WorkloadSpec { namespace: "Thermostat/Compare".into(), series: 100, samples_per_series: 50, batch: 1000, seed: 0, layout: Layout::Hosts { metrics: 10 }, order: Order::Agent }, 1_700_000_000_000).unwrap();
    let mut out = std::io::stdout().lock();
    for k in 0..w.request_count() { w.write_prometheus_text(k, &mut out).unwrap(); }
}
