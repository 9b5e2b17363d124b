//! Bucket bounds and the representative value of a bucket: the one value a bucket's count is
//! recorded at, always inside the bucket, so that a percentile read from the representatives
//! lies within the bucket that holds its rank (the error bounds are derived in
//! `docs/otlp.md`). OTLP's and Prometheus' histograms use the same representatives.

/// The bounds `(lower, upper]` of explicit bucket `index` of a histogram with `bounds`
/// (`bounds.len() + 1` buckets): the first is `(-inf, bounds[0]]`, the last
/// `(bounds[n-1], +inf)`.
pub fn explicit_bucket(bounds: &[f64], index: usize) -> (f64, f64) {
    let lower = if index == 0 {
        f64::NEG_INFINITY
    } else {
        bounds.get(index - 1).copied().unwrap_or(f64::INFINITY)
    };
    let upper = bounds.get(index).copied().unwrap_or(f64::INFINITY);
    (lower, upper)
}

/// The representative of explicit bucket `index`: the midpoint of the bucket narrowed to the
/// point's `[min, max]` where those lie in it. An open bucket (the first or the last) without
/// `min` (or `max`) in it is represented by its finite bound (the last bucket by the least
/// double above its bound, since it excludes the bound); a histogram of one bucket
/// `(-inf, +inf)` without `min` and `max` by `mean` (sum / count) when known, else 0.
///
/// The result is finite and lies in the bucket: `lower < r <= upper`, for bounds that are
/// finite and strictly increasing (as the mapping checks).
pub fn explicit_representative(
    bounds: &[f64],
    index: usize,
    min: Option<f64>,
    max: Option<f64>,
    mean: Option<f64>,
) -> f64 {
    let (lower, upper) = explicit_bucket(bounds, index);
    let inside = |v: f64| v.is_finite() && v > lower && v <= upper;
    let mut min = min.filter(|&m| inside(m));
    let mut max = max.filter(|&m| inside(m));
    if let (Some(a), Some(b)) = (min, max)
        && a > b
    {
        (min, max) = (None, None);
    }
    // The narrowed bucket: from `a` (closed when it is `min`, open when it is `lower`) to `b`.
    let a = min.unwrap_or(lower);
    let b = max.unwrap_or(upper);
    let r = match (a.is_finite(), b.is_finite()) {
        (true, true) => {
            let mid = a / 2.0 + b / 2.0;
            if mid > lower && mid <= upper { mid } else { b }
        }
        (false, true) => b,
        (true, false) => {
            if min.is_some() {
                a
            } else {
                a.next_up()
            }
        }
        (false, false) => mean.filter(|m| m.is_finite()).unwrap_or(0.0),
    };
    if inside(r) { r } else { fallback(lower, upper) }
}

/// Some finite value in `(lower, upper]`, for inputs the rules above do not cover.
fn fallback(lower: f64, upper: f64) -> f64 {
    if upper.is_finite() {
        upper
    } else if lower.is_finite() {
        lower.next_up()
    } else {
        0.0
    }
}

/// The bounds `(lower, upper]` of positive exponential bucket `index` at `scale`:
/// `(base^index, base^(index+1)]` with `base = 2^(2^-scale)`, as doubles (0 or infinity
/// where a bound lies beyond the doubles' range).
pub fn exponential_bucket(scale: i32, index: i64) -> (f64, f64) {
    let width = (-f64::from(scale)).exp2();
    let lower = (index as f64 * width).exp2();
    let upper = ((index + 1) as f64 * width).exp2();
    (lower, upper)
}

