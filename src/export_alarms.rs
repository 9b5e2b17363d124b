//! `thermostat export-alarms`: the alarms created through the CloudWatch API (kept in the
//! data directory's state database) written as one alarm file, in the format `thermostat
//! check` and `--config` read (`alarms:` / `composite_alarms:`), so that they can move into
//! git.
//!
//! Each field is written only when it differs from the file format's default, and every
//! text as a double-quoted scalar, so reading the output back gives the same definitions.

use std::fmt::Write as _;
use std::path::Path;

use thermostat_alarms::model::{Actions, Alarm, CompositeAlarm, LowSampleCount, TreatMissingData};
use thermostat_alarms::validate::default_evaluation_range;
use thermostat_alarms_runtime::AlarmStore as _;

/// A JSON string, which YAML reads as the same double-quoted scalar.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// The action lists, `actions_enabled` and `repeat_interval_seconds` of an entry.
fn actions(y: &mut String, a: &Actions) {
    if !a.enabled {
        y.push_str("    actions_enabled: false\n");
    }
    for (key, list) in [
        ("alarm_actions", &a.alarm),
        ("ok_actions", &a.ok),
        ("insufficient_data_actions", &a.insufficient_data),
    ] {
        if !list.is_empty() {
            let _ = writeln!(y, "    {key}:");
            for action in list {
                let _ = writeln!(y, "      - {}", quoted(&action.as_config_str()));
            }
        }
    }
}

/// One `alarms:` entry.
fn alarm_entry(y: &mut String, a: &Alarm) {
    let _ = writeln!(y, "  - name: {}", quoted(&a.name));
    let mut field = |key: &str, value: String| {
        let _ = writeln!(y, "    {key}: {value}");
    };
    if !a.description.is_empty() {
        field("description", quoted(&a.description));
    }
    let math = a.is_math();
    if !math {
        field("namespace", quoted(&a.namespace));
        field("metric_name", quoted(&a.metric_name));
        field("statistic", quoted(a.statistic.name()));
        field("period_seconds", a.period.as_secs().to_string());
    }
    field("evaluation_periods", a.evaluation_periods.to_string());
    if let Some(m) = a.datapoints_to_alarm {
        field("datapoints_to_alarm", m.to_string());
    }
    if a.evaluation_range != default_evaluation_range(a.evaluation_periods) {
        field("evaluation_range", a.evaluation_range.to_string());
    }
    // `Display` of f64 is the shortest text that reads back as the same value.
    if a.threshold_metric_id.is_none() {
        field("threshold", a.threshold.to_string());
    }
    if let Some(t) = a.ok_threshold {
        field("ok_threshold", t.to_string());
    }
    field(
        "comparison_operator",
        quoted(a.comparison_operator.as_str()),
    );
    if a.treat_missing_data != TreatMissingData::Missing {
        field("treat_missing_data", quoted(a.treat_missing_data.as_str()));
    }
    if a.evaluate_low_sample_count_percentile != LowSampleCount::Evaluate {
        field(
            "evaluate_low_sample_count_percentile",
            quoted(a.evaluate_low_sample_count_percentile.as_str()),
        );
    }
    if a.evaluation_delay_seconds != 0 {
        field(
            "evaluation_delay_seconds",
            a.evaluation_delay_seconds.to_string(),
        );
    }
    if let Some(r) = a.actions.repeat_interval_seconds {
        field("repeat_interval_seconds", r.to_string());
    }
    if let Some(u) = a.unit.filter(|_| !math) {
        field("unit", quoted(u.as_str()));
    }
    if let Some(t) = &a.threshold_metric_id {
        field("threshold_metric_id", quoted(t));
    }
    if !a.dimensions.is_empty() && !math {
        y.push_str("    dimensions:\n");
        for d in &a.dimensions {
            let _ = writeln!(y, "      {}: {}", quoted(&d.name), quoted(&d.value));
        }
    }
    if math {
        y.push_str("    metrics:\n");
        for m in &a.metrics {
            metric_entry(y, m);
        }
    }
    if let Some(config) = &a.anomaly {
        y.push_str("    anomaly_detection:\n");
        if let Some(tz) = &config.time_zone {
            let _ = writeln!(y, "      metric_timezone: {}", quoted(tz));
        }
        if !config.excluded.is_empty() {
            y.push_str("      excluded_time_ranges:\n");
            for (start, end) in &config.excluded {
                let _ = writeln!(
                    y,
                    "        - {{start: {}, end: {}}}",
                    quoted(&rfc3339(*start)),
                    quoted(&rfc3339(*end))
                );
            }
        }
    }
    actions(y, &a.actions);
}

fn rfc3339(t: thermostat_metrics::Timestamp) -> String {
    jiff::Timestamp::from_millisecond(t.as_millis())
        .map_or_else(|_| t.as_millis().to_string(), |j| j.to_string())
}

