//! Adjustment math (reference §5.4): adjustment types, percent rounding,
//! `MinAdjustmentMagnitude`, clamping, and step matching relative to the alarm threshold
//! (§5.6).

use crate::model::{AdjustmentType, StepAdjustment};

/// Rounds a raw percent delta as EC2 Auto Scaling does (reference §5.4): truncate toward
/// zero, but never to zero when the delta is not zero (12.7 → 12, 0.67 → 1, −0.58 → −1,
/// −6.67 → −6).
pub fn round_percent_delta(raw: f64) -> i64 {
    // Deltas are bounded by group sizes (u32 × a percentage), far inside i64.
    #[allow(clippy::cast_possible_truncation)]
    let t = raw.trunc() as i64;
    if t == 0 && raw != 0.0 {
        if raw > 0.0 { 1 } else { -1 }
    } else {
        t
    }
}

/// `current × percent / 100`, rounded by [`round_percent_delta`] (computed exactly in
/// integers: a percentage of zero stays zero).
pub fn percent_delta(current: u32, percent: i64) -> i64 {
    let num = i64::from(current).saturating_mul(percent);
    let t = num / 100; // Rust's integer division truncates toward zero.
    if t == 0 && num != 0 { num.signum() } else { t }
}

/// The change in capacity an adjustment makes from `current`, with `min_adjustment_magnitude`
/// applied to percent changes (its magnitude, the sign kept; a zero change stays zero).
pub fn delta(
    adjustment_type: AdjustmentType,
    adjustment: i64,
    current: u32,
    min_adjustment_magnitude: Option<u32>,
) -> i64 {
    match adjustment_type {
        AdjustmentType::ChangeInCapacity => adjustment,
        AdjustmentType::ExactCapacity => adjustment - i64::from(current),
        AdjustmentType::PercentChangeInCapacity => {
            let d = percent_delta(current, adjustment);
            match min_adjustment_magnitude {
                Some(m) if d != 0 && d.abs() < i64::from(m) => i64::from(m) * d.signum(),
                _ => d,
            }
        }
    }
}

/// The capacity an adjustment asks for from `current`, before clamping.
pub fn adjusted(
    adjustment_type: AdjustmentType,
    adjustment: i64,
    current: u32,
    min_adjustment_magnitude: Option<u32>,
) -> i64 {
    i64::from(current)
        + delta(
            adjustment_type,
            adjustment,
            current,
            min_adjustment_magnitude,
        )
}

/// Clamps a wanted capacity into `[min, max]` (policies clamp instead of failing,
/// reference §5.1).
pub fn clamp(wanted: i64, min: u32, max: u32) -> u32 {
    let c = wanted.clamp(i64::from(min), i64::from(max.max(min)));
    u32::try_from(c).unwrap_or(min)
}