/// The representative of positive exponential bucket `index` at `scale`:
/// `2·L·U / (L + U)` for the bucket `(L, U]` (for `U = base·L`, `2·U / (1 + base)`), the value
/// whose relative distance to any value of the bucket is at most `(base - 1) / (base + 1)`;
/// computed in log space, so that it neither overflows nor underflows for any scale. The
/// negative bucket of the same index is represented by the negation.
///
/// `None` when the bucket holds no finite double (a bucket beyond 2^1024, or one so far
/// below 1 that no subnormal double lies in it).
pub fn exponential_representative(scale: i32, index: i64) -> Option<f64> {
    let width = (-f64::from(scale)).exp2();
    let log_lower = index as f64 * width;
    // log2(2·L·U/(L+U)) = log2(L) + 1 - log2(1 + 2^-width).
    let log_r = log_lower + 1.0 - (-width).exp2().ln_1p() / std::f64::consts::LN_2;
    let (lower, upper) = exponential_bucket(scale, index);
    if lower.is_infinite() || upper == 0.0 {
        return None;
    }
    let top = if upper.is_finite() { upper } else { f64::MAX };
    let r = log_r.exp2();
    // Rounding at the ends of the doubles' range: the upper bound is in the bucket.
    let r = if r > top || r <= lower { top } else { r };
    (r > lower && r <= top).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_representatives_lie_inside_their_buckets() {
        let bounds = [0.0, 5.0, 10.0, 25.0];
        // Finite buckets: the midpoint.
        assert_eq!(explicit_representative(&bounds, 1, None, None, None), 2.5);
        assert_eq!(explicit_representative(&bounds, 3, None, None, None), 17.5);
        // Open buckets without min/max: the finite bound (inside for the first, just above it
        // for the last).
        assert_eq!(explicit_representative(&bounds, 0, None, None, None), 0.0);
        assert_eq!(
            explicit_representative(&bounds, 4, None, None, None),
            25.0_f64.next_up()
        );
        // With min and max inside the open buckets: the midpoint of what they leave.
        assert_eq!(
            explicit_representative(&bounds, 0, Some(-10.0), Some(40.0), None),
            -5.0
        );
        assert_eq!(
            explicit_representative(&bounds, 4, Some(-10.0), Some(35.0), None),
            30.0
        );
        // min and max narrow a finite bucket too.
        assert_eq!(
            explicit_representative(&bounds, 2, Some(6.0), Some(8.0), None),
            7.0
        );
        // min/max outside the bucket are ignored.
        assert_eq!(
            explicit_representative(&bounds, 2, Some(-3.0), Some(99.0), None),
            7.5
        );
        // One bucket for everything: min/max, else the mean.
        assert_eq!(
            explicit_representative(&[], 0, Some(1.0), Some(3.0), None),
            2.0
        );
        assert_eq!(explicit_representative(&[], 0, None, None, Some(4.5)), 4.5);
        assert_eq!(explicit_representative(&[], 0, None, None, None), 0.0);
    }

    #[test]
    fn exponential_buckets_at_several_scales() {
        for scale in [-10, -2, 0, 3, 20] {
            let base = (-f64::from(scale)).exp2().exp2();
            for index in [-5i64, -1, 0, 1, 7] {
                let (lower, upper) = exponential_bucket(scale, index);
                let Some(r) = exponential_representative(scale, index) else {
                    assert!(
                        lower.is_infinite() || lower.next_up() > upper,
                        "scale {scale} index {index}"
                    );
                    continue;
                };
                assert!(
                    lower < r && r <= upper,
                    "scale {scale} index {index}: {lower} < {r} <= {upper}"
                );
                if base.is_finite() && lower > 0.0 && upper.is_finite() {
                    let bound = (base - 1.0) / (base + 1.0);
                    for v in [lower.next_up(), (lower * upper).sqrt(), upper] {
                        let err = (r - v).abs() / v;
                        assert!(
                            err <= bound * (1.0 + 1e-9),
                            "scale {scale} index {index} v {v}: {err} > {bound}"
                        );
                    }
                }
            }
        }
        // Scale 0: bucket 0 is (1, 2], represented by 2·2/3.
        assert!((exponential_representative(0, 0).unwrap() - 4.0 / 3.0).abs() < 1e-15);
        // Scale -2: base 16, bucket 1 is (16, 256], represented by 2·256/17.
        assert!((exponential_representative(-2, 1).unwrap() - 512.0 / 17.0).abs() < 1e-12);
    }

    #[test]
    fn exponential_buckets_at_the_ends_of_the_doubles() {
        // At scale -10, bucket 0 is (1, 2^1024]: represented by a finite value inside.
        let r = exponential_representative(-10, 0).unwrap();
        assert!(r > 1.0 && r.is_finite());
        // Bucket 1 at scale -10 starts at 2^1024: no double lies in it.
        assert_eq!(exponential_representative(-10, 1), None);
        // Far below the smallest double.
        assert_eq!(exponential_representative(0, -1200), None);
        // The bucket just above the smallest normal double at scale 20.
        let index = -1022i64 << 20;
        let (lower, upper) = exponential_bucket(20, index);
        let r = exponential_representative(20, index).unwrap();
        assert!(lower < r && r <= upper);
    }
}