/// One entry of a math alarm's `metrics:`.
fn metric_entry(y: &mut String, m: &thermostat_alarms::model::AlarmMetric) {
    let _ = writeln!(y, "      - id: {}", quoted(&m.id));
    if let Some(stat) = &m.metric_stat {
        y.push_str("        metric_stat:\n");
        let _ = writeln!(y, "          namespace: {}", quoted(&stat.namespace));
        let _ = writeln!(y, "          metric_name: {}", quoted(&stat.metric_name));
        let _ = writeln!(y, "          period_seconds: {}", stat.period.as_secs());
        let _ = writeln!(y, "          statistic: {}", quoted(stat.statistic.name()));
        if let Some(u) = stat.unit {
            let _ = writeln!(y, "          unit: {}", quoted(u.as_str()));
        }
        if !stat.dimensions.is_empty() {
            y.push_str("          dimensions:\n");
            for d in &stat.dimensions {
                let _ = writeln!(y, "            {}: {}", quoted(&d.name), quoted(&d.value));
            }
        }
    }
    if let Some(e) = &m.expression {
        let _ = writeln!(y, "        expression: {}", quoted(e));
    }
    if let Some(l) = &m.label {
        let _ = writeln!(y, "        label: {}", quoted(l));
    }
    let _ = writeln!(y, "        return_data: {}", m.return_data);
}

/// One `composite_alarms:` entry.
fn composite_entry(y: &mut String, c: &CompositeAlarm) {
    let _ = writeln!(y, "  - name: {}", quoted(&c.name));
    if !c.description.is_empty() {
        let _ = writeln!(y, "    description: {}", quoted(&c.description));
    }
    let _ = writeln!(y, "    alarm_rule: {}", quoted(&c.rule_text));
    if let Some(s) = &c.suppressor {
        let _ = writeln!(
            y,
            "    actions_suppressor:\n      alarm: {}\n      wait_period_seconds: {}\n      extension_period_seconds: {}",
            quoted(&s.alarm),
            s.wait_period_seconds,
            s.extension_period_seconds
        );
    }
    if let Some(r) = c.actions.repeat_interval_seconds {
        let _ = writeln!(y, "    repeat_interval_seconds: {r}");
    }
    actions(y, &c.actions);
}

/// The alarm file of `alarms` and `composites` (each sorted by name). A composite that refers
/// to an alarm outside the export (one of the configuration files') is preceded by a comment
/// saying so: check the export together with those files.
pub fn render(alarms: &[Alarm], composites: &[CompositeAlarm]) -> String {
    let mut y = String::from(
        "# Alarms created through the CloudWatch API, exported by `thermostat export-alarms`.\n",
    );
    if alarms.is_empty() && composites.is_empty() {
        y.push_str("# There were none.\n");
    }
    if !alarms.is_empty() {
        y.push_str("alarms:\n");
        for a in alarms {
            alarm_entry(&mut y, a);
        }
    }
    if !composites.is_empty() {
        let exported =
            |n: &str| alarms.iter().any(|a| a.name == n) || composites.iter().any(|c| c.name == n);
        y.push_str("composite_alarms:\n");
        for c in composites {
            let mut outside: Vec<&str> = c
                .rule
                .references()
                .into_iter()
                .chain(c.suppressor.as_ref().map(|s| s.alarm.as_str()))
                .filter(|n| !exported(n))
                .collect();
            outside.sort_unstable();
            outside.dedup();
            if !outside.is_empty() {
                let _ = writeln!(
                    y,
                    "  # Refers to alarms of the configuration files: {}",
                    outside.join(", ")
                );
            }
            composite_entry(&mut y, c);
        }
    }
    y
}

