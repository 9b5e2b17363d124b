//! Back-tests: replay an [`AlarmSet`] over recorded data, evaluating at every tick of a
//! range, plus the CSV input format and the text/JSON renderings of `thermostat backtest`.
//!
//! CSV: header `timestamp,namespace,metric_name,dimensions,value`; `timestamp` is RFC 3339,
//! Unix seconds or Unix milliseconds ([`CsvTime`]: numbers are told apart by magnitude unless
//! the unit is given, a file mixing both is refused, and a time before 2000 or more than a
//! year after `now` is an error naming its line); `dimensions` is `Name=Value;Name2=Value2`
//! (may be empty); fields may be double-quoted (`""` inside quotes is a quote).

use serde::Serialize;
use thermostat_metrics::time::{DAY_MS, TimeError};
use thermostat_metrics::{
    Dimension, Observation, Resolution, Sample, SeriesKey, Store, Timestamp, Unit,
};

use crate::engine::EngineState;
use crate::error::{Error, Result};
use crate::model::{Alarm, AlarmSet, StateValue};
use crate::state::{ActionInvocation, ReasonData, Transition};
use crate::timefmt;

pub mod compare;
pub use compare::{BacktestDiff, compare, render_diff_json, render_diff_text};

/// One CSV row.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvRow {
    /// 1-based line.
    pub line: usize,
    /// When.
    pub timestamp: Timestamp,
    /// The series.
    pub key: SeriesKey,
    /// The observation.
    pub value: f64,
}

/// The CSV header.
pub const CSV_HEADER: &str = "timestamp,namespace,metric_name,dimensions,value";

fn split_csv(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) if cur.is_empty() => quoted = true,
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    if quoted {
        return None;
    }
    out.push(cur);
    Some(out)
}

/// Limits of a back-test CSV (`thermostat backtest` / `simulate --data`), so that no file
/// can make a replay run out of memory: [`load_csv`] reads a line at a time and refuses the
/// file at the first line beyond a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CsvLimits {
    /// Longest line, in bytes (its end of line included).
    pub max_line_bytes: usize,
    /// Data rows at most.
    pub max_rows: usize,
    /// Distinct series at most.
    pub max_series: usize,
    /// Malformed lines reported before the file is given up on.
    pub max_errors: usize,
}

/// Longest back-test CSV line: 64 KiB, room for CloudWatch's largest identity (30 dimensions
/// of 255-character names and 1,024-character values) quoted.
pub const MAX_CSV_LINE_BYTES: usize = 64 * 1024;
/// Most data rows of a back-test CSV: 2,000,000 (a year of one row a minute for three
/// series and more). A row held costs from next to nothing (rows sharing a minute of a
/// series share its window) to about 170 bytes (every row in a minute of its own), so the
/// rows of a file take at most about 350 MB.
pub const MAX_CSV_ROWS: usize = 2_000_000;
/// Most distinct series in a back-test CSV.
pub const MAX_CSV_SERIES: usize = 10_000;
/// Malformed lines reported at most.
pub const MAX_CSV_ERRORS: usize = 100;

impl Default for CsvLimits {
    fn default() -> Self {
        CsvLimits {
            max_line_bytes: MAX_CSV_LINE_BYTES,
            max_rows: MAX_CSV_ROWS,
            max_series: MAX_CSV_SERIES,
            max_errors: MAX_CSV_ERRORS,
        }
    }
}

/// The unit of numeric timestamps in a back-test CSV (`--time-unit s|ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeUnit {
    /// Unix seconds.
    Seconds,
    /// Unix milliseconds.
    Milliseconds,
}

impl TimeUnit {
    /// Milliseconds in one unit.
    pub const fn millis(self) -> i64 {
        match self {
            TimeUnit::Seconds => 1000,
            TimeUnit::Milliseconds => 1,
        }
    }

    /// `Unix seconds` or `Unix milliseconds`.
    pub const fn describe(self) -> &'static str {
        match self {
            TimeUnit::Seconds => "Unix seconds",
            TimeUnit::Milliseconds => "Unix milliseconds",
        }
    }

    /// The unit of a number read without `--time-unit`: seconds below
    /// [`SECONDS_BELOW`] in magnitude, milliseconds from there on.
    pub const fn by_magnitude(n: i64) -> TimeUnit {
        if n.unsigned_abs() < SECONDS_BELOW.unsigned_abs() {
            TimeUnit::Seconds
        } else {
            TimeUnit::Milliseconds
        }
    }
}

/// Numbers below this magnitude are Unix seconds, larger ones Unix milliseconds (when no
/// unit is given): 10^11 seconds is the year 5138, 10^11 milliseconds is 1973-03-03, so
/// every plausible time of either unit falls on its side.
pub const SECONDS_BELOW: i64 = 100_000_000_000;
/// The earliest plausible row time: 2000-01-01T00:00:00Z.
pub const EARLIEST_PLAUSIBLE: Timestamp = Timestamp(946_684_800_000);
/// How far after `now` a row time is still plausible: 366 days.
pub const PLAUSIBLE_AHEAD_MS: i64 = 366 * DAY_MS;

/// How the timestamps of a back-test CSV are read, and which are accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CsvTime {
    /// The unit of every numeric timestamp (`--time-unit`); `None` tells seconds from
    /// milliseconds by magnitude ([`TimeUnit::by_magnitude`]) and refuses a file whose
    /// numeric timestamps are not all of one unit.
    pub unit: Option<TimeUnit>,
    /// The earliest timestamp accepted.
    pub earliest: Timestamp,
    /// The latest timestamp accepted.
    pub latest: Timestamp,
}

impl CsvTime {
    /// What `thermostat backtest` and `simulate` accept: numbers in `unit` (by magnitude when
    /// `None`), times from [`EARLIEST_PLAUSIBLE`] to [`PLAUSIBLE_AHEAD_MS`] after `now` (the
    /// binary passes the wall clock): a time outside is a misread unit or a typo, never
    /// replayed as 1970.
    pub fn plausible(unit: Option<TimeUnit>, now: Timestamp) -> Self {
        CsvTime {
            unit,
            earliest: EARLIEST_PLAUSIBLE,
            latest: Timestamp(now.as_millis().saturating_add(PLAUSIBLE_AHEAD_MS))
                .min(Timestamp::LATEST),
        }
    }

