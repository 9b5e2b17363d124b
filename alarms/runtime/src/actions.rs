//! The action port: where the actions alarms invoke go ([`ActionSink`]).

use thermostat_alarms::{ActionDue, AlarmSet};
use thermostat_metrics::Timestamp;

/// Where actions go once alarms act: notifications and scaling.
pub trait ActionSink: Send + Sync + std::fmt::Debug {
    /// Called after every tick and every `SetAlarmState` with the actions due (possibly
    /// none: scheduled scaling actions run on every call), under the runtime's lock, so it
    /// must queue work, not do it. `alarms` is the set the runtime evaluated (the managed
    /// target-tracking alarms included).
    fn act(&self, alarms: &AlarmSet, due: &[ActionDue], now: Timestamp);
}

/// An action sink that only logs (tests and tools without back-ends).
#[derive(Debug, Default)]
pub struct LogActions;

impl ActionSink for LogActions {
    fn act(&self, _: &AlarmSet, due: &[ActionDue], _: Timestamp) {
        for d in due {
            let action = &d.invocation;
            tracing::info!(alarm = %d.name, action = %action.action.as_config_str(), state = %action.state, repeat = action.repeat, "Alarm action due.");
        }
    }
}