/// The export of the data directory `data_dir`: its state database opened through the
/// state database's API (no server may be using it).
///
/// # Errors
/// The directory has no state database, a server is using it, or it cannot be read.
pub fn export(data_dir: &Path) -> anyhow::Result<String> {
    let file = data_dir.join(thermostat_statedb::FILE_NAME);
    if !file.is_file() {
        anyhow::bail!(
            "{} is not a data directory: it has no {}",
            data_dir.display(),
            thermostat_statedb::FILE_NAME
        );
    }
    if let Some(http) = thermostat_backup::running_server(data_dir) {
        anyhow::bail!(
            "the server at {http} is using {}: stop it first (the API alarms are read from its \
             state database), or list them with DescribeAlarms",
            data_dir.display()
        );
    }
    let db = thermostat_statedb::StateDb::open(data_dir)?;
    let mut alarms = db.load_api_alarms()?;
    let mut composites = db.load_api_composites()?;
    alarms.sort_by(|a, b| a.name.cmp(&b.name));
    composites.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(render(&alarms, &composites))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use thermostat_alarms_runtime::AlarmStore as _;

    use super::*;

    const YAML: &str = r#"alarms:
  - name: "api latency: high"
    description: "p99 of the \"API\", in ms\nsecond line"
    namespace: Shop
    metric_name: Latency
    statistic: p99
    period_seconds: 10
    evaluation_periods: 3
    datapoints_to_alarm: 2
    evaluation_range: 10
    threshold: 0.1
    ok_threshold: 0.05
    comparison_operator: GreaterThanThreshold
    treat_missing_data: ignore
    evaluate_low_sample_count_percentile: ignore
    evaluation_delay_seconds: 30
    repeat_interval_seconds: 600
    unit: Milliseconds
    actions_enabled: false
    dimensions: {Service: api, Region: "eu west"}
    alarm_actions: [arn:aws:sns:us-east-1:000000000000:ops, "mailto:ops@example.com"]
    ok_actions: [https://hooks.example.com/x]
  - {name: plain, namespace: App, metric_name: Cpu, statistic: Maximum, period_seconds: 60, evaluation_periods: 1, threshold: -1e300, comparison_operator: LessThanThreshold}
  - name: error rate
    evaluation_periods: 2
    threshold: 5
    comparison_operator: GreaterThanThreshold
    metrics:
      - id: errors
        metric_stat: {namespace: Shop, metric_name: Errors, period_seconds: 60, statistic: Sum, unit: Count, dimensions: {Host: "*"}}
        return_data: false
      - id: requests
        metric_stat: {namespace: Shop, metric_name: Requests, period_seconds: 60, statistic: Sum, dimensions: {Host: "*"}}
        return_data: false
      - {id: rate, expression: "errors / requests * 100", label: "Error \"rate\"", return_data: true}
  - name: traffic unusual
    evaluation_periods: 3
    comparison_operator: LessThanLowerOrGreaterThanUpperThreshold
    threshold_metric_id: band
    metrics:
      - id: m1
        metric_stat: {namespace: Shop, metric_name: Requests, period_seconds: 300, statistic: Sum}
        return_data: true
      - {id: band, expression: "ANOMALY_DETECTION_BAND(m1, 3)", return_data: true}
    anomaly_detection:
      metric_timezone: Europe/Berlin
      excluded_time_ranges: [{start: "2026-11-01T00:00:00Z", end: "2026-11-02T00:00:00Z"}]
composite_alarms:
  - name: both
    description: both of them
    alarm_rule: 'ALARM("api latency: high") AND NOT OK(plain)'
    actions_suppressor: {alarm: plain, wait_period_seconds: 60, extension_period_seconds: 120}
    insufficient_data_actions: [arn:aws:sns:us-east-1:000000000000:ops]
"#;

    #[test]
    fn the_api_alarms_of_a_state_database_read_back_as_the_same_definitions() {
        let set = thermostat_alarms::validate(&[("PutMetricAlarm", YAML)]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        {
            let db = thermostat_statedb::StateDb::open(dir.path()).unwrap();
            for a in &set.alarms {
                db.commit_api_alarm(&a.name, Some(a), &[]).unwrap();
            }
            for c in &set.composites {
                db.commit_api_composite(&c.name, Some(c)).unwrap();
            }
        }
        let text = export(dir.path()).unwrap();
        let back = thermostat_alarms::validate(&[("exported.yaml", text.as_str())])
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back.alarms.len(), 4, "{text}");
        for a in &set.alarms {
            let b = back.alarm(&a.name).unwrap();
            assert!(b.same_definition(a), "{a:#?}\n{b:#?}\n{text}");
        }
        let c = back.composite("both").unwrap();
        assert!(c.same_definition(&set.composites[0]), "{c:#?}\n{text}");
        assert!(
            !text.contains("Refers to alarms"),
            "all references are in the export"
        );
    }

    #[test]
    fn a_composite_over_a_files_alarm_says_so_and_an_empty_database_exports_nothing() {
        let set = thermostat_alarms::validate(&[("PutMetricAlarm", YAML)]).unwrap();
        let text = render(&[], &set.composites);
        assert!(
            text.contains(
                "# Refers to alarms of the configuration files: api latency: high, plain"
            ),
            "{text}"
        );
        let dir = tempfile::tempdir().unwrap();
        drop(thermostat_statedb::StateDb::open(dir.path()).unwrap());
        let empty = export(dir.path()).unwrap();
        assert!(empty.contains("There were none"), "{empty}");
        thermostat_alarms::validate(&[("e.yaml", empty.as_str())]).unwrap();
        let missing = export(&dir.path().join("nowhere")).unwrap_err();
        assert!(
            missing.to_string().contains("is not a data directory"),
            "{missing}"
        );
        assert!(!dir.path().join("nowhere").exists(), "nothing is created");
    }
}