/// The step whose interval contains `breach` (= aggregated metric − threshold), with the
/// inclusivity of reference §5.6: above the threshold `lower ≤ breach < upper`, below it
/// `lower < breach ≤ upper`; exactly at the threshold, the interval that contains 0 under
/// either rule (the `[0, …)` step first).
pub fn find_step(steps: &[StepAdjustment], breach: f64) -> Option<&StepAdjustment> {
    let lo = |s: &StepAdjustment| s.lower.unwrap_or(f64::NEG_INFINITY);
    let hi = |s: &StepAdjustment| s.upper.unwrap_or(f64::INFINITY);
    let above = |s: &&StepAdjustment| lo(s) <= breach && breach < hi(s);
    let below = |s: &&StepAdjustment| lo(s) < breach && breach <= hi(s);
    if breach > 0.0 {
        steps.iter().find(above)
    } else if breach < 0.0 {
        steps.iter().find(below)
    } else {
        steps
            .iter()
            .find(above)
            .or_else(|| steps.iter().find(below))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AdjustmentType::*;

    #[test]
    fn section_7_8_percent_rounding() {
        // (current, adj %, MinAdjustmentMagnitude, final delta) — reference §7.8 rows.
        let rows: &[(u32, i64, Option<u32>, i64)] = &[
            (10, 10, None, 1),   // §7.8 row 1
            (11, 30, None, 3),   // §7.8 row 2
            (14, -10, None, -1), // §7.8 row 3
            (13, -30, None, -3), // §7.8 row 4
            (4, 25, Some(2), 2), // §7.8 row 9
            (8, -25, None, -2),  // §7.8 row 10
            (10, 200, None, 20), // §7.8 row 11
            (0, 50, None, 0),    // §7.8 row 12 (DERIVED: percent of zero stays zero)
        ];
        for &(current, adj, mag, want) in rows {
            assert_eq!(
                delta(PercentChangeInCapacity, adj, current, mag),
                want,
                "{current} {adj}% mag {mag:?}"
            );
        }
        // Raw deltas (§7.8 rows 5–8).
        for (raw, want) in [(12.7, 12), (0.67, 1), (-0.58, -1), (-6.67, -6)] {
            assert_eq!(round_percent_delta(raw), want, "{raw}");
        }
        // §5.4: 1.0 → 1, integers unchanged; −10 % of 14 is 13 in AWS (moto says 12).
        assert_eq!(round_percent_delta(1.0), 1);
        assert_eq!(adjusted(PercentChangeInCapacity, -10, 14, None), 13);
        // MinAdjustmentMagnitude keeps the sign on scale-in (UNCONFIRMED, §5.4).
        assert_eq!(delta(PercentChangeInCapacity, -25, 4, Some(2)), -2);
    }

    #[test]
    fn adjustment_types() {
        // Reference §5.4.
        assert_eq!(adjusted(ChangeInCapacity, 2, 3, None), 5);
        assert_eq!(adjusted(ChangeInCapacity, -2, 3, None), 1);
        assert_eq!(adjusted(ExactCapacity, 7, 3, None), 7);
        assert_eq!(adjusted(PercentChangeInCapacity, 50, 4, None), 6);
    }

    #[test]
    fn section_7_9_clamping() {
        assert_eq!(clamp(adjusted(ChangeInCapacity, 3, 2, None), 0, 3), 3); // §7.9 row 1
        assert_eq!(clamp(adjusted(ChangeInCapacity, -2, 3, None), 2, 10), 2); // §7.9 row 2
        assert_eq!(clamp(-5, 0, 10), 0);
    }

    fn step(lower: Option<f64>, upper: Option<f64>, adj: i64) -> StepAdjustment {
        StepAdjustment {
            lower,
            upper,
            scaling_adjustment: adj,
        }
    }

    #[test]
    fn step_matching_is_relative_with_direction_dependent_inclusivity() {
        // Reference §7.7: threshold 60, steps [0,15) +10, [15,25) +20, [25,∞) +30.
        let steps = [
            step(Some(0.0), Some(15.0), 10),
            step(Some(15.0), Some(25.0), 20),
            step(Some(25.0), None, 30),
        ];
        for (metric, want) in [(60.0, 10), (74.9, 10), (75.0, 20), (85.0, 30)] {
            let s = find_step(&steps, metric - 60.0).map(|s| s.scaling_adjustment);
            assert_eq!(s, Some(want), "metric {metric}");
        }
        // Scale-in steps: (−10,0] 0, (−20,−10] −10, (−∞,−20] −30; upper bounds inclusive.
        let down = [
            step(Some(-10.0), Some(0.0), 0),
            step(Some(-20.0), Some(-10.0), -10),
            step(None, Some(-20.0), -30),
        ];
        assert_eq!(
            find_step(&down, -10.0).map(|s| s.scaling_adjustment),
            Some(-10)
        );
        assert_eq!(
            find_step(&down, -20.0).map(|s| s.scaling_adjustment),
            Some(-30)
        );
        assert_eq!(find_step(&down, 0.0).map(|s| s.scaling_adjustment), Some(0));
        // §7.7: only {lower 0} on a LessThanThreshold 85 alarm, metric 0.14 → no step.
        assert!(find_step(&[step(Some(0.0), None, -1)], 0.14 - 85.0).is_none());
    }
}
