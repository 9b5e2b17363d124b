//! The simulated fleet the demo's agents report on, as pure functions of time and capacity.
//!
//! Requests arrive at a rate that follows [`LoadCurve`]; the instances in service share them.
//! An instance serves [`INSTANCE_CAPACITY_RPS`] requests per second at 100 % CPU, so CPU is
//! the utilisation `load / (in service × capacity)`, capped at 100 %. Response times follow
//! an M/M/1 queue: exponentially distributed with mean `service time / (1 − utilisation)`
//! (utilisation capped at [`MAX_UTILISATION`] so that an overloaded fleet has a finite,
//! large latency), so p50 and p99 grow sharply as CPU approaches saturation.

/// How often the agents sample and push, in milliseconds.
pub const SAMPLE_INTERVAL_MS: i64 = 5_000;
/// Requests per second one instance serves at 100 % CPU.
pub const INSTANCE_CAPACITY_RPS: f64 = 100.0;
/// Mean service time of a request on an idle instance, in milliseconds.
pub const SERVICE_TIME_MS: f64 = 20.0;
/// The utilisation at which queueing delay stops growing (an overloaded fleet sheds load).
pub const MAX_UTILISATION: f64 = 0.95;
/// Points of the latency distribution pushed per sample (CloudWatch allows 150 values).
pub const LATENCY_POINTS: usize = 100;

/// A repeating load curve: a base rate with one spike per cycle, in requests per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadCurve {
    /// Requests per second outside the spike.
    pub base_rps: f64,
    /// Requests per second at the top of the spike.
    pub peak_rps: f64,
    /// When the ramp up starts, from the start of the cycle.
    pub ramp_up_ms: i64,
    /// When the peak is reached.
    pub peak_from_ms: i64,
    /// When the ramp down starts.
    pub peak_until_ms: i64,
    /// When the base rate is reached again.
    pub ramp_down_ms: i64,
    /// Length of one cycle.
    pub cycle_ms: i64,
}

impl LoadCurve {
    /// The demo's curve: 80 req/s (40 % CPU on the 2 base instances), a spike to 340 req/s
    /// 10 s into each 5-minute cycle, held for a minute.
    pub const DEMO: LoadCurve = LoadCurve {
        base_rps: 80.0,
        peak_rps: 340.0,
        ramp_up_ms: 10_000,
        peak_from_ms: 20_000,
        peak_until_ms: 80_000,
        ramp_down_ms: 90_000,
        cycle_ms: 300_000,
    };

    /// Requests per second `elapsed_ms` after the start of the first cycle.
    pub fn requests_per_second(&self, elapsed_ms: i64) -> f64 {
        let t = elapsed_ms.rem_euclid(self.cycle_ms.max(1));
        let lerp = |from: i64, to: i64, a: f64, b: f64| {
            let span = (to - from).max(1) as f64;
            a + (b - a) * ((t - from) as f64 / span)
        };
        if t < self.ramp_up_ms || t >= self.ramp_down_ms {
            self.base_rps
        } else if t < self.peak_from_ms {
            lerp(
                self.ramp_up_ms,
                self.peak_from_ms,
                self.base_rps,
                self.peak_rps,
            )
        } else if t < self.peak_until_ms {
            self.peak_rps
        } else {
            lerp(
                self.peak_until_ms,
                self.ramp_down_ms,
                self.peak_rps,
                self.base_rps,
            )
        }
    }
}

/// The share of the in-service capacity that `load_rps` asks for (above 1 when
/// overloaded); infinite without instances.
pub fn utilisation(load_rps: f64, in_service: u32) -> f64 {
    if in_service == 0 {
        return f64::INFINITY;
    }
    load_rps / (f64::from(in_service) * INSTANCE_CAPACITY_RPS)
}

/// CPU of an instance at `utilisation`, in percent.
pub fn cpu_percent(utilisation: f64) -> f64 {
    (utilisation * 100.0).clamp(0.0, 100.0)
}

/// Mean response time at `utilisation`, in milliseconds (M/M/1).
pub fn mean_latency_ms(utilisation: f64) -> f64 {
    SERVICE_TIME_MS / (1.0 - utilisation.clamp(0.0, MAX_UTILISATION))
}

/// The `p`-quantile (0 < p < 1) of response times with mean `mean_ms`.
pub fn latency_quantile_ms(mean_ms: f64, p: f64) -> f64 {
    -mean_ms * (1.0 - p).ln()
}

