//! What one `loadgen` run measured, as text or as one JSON object.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Acknowledgement latencies are recorded in microseconds, up to this (1 hour).
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// A histogram for acknowledgement latencies in microseconds (3 significant digits).
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
        .unwrap_or_else(|_| unreachable!("1 µs to 1 h with 3 digits is a valid histogram"))
}

/// The result of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// `native` (`thermostat.v1.MetricsService`), `otlp` (OTLP/gRPC `Export`) or
    /// `remote-write` (Prometheus remote write 1.0 over HTTP/1.1).
    pub protocol: &'static str,
    /// `unary` or `stream` (gRPC), `http1` (remote write).
    pub mode: &'static str,
    /// Connections used.
    pub connections: usize,
    /// Samples the server acknowledged (native: the sum of `accepted_samples`; OTLP: the points
    /// sent less `partial_success.rejected_data_points`; remote write: the samples of the
    /// requests answered 2xx).
    pub samples: u64,
    /// Samples the workload holds.
    pub expected_samples: u64,
    /// Requests acknowledged or failed (retries not counted twice).
    pub requests: u64,
    /// Requests that finally failed.
    pub errors: u64,
    /// RESOURCE_EXHAUSTED answers that were retried after a backoff.
    pub retries: u64,
    /// Wall time from the first request to the last acknowledgement (open loop: from the
    /// start of the schedule, when request 0 is due).
    pub elapsed: Duration,
    /// `--rate`: the open loop's target, samples per second; `None` for the closed loop.
    pub target_rate: Option<f64>,
    /// Median acknowledgement latency, ms (open loop: from each request's scheduled send
    /// time; closed loop: from its first attempt).
    pub ack_latency_p50_ms: f64,
    /// 90th percentile acknowledgement latency, ms.
    pub ack_latency_p90_ms: f64,
    /// 99th percentile acknowledgement latency, ms.
    pub ack_latency_p99_ms: f64,
    /// 99.9th percentile acknowledgement latency, ms.
    pub ack_latency_p999_ms: f64,
    /// Largest acknowledgement latency, ms.
    pub ack_latency_max_ms: f64,
    /// Open loop: the 99th percentile of how late requests left after their due time, ms
    /// (the client's own share of the latencies); `None` for the closed loop.
    pub sent_late_p99_ms: Option<f64>,
    /// The first failure's status, if any.
    pub first_error: Option<String>,
    /// CPU time the load generator itself used from the first request to the last
    /// acknowledgement, seconds (`None` where `/proc` cannot say).
    pub client_cpu_seconds: Option<f64>,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl Report {
    /// Fills in the latency fields from a histogram of microseconds.
    pub fn with_latencies(mut self, h: &Histogram<u64>) -> Self {
        if !h.is_empty() {
            self.ack_latency_p50_ms = ms(h.value_at_quantile(0.50));
            self.ack_latency_p90_ms = ms(h.value_at_quantile(0.90));
            self.ack_latency_p99_ms = ms(h.value_at_quantile(0.99));
            self.ack_latency_p999_ms = ms(h.value_at_quantile(0.999));
            self.ack_latency_max_ms = ms(h.max());
        }
        self
    }

    /// Fills in [`Report::sent_late_p99_ms`] from a histogram of microseconds (left `None`
    /// when it is empty: the closed loop records none).
    pub fn with_lateness(mut self, h: &Histogram<u64>) -> Self {
        if !h.is_empty() {
            self.sent_late_p99_ms = Some(ms(h.value_at_quantile(0.99)));
        }
        self
    }

    /// Acknowledged samples per second of wall time (open loop: the achieved rate).
    pub fn samples_per_second(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.samples as f64 / s
        } else {
            0.0
        }
    }

    /// The run as one JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "protocol": self.protocol,
            "mode": self.mode,
            "connections": self.connections,
            "samples_per_second": self.samples_per_second(),
            "samples": self.samples,
            "expected_samples": self.expected_samples,
            "requests": self.requests,
            "errors": self.errors,
            "retries": self.retries,
            "target_rate": self.target_rate,
            "ack_latency_p50_ms": self.ack_latency_p50_ms,
            "ack_latency_p90_ms": self.ack_latency_p90_ms,
            "ack_latency_p99_ms": self.ack_latency_p99_ms,
            "ack_latency_p999_ms": self.ack_latency_p999_ms,
            "ack_latency_max_ms": self.ack_latency_max_ms,
            "sent_late_p99_ms": self.sent_late_p99_ms,
            "seconds": self.elapsed.as_secs_f64(),
            "first_error": self.first_error,
            "client_cpu_seconds": self.client_cpu_seconds,
        })
    }

    /// The run as a few lines of text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = writeln!(
            out,
            "{} {} over {} connection(s): {} samples in {:.3} s = {:.0} samples/s",
            self.protocol,
            self.mode,
            self.connections,
            self.samples,
            self.elapsed.as_secs_f64(),
            self.samples_per_second()
        );
        if let Some(target) = self.target_rate {
            let _ = writeln!(
                out,
                "open loop: target {target:.0} samples/s, achieved {:.0} samples/s \
                 (latency from each request's scheduled send time)",
                self.samples_per_second()
            );
        }
        let _ = writeln!(
            out,
            "requests {}  errors {}  retries {}  (expected samples {})",
            self.requests, self.errors, self.retries, self.expected_samples
        );
        let _ = writeln!(
            out,
            "ack latency p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
            self.ack_latency_p50_ms,
            self.ack_latency_p90_ms,
            self.ack_latency_p99_ms,
            self.ack_latency_p999_ms,
            self.ack_latency_max_ms
        );
        if let Some(late) = self.sent_late_p99_ms {
            let _ = writeln!(
                out,
                "requests left after their due time by {late:.3} ms at p99 (the client's share)"
            );
        }
        if let Some(cpu) = self.client_cpu_seconds {
            let _ = writeln!(out, "client CPU during the run {cpu:.2} s");
        }
        if let Some(e) = &self.first_error {
            let _ = writeln!(out, "first error: {e}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_documented_keys() {
        let mut h = latency_histogram();
        for us in 1..=100 {
            h.record(us * 1000).unwrap();
        }
        let r = Report {
            protocol: "otlp",
            mode: "unary",
            connections: 2,
            samples: 1000,
            expected_samples: 1000,
            requests: 10,
            errors: 0,
            retries: 1,
            elapsed: Duration::from_millis(500),
            target_rate: None,
            ack_latency_p50_ms: 0.0,
            ack_latency_p90_ms: 0.0,
            ack_latency_p99_ms: 0.0,
            ack_latency_p999_ms: 0.0,
            ack_latency_max_ms: 0.0,
            sent_late_p99_ms: None,
            first_error: None,
            client_cpu_seconds: Some(0.25),
        }
        .with_latencies(&h)
        .with_lateness(&latency_histogram());
        let j = r.to_json();
        for key in [
            "protocol",
            "mode",
            "samples_per_second",
            "samples",
            "requests",
            "errors",
            "retries",
            "target_rate",
            "ack_latency_p50_ms",
            "ack_latency_p90_ms",
            "ack_latency_p99_ms",
            "ack_latency_p999_ms",
            "ack_latency_max_ms",
            "sent_late_p99_ms",
            "seconds",
            "client_cpu_seconds",
        ] {
            assert!(j.get(key).is_some(), "{key} missing from {j}");
        }
        assert_eq!(j["samples_per_second"], 2000.0);
        assert!((j["ack_latency_p50_ms"].as_f64().unwrap() - 50.0).abs() < 0.1);
        assert!((j["ack_latency_p90_ms"].as_f64().unwrap() - 90.0).abs() < 0.1);
        assert!((j["ack_latency_p99_ms"].as_f64().unwrap() - 99.0).abs() < 0.1);
        assert!((j["ack_latency_p999_ms"].as_f64().unwrap() - 100.0).abs() < 0.1);
        assert!(j["target_rate"].is_null());
        assert_eq!(j["protocol"], "otlp");
        assert!(r.to_text().contains("2000 samples/s"));
        assert!(r.to_text().starts_with("otlp unary over 2 connection(s)"));
        assert!(!r.to_text().contains("open loop"));
        assert!(
            j["sent_late_p99_ms"].is_null(),
            "the closed loop records no lateness"
        );

        let mut late = latency_histogram();
        for us in 1..=100 {
            late.record(us * 10).unwrap();
        }
        let open = Report {
            target_rate: Some(2500.0),
            ..r
        }
        .with_lateness(&late);
        assert!((open.to_json()["sent_late_p99_ms"].as_f64().unwrap() - 0.99).abs() < 0.01);
        assert_eq!(open.to_json()["target_rate"], 2500.0);
        let text = open.to_text();
        assert!(
            text.contains("open loop: target 2500 samples/s, achieved 2000 samples/s"),
            "{text}"
        );
        // 100 ms within the histogram's 3 significant digits.
        assert!(text.contains("p99.9 100.031 ms"), "{text}");
        assert!(
            text.contains("left after their due time by 0.990 ms at p99"),
            "{text}"
        );
    }
}
