//! CloudWatch's `SetAlarmState`: its rules, and the state change through the runtime's one
//! persist-and-act path.

use serde_json::Value;
use thermostat_alarms::engine::TickOutput;
use thermostat_alarms::history::AlarmType;
use thermostat_alarms::{HistoryItem, StateValue};

use super::{AlarmRuntime, Evaluated};
use crate::error::{Error, Result};

/// `SetAlarmState`'s `StateReason` at most, in characters (CloudWatch's limit).
pub const MAX_STATE_REASON_CHARS: usize = 1023;
/// `SetAlarmState`'s `StateReasonData` at most, in characters of JSON (CloudWatch's limit).
pub const MAX_STATE_REASON_DATA_CHARS: usize = 4000;

impl AlarmRuntime {
    /// CloudWatch's `SetAlarmState`: sets the state of an alarm, per-series instance or
    /// composite alarm until its next evaluation, and runs the new state's actions if the
    /// value changed. `value` is `OK`, `ALARM` or `INSUFFICIENT_DATA`; `reason` 1 to
    /// [`MAX_STATE_REASON_CHARS`] characters; `reason_data`, if any, JSON of at most
    /// [`MAX_STATE_REASON_DATA_CHARS`] characters, given as the value itself or as a string
    /// holding it (stored parsed).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the first field that breaks a rule (in the order above),
    /// [`Error::NotFound`], or a failed write ([`Error::Store`]; nothing is acted on then).
    pub fn set_state(
        &self,
        name: &str,
        value: &str,
        reason: &str,
        reason_data: Option<Value>,
    ) -> Result<()> {
        let value: StateValue = value.parse().map_err(|message| Error::Invalid {
            field: "state_value",
            message,
        })?;
        let reason_chars = reason.chars().count();
        if reason.is_empty() || reason_chars > MAX_STATE_REASON_CHARS {
            return Err(Error::Invalid {
                field: "state_reason",
                message: format!(
                    "must be 1 to {MAX_STATE_REASON_CHARS} characters (got {reason_chars})"
                ),
            });
        }
        let reason_data = reason_data.map(check_reason_data).transpose()?;
        let now = self.clock.now();
        let mut guard = self.lock();
        let Evaluated { set, state, .. } = &mut *guard;
        let not_found = || Error::NotFound(name.to_owned());
        let (evaluation, kind, old) = if let Some(i) = state.metric.get_mut(name) {
            let a = set.alarm(&i.alarm).ok_or_else(not_found)?;
            let e =
                thermostat_alarms::set_state(&a.actions, &i.state, value, reason, reason_data, now);
            let old = std::mem::replace(&mut i.state, e.state.clone());
            (e, AlarmType::MetricAlarm, old)
        } else if let Some(c) = state.composites.get_mut(name) {
            let def = set.composite(name).ok_or_else(not_found)?;
            let e = thermostat_alarms::set_state(
                &def.actions,
                &c.alarm,
                value,
                reason,
                reason_data,
                now,
            );
            let old = std::mem::replace(&mut c.alarm, e.state.clone());
            (e, AlarmType::CompositeAlarm, old)
        } else {
            return Err(not_found());
        };
        let out = TickOutput {
            evaluations: 0,
            history: evaluation
                .transitions
                .iter()
                .map(|t| HistoryItem::state_update(name, kind, &old, t))
                .collect(),
            transitions: evaluation
                .transitions
                .into_iter()
                .map(|t| (name.to_owned(), t))
                .collect(),
            actions: evaluation
                .actions
                .into_iter()
                .map(|a| (name.to_owned(), a))
                .collect(),
            unavailable: Vec::new(),
        };
        self.persist_and_act(&guard, &out, &[name.to_owned()], now)
    }
}

/// `SetAlarmState`'s `StateReasonData`: JSON of at most [`MAX_STATE_REASON_DATA_CHARS`]
/// characters. CloudWatch takes it as a string holding JSON; the HTTP API also takes the JSON
/// value itself. A string must hold JSON (CloudWatch's `InvalidFormat`), and the value is
/// stored parsed.
fn check_reason_data(data: Value) -> Result<Value> {
    let invalid = |message: String| Error::Invalid {
        field: "state_reason_data",
        message,
    };
    let (chars, value) = match data {
        Value::String(text) => {
            let chars = text.chars().count();
            if chars > MAX_STATE_REASON_DATA_CHARS {
                (chars, Value::Null)
            } else {
                let value = serde_json::from_str(&text).map_err(|e| {
                    invalid(format!(
                        "must be JSON, as CloudWatch requires (line {}, column {}: {})",
                        e.line(),
                        e.column(),
                        match e.classify() {
                            serde_json::error::Category::Eof => "the text ends too early",
                            _ => "not JSON there",
                        }
                    ))
                })?;
                (chars, value)
            }
        }
        value => (value.to_string().chars().count(), value),
    };
    if chars > MAX_STATE_REASON_DATA_CHARS {
        return Err(invalid(format!(
            "must be at most {MAX_STATE_REASON_DATA_CHARS} characters of JSON (got {chars})"
        )));
    }
    Ok(value)
}
