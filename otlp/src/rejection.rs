//! Rejected points and OTLP's partial success: which points were refused, and why.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsPartialSuccess;
use thermostat_metrics::validate::quote;

use crate::limits::MAX_ERROR_MESSAGE_BYTES;

/// Why a point was rejected, in a few stable words (a telemetry label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The series identity breaks a naming rule: namespace, metric name, a dimension's name or
    /// value, or more than 30 dimensions.
    Identity,
    /// No `time_unix_nano`, or one outside the window native pushes accept.
    Timestamp,
    /// A value CloudWatch cannot hold: NaN, an infinity, beyond ±2^360, too many samples.
    Value,
    /// The point contradicts itself or OTLP's rules: no value, buckets that do not add up to
    /// the count, bounds not increasing, an unknown temporality, a scale out of range.
    Malformed,
    /// The point would start a new cumulative stream beyond `max_streams`.
    StreamLimit,
}

impl RejectReason {
    /// `identity`, `timestamp`, `value`, `malformed` or `stream_limit`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectReason::Identity => "identity",
            RejectReason::Timestamp => "timestamp",
            RejectReason::Value => "value",
            RejectReason::Malformed => "malformed",
            RejectReason::StreamLimit => "stream_limit",
        }
    }
}

/// One rejected data point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The OTLP metric's name.
    pub metric: String,
    /// The point's index in the metric's `data_points`.
    pub point: usize,
    /// The rule broken, with the field, e.g. `value: must be a number (got NaN)`.
    pub rule: String,
    /// The rule's kind, for telemetry.
    pub reason: RejectReason,
}

/// OTLP's partial success for a request whose points in `rejected` were refused (the others
/// kept): `rejected_data_points` counts them and `error_message` names the metric, the point
/// and the rule of as many as fit in [`MAX_ERROR_MESSAGE_BYTES`], then how many more there
/// are. `None` when nothing was rejected: the specification asks the server to leave
/// `partial_success` unset then.
pub fn partial_success(rejected: &[Rejection]) -> Option<ExportMetricsPartialSuccess> {
    if rejected.is_empty() {
        return None;
    }
    let n = rejected.len();
    let mut message = format!(
        "{n} data point{} rejected: ",
        if n == 1 { " was" } else { "s were" }
    );
    let mut shown = 0;
    for r in rejected {
        let entry = format!(
            "{}metric {} point {}: {}",
            if shown > 0 { "; " } else { "" },
            quote(&r.metric),
            r.point,
            r.rule
        );
        // Room for this entry and for the "; and N more" tail.
        if message.len() + entry.len() + 32 > MAX_ERROR_MESSAGE_BYTES {
            break;
        }
        message.push_str(&entry);
        shown += 1;
    }
    if shown == 0 {
        // One rule alone longer than the bound: cut it at a character boundary.
        let entry = format!(
            "metric {} point {}: {}",
            quote(&rejected[0].metric),
            rejected[0].point,
            rejected[0].rule
        );
        let mut end = (MAX_ERROR_MESSAGE_BYTES - 32).saturating_sub(message.len());
        while !entry.is_char_boundary(end.min(entry.len())) {
            end -= 1;
        }
        message.push_str(&entry[..end.min(entry.len())]);
        message.push('…');
        shown = 1;
    }
    if shown < n {
        message.push_str(&format!("; and {} more", n - shown));
    }
    Some(ExportMetricsPartialSuccess {
        rejected_data_points: i64::try_from(n).unwrap_or(i64::MAX),
        error_message: message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(metric: &str, point: usize, rule: &str) -> Rejection {
        Rejection {
            metric: metric.into(),
            point,
            rule: rule.into(),
            reason: RejectReason::Value,
        }
    }

    #[test]
    fn nothing_rejected_is_no_partial_success() {
        assert_eq!(partial_success(&[]), None);
    }

    #[test]
    fn the_message_names_metric_point_and_rule() {
        let p =
            partial_success(&[rejection("cpu", 2, "value: must be a number (got NaN)")]).unwrap();
        assert_eq!(p.rejected_data_points, 1);
        assert_eq!(
            p.error_message,
            "1 data point was rejected: metric \"cpu\" point 2: value: must be a number (got NaN)"
        );
    }

    #[test]
    fn the_message_is_bounded_and_counts_the_rest() {
        let many: Vec<Rejection> = (0..10_000)
            .map(|i| rejection(&"m".repeat(500), i, &"r".repeat(100)))
            .collect();
        let p = partial_success(&many).unwrap();
        assert_eq!(p.rejected_data_points, 10_000);
        assert!(
            p.error_message.len() <= MAX_ERROR_MESSAGE_BYTES,
            "{}",
            p.error_message.len()
        );
        assert!(p.error_message.contains("more"), "{}", p.error_message);
        let huge = [rejection("x", 0, &"é".repeat(10_000))];
        let p = partial_success(&huge).unwrap();
        assert!(p.error_message.len() <= MAX_ERROR_MESSAGE_BYTES);
    }
}