    /// Milliseconds, any time from year 0000 to 9999: for data generated in code (tests,
    /// [`parse_csv`]).
    pub const fn milliseconds() -> Self {
        CsvTime {
            unit: Some(TimeUnit::Milliseconds),
            earliest: Timestamp::EARLIEST,
            latest: Timestamp::LATEST,
        }
    }
}

/// The unit of the first numeric timestamp of a file, and its line.
type FirstUnit = Option<(TimeUnit, usize)>;

/// Reads one timestamp field under `time`; `first` remembers the first numeric one's unit.
fn parse_timestamp(
    text: &str,
    line: usize,
    time: &CsvTime,
    first: &mut FirstUnit,
) -> std::result::Result<Timestamp, String> {
    use thermostat_metrics::validate::quote;
    let t = text.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    let numeric = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    let mut read_as = None;
    if numeric {
        // A number beyond i64 is out of range whatever its unit: parse_time_checked says so.
        let unit = match (time.unit, t.parse::<i64>()) {
            (Some(u), _) => u,
            (None, Ok(n)) => TimeUnit::by_magnitude(n),
            (None, Err(_)) => TimeUnit::Milliseconds,
        };
        if time.unit.is_none() {
            match *first {
                None => *first = Some((unit, line)),
                Some((u, at)) if u != unit => {
                    return Err(format!(
                        "reads as {} ({}) but line {at} holds {}: a file must use one unit \
                         (numbers below 10^11 are seconds, larger ones milliseconds; give \
                         --time-unit s or ms to choose)",
                        unit.describe(),
                        quote(t),
                        u.describe()
                    ));
                }
                Some(_) => {}
            }
        }
        read_as = Some(unit);
    }
    let ts =
        timefmt::parse_time_checked(t, read_as.map_or(1, TimeUnit::millis)).map_err(
            |e| match e {
                TimeError::OutOfRange => match (time.unit, read_as) {
                    (Some(_), Some(u)) => {
                        format!("{e} (got {}, read as {})", quote(t), u.describe())
                    }
                    _ => format!("{e} (got {})", quote(t)),
                },
                _ => format!(
                    "must be RFC 3339, Unix seconds or Unix milliseconds (got {})",
                    quote(t)
                ),
            },
        )?;
    if ts < time.earliest || ts > time.latest {
        let (how, hint) = read_as.map_or_else(Default::default, |u| {
            (
                format!(", read as {}: {}", u.describe(), timefmt::rfc3339(ts)),
                "; check the unit (--time-unit s or ms)",
            )
        });
        return Err(format!(
            "is not a plausible time: must be between {} and {} (a year from now) (got \
             {}{how}){hint}",
            timefmt::rfc3339(time.earliest),
            timefmt::rfc3339(time.latest),
            quote(t)
        ));
    }
    Ok(ts)
}

/// Reads the lines of a CSV source, each at most `max` bytes, without ever holding more
/// than that of a line: `/dev/zero` is an error at line 1, not an exhausted memory.
struct Lines<R> {
    reader: R,
    max: usize,
    buf: Vec<u8>,
    line: usize,
}