/// The response times of `requests` requests with mean `mean_ms`, as CloudWatch's
/// `Values`/`Counts` arrays: the exponential distribution at up to [`LATENCY_POINTS`] evenly
/// spaced quantiles, with whole counts adding up to `requests`. Empty for no requests.
pub fn latency_histogram(mean_ms: f64, requests: u64) -> (Vec<f64>, Vec<f64>) {
    let points = usize::try_from(requests)
        .unwrap_or(usize::MAX)
        .min(LATENCY_POINTS);
    if points == 0 {
        return (Vec::new(), Vec::new());
    }
    let k = points as u64;
    let (each, extra) = (requests / k, requests % k);
    let mut values = Vec::with_capacity(points);
    let mut counts = Vec::with_capacity(points);
    for i in 0..k {
        let q = (i as f64 + 0.5) / k as f64;
        values.push(latency_quantile_ms(mean_ms, q));
        // The remainder goes to evenly spread points, so the shape stays the same.
        let bonus = u64::from((i * extra) / k != ((i + 1) * extra) / k);
        counts.push((each + bonus) as f64);
    }
    (values, counts)
}

/// A small deterministic pseudo-random source (xorshift64*), so that runs are reproducible.
#[derive(Clone, Debug)]
pub struct Noise(u64);

impl Noise {
    /// A source seeded with `seed` (0 is replaced by a fixed odd constant).
    pub fn new(seed: u64) -> Self {
        Noise(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// A number in [0, 1).
    pub fn next_unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `value` moved by up to `± spread` (absolute), uniformly.
    pub fn jitter(&mut self, value: f64, spread: f64) -> f64 {
        value + (self.next_unit() * 2.0 - 1.0) * spread
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curve_has_a_spike_and_repeats() {
        let c = LoadCurve::DEMO;
        assert_eq!(c.requests_per_second(0), 80.0);
        assert_eq!(c.requests_per_second(15_000), 210.0, "half way up");
        assert_eq!(c.requests_per_second(50_000), 340.0);
        assert_eq!(c.requests_per_second(85_000), 210.0, "half way down");
        assert_eq!(c.requests_per_second(200_000), 80.0);
        assert_eq!(c.requests_per_second(300_000 + 50_000), 340.0, "next cycle");
    }

    #[test]
    fn cpu_and_latency_follow_the_capacity() {
        // The spike on the 2 base instances saturates them...
        let hot = utilisation(340.0, 2);
        assert_eq!(cpu_percent(hot), 100.0);
        // ...and on 6 it is under 60 %.
        let cooled = utilisation(340.0, 6);
        assert!((cpu_percent(cooled) - 56.67).abs() < 0.01);
        assert!(mean_latency_ms(hot) > 5.0 * mean_latency_ms(cooled));
        assert_eq!(mean_latency_ms(0.0), SERVICE_TIME_MS);
        assert!(utilisation(10.0, 0).is_infinite());
        let p99 = latency_quantile_ms(100.0, 0.99);
        assert!((p99 - 460.5).abs() < 0.1, "{p99}");
    }

    #[test]
    fn the_histogram_keeps_every_request_in_whole_counts() {
        for requests in [0u64, 1, 7, 99, 100, 101, 1799] {
            let (values, counts) = latency_histogram(50.0, requests);
            assert_eq!(values.len(), counts.len());
            assert!(values.len() <= LATENCY_POINTS);
            assert_eq!(counts.iter().sum::<f64>(), requests as f64, "{requests}");
            assert!(counts.iter().all(|c| c.fract() == 0.0 && *c >= 1.0));
            assert!(values.windows(2).all(|w| w[0] < w[1]), "sorted");
        }
        // The nearest-rank p99 of the pushed distribution is close to the model's.
        let (values, counts) = latency_histogram(100.0, 1000);
        let mut seen = 0.0;
        let p99 = values
            .iter()
            .zip(&counts)
            .find(|(_, c)| {
                seen += **c;
                seen >= 990.0
            })
            .map(|(v, _)| *v)
            .unwrap();
        assert!(p99 > 400.0 && p99 < 480.0, "{p99}");
    }

    #[test]
    fn noise_is_deterministic_and_bounded() {
        let (mut a, mut b) = (Noise::new(7), Noise::new(7));
        for _ in 0..1000 {
            let x = a.jitter(50.0, 3.0);
            assert_eq!(x, b.jitter(50.0, 3.0));
            assert!((47.0..=53.0).contains(&x));
        }
    }
}
