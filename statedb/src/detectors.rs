//! Anomaly detectors put through CloudWatch's API (`PutAnomalyDetector`): the training
//! configuration of one metric and statistic, under `anomaly_detector:<key>` (the detector's
//! JSON; rows added without a format change, as the alarm rows are).

use serde::{Deserialize, Serialize};
use thermostat_alarms::anomaly::AnomalyConfig;

use crate::db::{AlarmWrite, StateDb};
use crate::error::Result;

/// The key prefix of anomaly detectors.
pub const ANOMALY_DETECTOR_PREFIX: &str = "anomaly_detector:";

/// An anomaly detector: a metric, a statistic and the configuration its models train with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDetector {
    /// The metric's namespace.
    pub namespace: String,
    /// The metric's name.
    pub metric_name: String,
    /// Its dimensions, `(name, value)`, sorted by name.
    pub dimensions: Vec<(String, String)>,
    /// The statistic, as spelled.
    pub stat: String,
    /// `ExcludedTimeRanges` and `MetricTimezone`.
    pub config: AnomalyConfig,
}

impl StoredDetector {
    /// The detector's key: the same metric and statistic have the same key.
    pub fn key(&self) -> String {
        let mut dims = self.dimensions.clone();
        dims.sort();
        serde_json::to_string(&(&self.namespace, &self.metric_name, dims, &self.stat))
            .unwrap_or_default()
    }
}

impl StateDb {
    /// Every stored anomaly detector, by key.
    ///
    /// # Errors
    /// A read failure, or a row that does not decode.
    pub fn anomaly_detectors(&self) -> Result<Vec<StoredDetector>> {
        Ok(self
            .load_states_under::<StoredDetector>(ANOMALY_DETECTOR_PREFIX)?
            .into_iter()
            .map(|(_, d)| d)
            .collect())
    }

    /// Writes `detector` (replacing the one of the same metric and statistic), durably.
    ///
    /// # Errors
    /// A write failure; nothing is stored then.
    pub fn put_anomaly_detector(&self, detector: &StoredDetector) -> Result<()> {
        let key = format!("{ANOMALY_DETECTOR_PREFIX}{}", detector.key());
        let write: AlarmWrite<'_, StoredDetector, ()> = AlarmWrite {
            name: &key,
            state: Some(detector),
            history: &[],
        };
        self.commit_and_forget(&[write], &[])
    }

    /// Removes the detector with `key`; whether there was one.
    ///
    /// # Errors
    /// A read or write failure.
    pub fn delete_anomaly_detector(&self, key: &str) -> Result<bool> {
        let there = self.anomaly_detectors()?.iter().any(|d| d.key() == key);
        if there {
            let none: &[AlarmWrite<'_, StoredDetector, ()>] = &[];
            self.commit_and_forget(none, &[format!("{ANOMALY_DETECTOR_PREFIX}{key}")])?;
        }
        Ok(there)
    }
}

#[cfg(test)]
mod tests {
    use thermostat_metrics::Timestamp;

    use super::*;

    #[test]
    fn detectors_round_trip_replace_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        let mut d = StoredDetector {
            namespace: "Shop".into(),
            metric_name: "Orders".into(),
            dimensions: vec![("Region".into(), "eu".into())],
            stat: "Sum".into(),
            config: AnomalyConfig::default(),
        };
        db.put_anomaly_detector(&d).unwrap();
        d.config.time_zone = Some("Europe/Berlin".into());
        d.config.excluded = vec![(Timestamp(0), Timestamp(60_000))];
        db.put_anomaly_detector(&d).unwrap();
        assert_eq!(db.anomaly_detectors().unwrap(), [d.clone()], "replaced");
        assert!(db.delete_anomaly_detector(&d.key()).unwrap());
        assert!(!db.delete_anomaly_detector(&d.key()).unwrap());
        assert!(db.anomaly_detectors().unwrap().is_empty());
    }
}