impl<R: std::io::BufRead> Lines<R> {
    /// The next line (without its end of line) and its number, `None` at the end.
    fn next_line(&mut self) -> Option<std::result::Result<(usize, &str), Error>> {
        use std::io::{BufRead as _, Read as _};
        self.buf.clear();
        self.line += 1;
        let line = self.line;
        let limit = u64::try_from(self.max)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        match (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
        {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => {
                return Some(Err(csv_error(line, "line", format!("cannot be read: {e}"))));
            }
        }
        if self.buf.len() > self.max {
            return Some(Err(csv_error(
                line,
                "line",
                format!(
                    "is longer than the limit of {} bytes (a back-test CSV has one row a line)",
                    self.max
                ),
            )));
        }
        let text = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        Some(
            std::str::from_utf8(text)
                .map(|t| (line, t))
                .map_err(|e| csv_error(line, "line", format!("is not UTF-8 text ({e})"))),
        )
    }
}

fn csv_error(line: usize, field: &str, message: String) -> Error {
    Error::Csv {
        line,
        field: field.to_owned(),
        message,
    }
}

/// One data line's fields, checked.
struct Parsed {
    timestamp: Timestamp,
    namespace: String,
    metric_name: String,
    dimensions: Vec<Dimension>,
    value: f64,
}

/// Checks the header line.
fn check_header(line: usize, l: &str) -> std::result::Result<(), Error> {
    let h: Vec<String> = split_csv(l)
        .unwrap_or_default()
        .iter()
        .map(|s| s.trim().to_owned())
        .collect();
    if h.join(",") == CSV_HEADER {
        Ok(())
    } else {
        Err(csv_error(
            line,
            "header",
            format!(
                "must be {CSV_HEADER:?} (got {})",
                thermostat_metrics::validate::quote(l)
            ),
        ))
    }
}

/// Parses and checks one data line; every problem of the line is pushed to `errors`.
fn parse_line(
    line: usize,
    l: &str,
    time: &CsvTime,
    first: &mut FirstUnit,
    errors: &mut Vec<Error>,
) -> Option<Parsed> {
    use thermostat_metrics::validate::{self, quote};
    let err = |field: &str, message: String| csv_error(line, field, message);
    let Some(f) = split_csv(l) else {
        errors.push(err("line", "has an unterminated quoted field".into()));
        return None;
    };
    if f.len() != 5 {
        errors.push(err("line", format!("must have 5 fields (got {})", f.len())));
        return None;
    }
    let before = errors.len();
    let ts = match parse_timestamp(&f[0], line, time, first) {
        Ok(t) => Some(t),
        Err(message) => {
            errors.push(err("timestamp", message));
            None
        }
    };
    if let Err(m) = validate::namespace(&f[1]) {
        errors.push(err("namespace", m));
    }
    if let Err(m) = validate::metric_name(&f[2]) {
        errors.push(err("metric_name", m));
    }
    let mut dims = Vec::new();
    for part in f[3].split(';').filter(|p| !p.trim().is_empty()) {
        match part.split_once('=') {
            Some((n, v)) if !n.trim().is_empty() => {
                let (n, v) = (n.trim(), v.trim());
                if let Err(m) = validate::dimension_name(n).and(validate::dimension_value(v)) {
                    errors.push(err("dimensions", format!("{}: {m}", quote(n))));
                }
                dims.push(Dimension::new(n, v));
            }
            _ => errors.push(err(
                "dimensions",
                format!(
                    "must be Name=Value pairs separated by ';' (got {})",
                    quote(part)
                ),
            )),
        }
    }
    if let Err((_, m)) = validate::dimension_set(dims.iter().map(|d| d.name.as_str())) {
        errors.push(err("dimensions", m));
    }
    let value = match f[4].trim().parse::<f64>() {
        Ok(v) if thermostat_metrics::validate::value(v).is_ok() => Some(v),
        _ => {
            errors.push(err(
                "value",
                format!("must be a finite number (got {})", quote(&f[4])),
            ));
            None
        }
    };
    match (ts, value) {
        (Some(timestamp), Some(value)) if errors.len() == before => Some(Parsed {
            timestamp,
            namespace: f[1].clone(),
            metric_name: f[2].clone(),
            dimensions: dims,
            value,
        }),
        _ => None,
    }
}

/// Reads back-test CSV a line at a time, calling `row` with every well-formed data row.
/// Stops at the first line over `limits.max_line_bytes` (or unreadable), after
/// `limits.max_errors` malformed lines, or when `row` refuses a row.
fn read_csv(
    reader: impl std::io::BufRead,
    limits: &CsvLimits,
    time: &CsvTime,
    mut row: impl FnMut(usize, Parsed) -> std::result::Result<(), Error>,
) -> std::result::Result<(), Vec<Error>> {
    let mut lines = Lines {
        reader,
        max: limits.max_line_bytes,
        buf: Vec::new(),
        line: 0,
    };
    let mut errors = Vec::new();
    let mut header_seen = false;
    let mut first_unit = None;
    while let Some(next) = lines.next_line() {
        let (line, l) = match next {
            Ok(x) => x,
            Err(e) => {
                errors.push(e);
                return Err(errors);
            }
        };
        if l.trim().is_empty() {
            continue;
        }
        if !header_seen {
            header_seen = true;
            if let Err(e) = check_header(line, l) {
                errors.push(e);
                return Err(errors);
            }
            continue;
        }
        if let Some(parsed) = parse_line(line, l, time, &mut first_unit, &mut errors)
            && errors.is_empty()
            && let Err(e) = row(line, parsed)
        {
            errors.push(e);
            return Err(errors);
        }
        if errors.len() >= limits.max_errors.max(1) {
            errors.push(csv_error(
                line,
                "file",
                format!("stopped reading after {} malformed lines", errors.len()),
            ));
            return Err(errors);
        }
    }
    if !header_seen {
        errors.push(csv_error(
            1,
            "header",
            format!("must be {CSV_HEADER:?} (the file is empty)"),
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Parses back-test CSV text whose numeric timestamps are milliseconds, any time from year
/// 0000 to 9999 ([`CsvTime::milliseconds`]): for data generated in code. [`load_csv`]
/// streams a file into a store under the checks of a [`CsvTime`] instead.
///
/// # Errors
/// Every malformed line (up to [`MAX_CSV_ERRORS`]), as [`Error::Csv`] with its line number.
pub fn parse_csv(text: &str) -> Result<Vec<CsvRow>, Vec<Error>> {
    let mut rows = Vec::new();
    let time = CsvTime::milliseconds();
    read_csv(text.as_bytes(), &CsvLimits::default(), &time, |line, p| {
        rows.push(CsvRow {
            line,
            timestamp: p.timestamp,
            key: SeriesKey::new(p.namespace.as_str(), p.metric_name.as_str(), p.dimensions),
            value: p.value,
        });
        Ok(())
    })?;
    Ok(rows)
}

/// Recorded data loaded for a replay by [`load_csv`].
#[derive(Debug)]
pub struct LoadedData {
    /// The rows, as [`store_from`] would hold them.
    pub store: Store,
    /// Data rows read.
    pub rows: usize,
    /// Distinct series.
    pub series: usize,
    /// Data rows of each series.
    pub series_rows: std::collections::HashMap<SeriesKey, usize>,
    /// The earliest row's timestamp (`None` without rows).
    pub first: Option<Timestamp>,
    /// The latest row's timestamp.
    pub last: Option<Timestamp>,
}

/// Observations buffered before they go to the store.
const LOAD_BATCH: usize = 4096;

/// Streams back-test CSV from `reader` into a fresh store, a line at a time, holding one
/// line and a batch of observations besides what the store keeps (each series' identity
/// once, and its rows in their windows). Timestamps are read and checked under `time`.
/// Resolution as in [`store_from`]; a row takes the `unit` of the alarms that watch its
/// metric when they agree on one (the CSV has no unit column), else none.
///
/// # Errors
/// Malformed lines (up to `limits.max_errors`) with their numbers; a line too long or
/// unreadable, or rows or series beyond `limits`, end the reading with that line's error.
pub fn load_csv(
    set: &AlarmSet,
    reader: impl std::io::BufRead,
    limits: &CsvLimits,
    time: &CsvTime,
) -> Result<LoadedData, Vec<Error>> {
    let store = Store::new(4);
    // Every series once, with its resolution, unit and rows: a row of a known series shares
    // its key.
    let mut series: std::collections::HashMap<SeriesKey, (Resolution, Unit, usize)> =
        Default::default();
    let mut batch: Vec<(SeriesKey, Timestamp, f64, Resolution, Unit)> =
        Vec::with_capacity(LOAD_BATCH);
    let flush = |batch: &mut Vec<(SeriesKey, Timestamp, f64, Resolution, Unit)>| {
        let obs: Vec<(SeriesKey, Observation<'_>)> = batch
            .iter()
            .map(|(k, ts, v, resolution, unit)| {
                (
                    k.clone(),
                    Observation {
                        timestamp: *ts,
                        unit: *unit,
                        resolution: *resolution,
                        sample: Sample::Value(*v),
                    },
                )
            })
            .collect();
        store.record_batch(&obs);
        batch.clear();
    };
    let (mut rows, mut first, mut last) = (0usize, None::<Timestamp>, None::<Timestamp>);
    read_csv(reader, limits, time, |line, p| {
        rows += 1;
        if rows > limits.max_rows {
            return Err(csv_error(
                line,
                "line",
                format!(
                    "the file has more than {} data rows, the limit of a replay; replay a shorter range",
                    limits.max_rows
                ),
            ));
        }
        let key = SeriesKey::new(p.namespace.as_str(), p.metric_name.as_str(), p.dimensions);
        let series_count = series.len();
        let (key, resolution, unit) = match series.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut known) => {
                let (resolution, unit, n) = known.get_mut();
                *n += 1;
                let (resolution, unit) = (*resolution, *unit);
                (known.key().clone(), resolution, unit)
            }
            std::collections::hash_map::Entry::Vacant(new) => {
                if series_count >= limits.max_series {
                    return Err(csv_error(
                        line,
                        "line",
                        format!(
                            "the file has more than {} series, the limit of a replay",
                            limits.max_series
                        ),
                    ));
                }
                let key = new.key().clone();
                let (resolution, unit) = (resolution_for(set, &key), unit_for(set, &key));
                new.insert((resolution, unit, 1));
                (key, resolution, unit)
            }
        };
        first = Some(first.map_or(p.timestamp, |f| f.min(p.timestamp)));
        last = Some(last.map_or(p.timestamp, |l| l.max(p.timestamp)));
        batch.push((key, p.timestamp, p.value, resolution, unit));
        if batch.len() >= LOAD_BATCH {
            flush(&mut batch);
        }
        Ok(())
    })?;
    flush(&mut batch);
    Ok(LoadedData {
        store,
        rows,
        series: series.len(),
        series_rows: series.into_iter().map(|(k, (_, _, n))| (k, n)).collect(),
        first,
        last,
    })
}

impl LoadedData {
    /// Sets every metric alarm outcome's [`AlarmOutcome::data_rows`]: the rows of the series
    /// it evaluated.
    pub fn count_rows(&self, result: &mut BacktestResult) {
        for a in &mut result.alarms {
            if let Some(key) = &a.series {
                a.data_rows = Some(self.series_rows.get(key).copied().unwrap_or(0));
            }
        }
    }
}

/// The unit the alarms evaluating the series `key` agree on (`None` when none has a unit
/// or they differ).
fn unit_for(set: &AlarmSet, key: &SeriesKey) -> Unit {
    let watches = |a: &&crate::model::Alarm| {
        a.namespace == key.namespace()
            && a.metric_name == key.metric_name()
            && a.dimensions.len() == key.dimensions().len()
            && a.dimensions.iter().all(|d| {
                key.dimension(&d.name)
                    .is_some_and(|v| d.value == "*" || v == d.value)
            })
    };
    let mut units = set.alarms.iter().filter(watches).map(|a| a.unit);
    match units.next() {
        Some(Some(first)) if units.all(|u| u == Some(first)) => first,
        _ => Unit::None,
    }
}

/// 1-second resolution for metrics that a 10/20/30-second alarm watches, 60-second otherwise.
fn resolution_for(set: &AlarmSet, key: &SeriesKey) -> Resolution {
    let high = set.alarms.iter().any(|a| {
        a.period.as_secs() < 60
            && a.namespace == key.namespace()
            && a.metric_name == key.metric_name()
    });
    if high {
        Resolution::High
    } else {
        Resolution::Standard
    }
}

/// Loads observations into a fresh store: at 1-second resolution for metrics that a
/// 10/20/30-second alarm watches, at 60-second resolution otherwise.
pub fn store_from<'a>(
    set: &AlarmSet,
    rows: impl IntoIterator<Item = (SeriesKey, Timestamp, Unit, &'a [f64])>,
) -> Store {
    let store = Store::new(4);
    let mut batch = Vec::new();
    for (key, ts, unit, values) in rows {
        let resolution = resolution_for(set, &key);
        for v in values {
            batch.push((
                key.clone(),
                Observation {
                    timestamp: ts,
                    unit,
                    resolution,
                    sample: Sample::Value(*v),
                },
            ));
        }
    }
    store.record_batch(&batch);
    store
}

/// The outcome for one alarm (or instance).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlarmOutcome {
    /// Name.
    pub name: String,
    /// State after the last tick.
    pub final_state: StateValue,
    /// Reason of the final state.
    #[serde(skip)]
    pub final_reason: String,
    /// The series a metric alarm (or instance) evaluated; `None` for composites.
    #[serde(skip)]
    pub series: Option<SeriesKey>,
    /// Data rows of that series in the recorded data, when counted
    /// ([`LoadedData::count_rows`]).
    pub data_rows: Option<usize>,
    /// Every transition, oldest first.
    pub transitions: Vec<Transition>,
    /// Every action the replay invoked (notifications and scaling, re-invocations of scaling
    /// actions included), with its tick, oldest first ([`backtest`] fills it; not in
    /// [`render_json`]'s output, [`compare`] reads it).
    #[serde(skip)]
    pub actions: Vec<(Timestamp, ActionInvocation)>,
}

/// The result of a back-test.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BacktestResult {
    /// Ticks evaluated.
    pub evaluations: usize,
    /// Per alarm, in definition order (instances by name).
    pub alarms: Vec<AlarmOutcome>,
}

/// Tick spacing for a set: 10 s if any alarm has a period under a minute or there are
/// composites with such children, else 60 s.
pub fn tick_step_ms(set: &AlarmSet) -> i64 {
    if set.alarms.iter().any(|a| a.period.as_secs() < 60) {
        10_000
    } else {
        60_000
    }
}

/// The `(namespace, metric_name)` pairs the metric alarms of `set` read (per-series `"*"`
/// alarms included), sorted and without repeats: what a back-test against a server fetches.
pub fn metrics_read(set: &AlarmSet) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for a in &set.alarms {
        if !a.namespace.is_empty() && !a.metric_name.is_empty() {
            pairs.push((a.namespace.clone(), a.metric_name.clone()));
        }
        // A metric-math alarm reads its `metric_stat`s.
        for m in a.metrics.iter().filter_map(|m| m.metric_stat.as_ref()) {
            pairs.push((m.namespace.clone(), m.metric_name.clone()));
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// How far before a tick the evaluations of `set` read data: the longest evaluation range
/// (periods × period) plus its evaluation delay, rounded up with an hour's margin for the
/// store's alignment of a query's start; two weeks for an anomaly-detection alarm, whose
/// model is trained on the series' past. A replay from `from` needs the data from
/// `from - lookback_ms(set)` on.
pub fn lookback_ms(set: &AlarmSet) -> i64 {
    let longest = set
        .alarms
        .iter()
        .map(|a| {
            let range = i64::from(a.evaluation_range)
                .saturating_mul(a.period.as_millis())
                .saturating_add(i64::from(a.evaluation_delay_seconds) * 1000);
            if a.threshold_metric_id.is_some() {
                range.max(14 * DAY_MS)
            } else {
                range
            }
        })
        .max()
        .unwrap_or(0);
    longest.saturating_add(thermostat_metrics::time::HOUR_MS)
}

/// Longest range a replay (`backtest`, `simulate`, an alarm file's `tests:`) evaluates:
/// 400 days (CloudWatch keeps data for 455).
pub const MAX_REPLAY_DAYS: i64 = 400;

/// The evaluation ticks of a replay over `from..=to`: every multiple of `step_ms` from the
/// first at or after `from` up to `to`, included.
///
/// # Errors
/// [`Error::Range`] naming `from` or `to` when either is outside years 0000 to 9999, `to` is
/// before `from`, or the range is longer than [`MAX_REPLAY_DAYS`].
pub fn replay_ticks(
    from: Timestamp,
    to: Timestamp,
    step_ms: i64,
) -> Result<impl Iterator<Item = Timestamp>> {
    let range = |field: &str, message: String| Error::Range {
        field: field.to_owned(),
        message,
    };
    for (field, t) in [("from", from), ("to", to)] {
        if let Err(e) = Timestamp::try_from_millis(t.as_millis()) {
            return Err(range(field, format!("{e} (got {} ms)", t.as_millis())));
        }
    }
    if to < from {
        return Err(range(
            "to",
            format!("must not be before from (got from {from}, to {to})"),
        ));
    }
    let max_ms = MAX_REPLAY_DAYS * DAY_MS;
    match to.as_millis().checked_sub(from.as_millis()) {
        Some(span) if span <= max_ms => {}
        _ => {
            return Err(range(
                "to",
                format!(
                    "the range from {from} to {to} is longer than {MAX_REPLAY_DAYS} days, the most a replay evaluates; replay a shorter range"
                ),
            ));
        }
    }
    let step = step_ms.max(1);
    let first = first_tick(from, step).filter(|f| *f <= to);
    Ok(std::iter::successors(first, move |t| {
        t.checked_add_millis(step).filter(|n| *n <= to)
    }))
}

/// The first multiple of `step_ms` (> 0) at or after `from`, `None` beyond `i64`.
pub fn first_tick(from: Timestamp, step_ms: i64) -> Option<Timestamp> {
    let floor = from.checked_floor_to(step_ms)?;
    if floor == from {
        Some(floor)
    } else {
        floor.checked_add_millis(step_ms)
    }
}

/// Replays `set` over `store`, evaluating at every tick in `from..=to`, starting from
/// `initial` (INSUFFICIENT_DATA with the creation reason, as at creation, when `None`).
///
/// # Errors
/// [`Error::Range`] for a range [`replay_ticks`] refuses; [`Error::Query`] when an alarm's
/// query is refused by the store.
pub fn backtest(
    set: &AlarmSet,
    store: &Store,
    from: Timestamp,
    to: Timestamp,
    initial: Option<StateValue>,
) -> Result<BacktestResult> {
    let step = tick_step_ms(set);
    let ticks = replay_ticks(from, to, step)?;
    let first = first_tick(from, step).unwrap_or(from);
    let mut st = EngineState::new(set, first, initial);
    let mut transitions: std::collections::BTreeMap<String, Vec<Transition>> = Default::default();
    let mut actions: std::collections::BTreeMap<String, Vec<(Timestamp, ActionInvocation)>> =
        Default::default();
    let mut evaluations = 0;
    // Anomaly alarms train their models from the replayed store, as the runtime does.
    let mut models = crate::engine::ModelCache::default();
    let anomaly = set.alarms.iter().any(Alarm::is_anomaly);
    for t in ticks {
        if anomaly {
            models.refresh(set, &st, store, t)?;
        }
        let out = crate::engine::tick_with_models(set, &mut st, store, &models, t)?;
        evaluations += 1;
        for (name, tr) in out.transitions {
            transitions.entry(name).or_default().push(tr);
        }
        for (name, a) in out.actions {
            actions.entry(name).or_default().push((t, a));
        }
    }
    let mut alarms = outcomes(set, &st, transitions);
    for a in &mut alarms {
        a.actions = actions.remove(&a.name).unwrap_or_default();
    }
    Ok(BacktestResult {
        evaluations,
        alarms,
    })
}

/// Every alarm's (and per-series instance's) final state with its transitions, in
/// configuration order: the outcome of a replay.
pub fn outcomes(
    set: &AlarmSet,
    st: &EngineState,
    mut transitions: std::collections::BTreeMap<String, Vec<Transition>>,
) -> Vec<AlarmOutcome> {
    let mut alarms = Vec::new();
    for a in &set.alarms {
        for (name, i) in st.metric.iter().filter(|(_, i)| i.alarm == a.name) {
            alarms.push(AlarmOutcome {
                name: name.clone(),
                final_state: i.state.value,
                final_reason: i.state.reason.clone(),
                series: Some(i.key.clone()),
                data_rows: None,
                transitions: transitions.remove(name).unwrap_or_default(),
                actions: Vec::new(),
            });
        }
    }
    for c in &set.composites {
        if let Some(cs) = st.composites.get(&c.name) {
            alarms.push(AlarmOutcome {
                name: c.name.clone(),
                final_state: cs.alarm.value,
                final_reason: cs.alarm.reason.clone(),
                series: None,
                data_rows: None,
                transitions: transitions.remove(&c.name).unwrap_or_default(),
                actions: Vec::new(),
            });
        }
    }
    alarms
}

#[derive(Serialize)]
struct JsonTransition<'a> {
    timestamp: String,
    old_state: StateValue,
    new_state: StateValue,
    reason: &'a str,
    reason_data: Option<&'a ReasonData>,
}

#[derive(Serialize)]
struct JsonAlarm<'a> {
    name: &'a str,
    final_state: StateValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_rows: Option<usize>,
    transitions: Vec<JsonTransition<'a>>,
}

#[derive(Serialize)]
struct JsonResult<'a> {
    evaluations: usize,
    alarms: Vec<JsonAlarm<'a>>,
}

/// `--format json`: `{"evaluations": N, "alarms": [{"name", "final_state", "transitions":
/// [{"timestamp" (RFC 3339), "old_state", "new_state", "reason", "reason_data"}]}]}`;
/// `reason_data` is `{}` when there is none.
pub fn render_json(r: &BacktestResult) -> String {
    let empty = ReasonData::Other(serde_json::Value::Object(serde_json::Map::new()));
    let doc = JsonResult {
        evaluations: r.evaluations,
        alarms: r
            .alarms
            .iter()
            .map(|a| JsonAlarm {
                name: &a.name,
                final_state: a.final_state,
                data_rows: a.data_rows,
                transitions: a
                    .transitions
                    .iter()
                    .map(|t| JsonTransition {
                        timestamp: timefmt::rfc3339(t.timestamp),
                        old_state: t.old_state,
                        new_state: t.new_state,
                        reason: &t.reason,
                        reason_data: Some(t.reason_data.as_ref().unwrap_or(&empty)),
                    })
                    .collect(),
            })
            .collect(),
    };
    serde_json::to_string(&doc).unwrap_or_default()
}

/// `n` and the noun, singular for 1: `1 transition`, `2 transitions`, `0 activities`.
pub fn count(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// `--format text`: one block per alarm (with the data rows of its series when counted),
/// one line per transition.
pub fn render_text(r: &BacktestResult) -> String {
    let mut s = format!("{}\n", count(r.evaluations, "evaluation", "evaluations"));
    for a in &r.alarms {
        let transitions = count(a.transitions.len(), "transition", "transitions");
        let rows = match (a.data_rows, &a.series) {
            (Some(0), Some(k)) => format!("no data rows of its series {k}, "),
            (Some(n), _) => format!("{}, ", count(n, "data row", "data rows")),
            (None, _) => String::new(),
        };
        s.push_str(&format!(
            "\n{}: {} ({rows}{transitions})\n",
            a.name, a.final_state
        ));
        for t in &a.transitions {
            s.push_str(&format!(
                "  {}  {} -> {}  {}\n",
                timefmt::rfc3339(t.timestamp),
                t.old_state,
                t.new_state,
                t.reason
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: &str = "alarms:\n  - {name: cpu, namespace: AWS/EC2, metric_name: CPUUtilization, dimensions: {AutoScalingGroupName: web}, statistic: Average, period_seconds: 60, evaluation_periods: 2, threshold: 70, comparison_operator: GreaterThanThreshold}\n";

    #[test]
    fn csv_errors_are_line_numbered() {
        let text = "timestamp,namespace,metric_name,dimensions,value\n1000,App,M,,1\nyesterday,App,M,A=b,2\n1000,App,M,oops,x\n";
        let errs = parse_csv(text).unwrap_err();
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            msgs,
            vec![
                "line 3: timestamp: must be RFC 3339, Unix seconds or Unix milliseconds (got \"yesterday\")",
                "line 4: dimensions: must be Name=Value pairs separated by ';' (got \"oops\")",
                "line 4: value: must be a finite number (got \"x\")",
            ]
        );
        let rows = parse_csv("timestamp,namespace,metric_name,dimensions,value\n\"1970-01-01T00:00:01Z\",App,M,\"A=1;B=x,y\",2.5\n").unwrap();
        assert_eq!(rows[0].timestamp, Timestamp(1000));
        assert_eq!(rows[0].key.dimension("B"), Some("x,y"));
    }

    const HEADER: &str = "timestamp,namespace,metric_name,dimensions,value\n";

    fn load(text: &[u8], limits: &CsvLimits) -> Result<LoadedData, Vec<String>> {
        let set = crate::validate::validate(&[("c.yaml", SET)]).unwrap();
        load_csv(&set, text, limits, &CsvTime::milliseconds())
            .map_err(|e| e.iter().map(|e| e.to_string()).collect())
    }

    /// Issue 15, finding 11: a row the store cannot represent is refused with its line.
    #[test]
    fn regression_15_unrepresentable_rows_name_their_line() {
        for (row, want) in [
            (
                "9223372036854775807,App,M,,1",
                "line 3: timestamp: must be between",
            ),
            (
                "-9223372036854775808,App,M,,1",
                "line 3: timestamp: must be between",
            ),
            (
                "253402300800000,App,M,,1",
                "line 3: timestamp: must be between",
            ),
            (
                "99999999999999999999,App,M,,1",
                "line 3: timestamp: must be between",
            ),
            ("1000,App,M,,NaN", "line 3: value: must be a finite number"),
            ("1000,App,M,,inf", "line 3: value: must be a finite number"),
            (
                "1000,App,M,,1e400",
                "line 3: value: must be a finite number",
            ),
        ] {
            let text = format!("{HEADER}1000,App,M,,1\n{row}\n");
            let errs = load(text.as_bytes(), &CsvLimits::default()).unwrap_err();
            assert!(errs[0].starts_with(want), "{row}: {errs:?}");
        }
        // The extremes that are representable are read.
        let text = format!(
            "{HEADER}253402300799999,App,M,,1\n0000-01-01T00:00:00Z,App,M,,2\n9999-12-31T23:59:59Z,App,M,,3\n"
        );
        let data = load(text.as_bytes(), &CsvLimits::default()).unwrap();
        assert_eq!(data.rows, 3);
        assert_eq!(data.first, Some(Timestamp::EARLIEST));
        assert_eq!(data.last, Some(Timestamp::LATEST));
    }

    #[test]
    fn regression_15_csv_limits_end_the_reading_at_the_line() {
        let limits = CsvLimits {
            max_line_bytes: 64,
            max_rows: 3,
            max_series: 2,
            max_errors: 5,
        };
        // A line without an end (as /dev/zero gives): refused once the limit is read.
        let zeros = [HEADER.as_bytes(), &[0u8; 10_000][..]].concat();
        let errs = load(&zeros, &limits).unwrap_err();
        assert_eq!(
            errs,
            [
                "line 2: line: is longer than the limit of 64 bytes (a back-test CSV has one row a line)"
            ]
        );
        // Exactly the limit (its end of line included) is read.
        let row = "1000,App,M,,1\n";
        let line = format!("1000,App,M,,1{}\n", " ".repeat(64 - row.len()));
        assert_eq!(line.len(), 64);
        assert!(load(format!("{HEADER}{line}").as_bytes(), &limits).is_ok());
        let errs = load(format!("{HEADER} {line}").as_bytes(), &limits).unwrap_err();
        assert!(errs[0].starts_with("line 2: line: is longer"), "{errs:?}");
        // Rows and series beyond their limits.
        let rows = format!("{HEADER}{}", row.repeat(4));
        let errs = load(rows.as_bytes(), &limits).unwrap_err();
        assert_eq!(
            errs,
            [
                "line 5: line: the file has more than 3 data rows, the limit of a replay; replay a shorter range"
            ]
        );
        let series = format!("{HEADER}1,App,A,,1\n2,App,B,,1\n3,App,A,,1\n");
        let limits = CsvLimits {
            max_rows: 10,
            ..limits
        };
        let errs = load(format!("{series}4,App,C,,1\n").as_bytes(), &limits).unwrap_err();
        assert_eq!(
            errs,
            ["line 5: line: the file has more than 2 series, the limit of a replay"]
        );
        assert_eq!(load(series.as_bytes(), &limits).unwrap().series, 2);
        // Malformed lines are reported up to the limit, then the reading stops.
        let bad = format!("{HEADER}{}", "x\n".repeat(1000));
        let errs = load(bad.as_bytes(), &limits).unwrap_err();
        assert_eq!(errs.len(), 6, "{errs:?}");
        assert_eq!(
            errs[5],
            "line 6: file: stopped reading after 5 malformed lines"
        );
        // Not UTF-8.
        let errs = load(&[HEADER.as_bytes(), b"1,App,\xff,,1\n"].concat(), &limits).unwrap_err();
        assert!(
            errs[0].starts_with("line 2: line: is not UTF-8"),
            "{errs:?}"
        );
    }

    /// 2023-11-14T22:13:20Z.
    const NOW_MS: i64 = 1_700_000_000_000;

    fn load_as(text: &str, unit: Option<TimeUnit>) -> Result<LoadedData, Vec<String>> {
        let set = crate::validate::validate(&[("c.yaml", SET)]).unwrap();
        let time = CsvTime::plausible(unit, Timestamp(NOW_MS));
        load_csv(&set, text.as_bytes(), &CsvLimits::default(), &time)
            .map_err(|e| e.iter().map(|e| e.to_string()).collect())
    }

    /// Issue 17: timestamps in seconds were read as milliseconds of 1970, silently.
    #[test]
    fn regression_17_seconds_and_milliseconds_are_told_apart_by_magnitude() {
        let s = format!("{HEADER}1699999980,App,M,,1\n1700000040,App,M,,2\n");
        let ms = format!("{HEADER}1699999980000,App,M,,1\n1700000040000,App,M,,2\n");
        let rfc = format!("{HEADER}2023-11-14T22:13:00Z,App,M,,1\n1700000040,App,M,,2\n");
        for text in [&s, &ms, &rfc] {
            let data = load_as(text, None).unwrap();
            assert_eq!(
                (data.first, data.last),
                (
                    Some(Timestamp(1_699_999_980_000)),
                    Some(Timestamp(1_700_000_040_000))
                ),
                "{text}"
            );
        }
        // The explicit unit wins over the magnitude.
        assert_eq!(
            load_as(&s, Some(TimeUnit::Seconds)).unwrap().first,
            Some(Timestamp(1_699_999_980_000))
        );
        let errs = load_as(&s, Some(TimeUnit::Milliseconds)).unwrap_err();
        assert!(
            errs[0].starts_with("line 2: timestamp: is not a plausible time: must be between 2000-01-01T00:00:00Z and 2024-11-14T22:13:20Z (a year from now) (got \"1699999980\", read as Unix milliseconds: 1970-01-20T16:13:19.98Z); check the unit"),
            "{errs:?}"
        );
        let errs = load_as(&ms, Some(TimeUnit::Seconds)).unwrap_err();
        assert!(
            errs[0].starts_with("line 2: timestamp: must be between 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z (got \"1699999980000\", read as Unix seconds)"),
            "{errs:?}"
        );
    }

    #[test]
    fn regression_17_a_file_mixing_units_is_refused_at_the_first_row_of_the_other() {
        let text = format!(
            "{HEADER}1699999980000,App,M,,1\n2023-11-14T22:14:00Z,App,M,,1\n1700000040,App,M,,2\n1700000100000,App,M,,2\n1700000160,App,M,,2\n"
        );
        let errs = load_as(&text, None).unwrap_err();
        assert_eq!(
            errs[0],
            "line 4: timestamp: reads as Unix seconds (\"1700000040\") but line 2 holds Unix milliseconds: a file must use one unit (numbers below 10^11 are seconds, larger ones milliseconds; give --time-unit s or ms to choose)"
        );
        assert_eq!(errs.len(), 2, "every row of the other unit: {errs:?}");
        assert!(errs[1].starts_with("line 6: timestamp: reads as Unix seconds"));
        // With the unit given, the same file is read: the rows in the other unit are then
        // implausible, each naming its line.
        let errs = load_as(&text, Some(TimeUnit::Milliseconds)).unwrap_err();
        assert!(
            errs[0].starts_with("line 4: timestamp: is not a plausible time"),
            "{errs:?}"
        );
    }

    #[test]
    fn regression_17_implausible_times_name_their_row() {
        for (row, want) in [
            (
                "60000",
                "(got \"60000\", read as Unix seconds: 1970-01-01T16:40:00Z)",
            ),
            (
                "0",
                "(got \"0\", read as Unix seconds: 1970-01-01T00:00:00Z)",
            ),
            ("1999-12-31T23:59:59Z", "(got \"1999-12-31T23:59:59Z\")"),
            ("2024-11-15T00:00:00Z", "(got \"2024-11-15T00:00:00Z\")"),
            (
                "1800000000000",
                "read as Unix milliseconds: 2027-01-15T08:00:00Z",
            ),
        ] {
            let errs = load_as(
                &format!("{HEADER}2023-11-14T22:13:00Z,App,M,,1\n{row},App,M,,1\n"),
                None,
            )
            .unwrap_err();
            assert!(
                errs[0].starts_with("line 3: timestamp: is not a plausible time: must be between 2000-01-01T00:00:00Z and 2024-11-14T22:13:20Z"),
                "{row}: {errs:?}"
            );
            assert!(errs[0].contains(want), "{row}: {errs:?}");
        }
        // The bounds themselves are plausible.
        let data = load_as(
            &format!("{HEADER}2000-01-01T00:00:00Z,App,M,,1\n2024-11-14T22:13:20Z,App,M,,1\n"),
            None,
        )
        .unwrap();
        assert_eq!(data.rows, 2);
    }

    #[test]
    fn rows_are_counted_per_series_and_alarm() {
        let set = crate::validate::validate(&[("c.yaml", SET)]).unwrap();
        let mut text = String::from(HEADER);
        for m in 0..5 {
            let t = 1_699_999_980 + m * 60;
            text.push_str(&format!(
                "{t},AWS/EC2,CPUUtilization,AutoScalingGroupName=web,90\n"
            ));
            text.push_str(&format!(
                "{t},AWS/EC2,CPUUtilization,AutoScalingGroupName=api,90\n"
            ));
        }
        let time = CsvTime::plausible(None, Timestamp(NOW_MS));
        let data = load_csv(&set, text.as_bytes(), &CsvLimits::default(), &time).unwrap();
        let (from, to) = (data.first.unwrap(), data.last.unwrap());
        let mut r = backtest(&set, &data.store, from, to, None).unwrap();
        data.count_rows(&mut r);
        assert_eq!(r.alarms[0].data_rows, Some(5));
        let text = render_text(&r);
        assert!(
            text.contains("\ncpu: ALARM (5 data rows, 1 transition)\n"),
            "{text}"
        );
        assert!(text.starts_with("5 evaluations\n"), "{text}");
        assert!(render_json(&r).contains(r#""data_rows":5"#));
        // An alarm whose series has no row says so.
        let other = format!("{HEADER}1699999980,App,M,,1\n");
        let data = load_csv(&set, other.as_bytes(), &CsvLimits::default(), &time).unwrap();
        let mut r = backtest(&set, &data.store, from, from, None).unwrap();
        data.count_rows(&mut r);
        let text = render_text(&r);
        assert!(
            text.contains("cpu: INSUFFICIENT_DATA (no data rows of its series AWS/EC2/CPUUtilization{AutoScalingGroupName=web}, 0 transitions)"),
            "{text}"
        );
        assert!(text.starts_with("1 evaluation\n"), "{text}");
    }

    #[test]
    fn loading_keeps_one_key_per_series() {
        let text =
            format!("{HEADER}60000,App,M,B=2;A=1,1\n120000,App,M,A=1;B=2,2\n60000,App,N,,3\n");
        let data = load(text.as_bytes(), &CsvLimits::default()).unwrap();
        assert_eq!((data.rows, data.series), (3, 2));
        assert_eq!(data.store.series_count(), 2);
        assert_eq!(
            (data.first, data.last),
            (Some(Timestamp(60_000)), Some(Timestamp(120_000)))
        );
    }

    #[test]
    fn regression_15_replay_ranges_are_bounded() {
        let err = |from: i64, to: i64| match replay_ticks(Timestamp(from), Timestamp(to), 60_000) {
            Err(Error::Range { field, message }) => format!("{field}: {message}"),
            other => panic!("{from}..{to}: {:?}", other.map(|t| t.count())),
        };
        assert!(err(i64::MIN, 0).starts_with("from: must be between"));
        assert!(err(0, i64::MAX).starts_with("to: must be between"));
        assert!(err(10, 0).starts_with("to: must not be before from"));
        let max = MAX_REPLAY_DAYS * DAY_MS;
        assert!(err(0, max + 1).contains("longer than 400 days"));
        let ticks = |from: i64, to: i64| {
            replay_ticks(Timestamp(from), Timestamp(to), 60_000)
                .unwrap()
                .collect::<Vec<_>>()
        };
        assert_eq!(ticks(0, max).len(), 400 * 1440 + 1);
        assert_eq!(ticks(1, 60_000), [Timestamp(60_000)]);
        assert_eq!(ticks(1, 59_999), []);
        // At the end of what can be written: no overflow, the loop ends.
        let last = Timestamp::LATEST.as_millis();
        assert_eq!(
            ticks(last - 120_000, last),
            [Timestamp(last - 119_999), Timestamp(last - 59_999)]
        );
        let set = crate::validate::validate(&[("c.yaml", SET)]).unwrap();
        let e = backtest(
            &set,
            &Store::new(1),
            Timestamp(0),
            Timestamp(i64::MAX),
            None,
        );
        assert!(matches!(e, Err(Error::Range { .. })), "{e:?}");
    }

    #[test]
    fn backtest_replays_and_renders() {
        let set = crate::validate::validate(&[("c.yaml", SET)]).unwrap();
        let mut csv = String::from("timestamp,namespace,metric_name,dimensions,value\n");
        for (m, v) in [(0, 50), (1, 80), (2, 90), (3, 40), (4, 30)] {
            csv.push_str(&format!(
                "{},AWS/EC2,CPUUtilization,AutoScalingGroupName=web,{v}\n",
                m * 60_000 + 5_000
            ));
        }
        let rows = parse_csv(&csv).unwrap();
        let store = store_from(
            &set,
            rows.iter().map(|r| {
                (
                    r.key.clone(),
                    r.timestamp,
                    Unit::None,
                    std::slice::from_ref(&r.value),
                )
            }),
        );
        let r = backtest(&set, &store, Timestamp(60_000), Timestamp(300_000), None).unwrap();
        assert_eq!(r.evaluations, 5);
        let states: Vec<(String, StateValue)> = r.alarms[0]
            .transitions
            .iter()
            .map(|t| (timefmt::rfc3339(t.timestamp), t.new_state))
            .collect();
        assert_eq!(
            states,
            vec![
                // §3.5.3: one good real point decides OK even under `missing`.
                ("1970-01-01T00:01:00Z".to_owned(), StateValue::Ok),
                ("1970-01-01T00:03:00Z".to_owned(), StateValue::Alarm),
                ("1970-01-01T00:04:00Z".to_owned(), StateValue::Ok),
            ]
        );
        // --from T --to T on a tick is exactly one evaluation.
        let one = backtest(
            &set,
            &store,
            Timestamp(180_000),
            Timestamp(180_000),
            Some(StateValue::Ok),
        )
        .unwrap();
        assert_eq!(one.evaluations, 1);
        let json = render_json(&r);
        assert!(json.starts_with(r#"{"evaluations":5,"alarms":[{"name":"cpu","final_state":"OK","transitions":[{"timestamp":"1970-01-01T00:01:00Z","old_state":"INSUFFICIENT_DATA","new_state":"OK","reason":"Threshold Crossed: 1 datapoint [50.0 (01/01/70 00:00:00)] was not greater than the threshold (70.0).","reason_data":{"version":"1.0""#), "{json}");
        insta::assert_snapshot!(render_text(&r));
    }
}
