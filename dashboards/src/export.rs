//! `GET /api/v1/export/series`: the windows the store holds for a metric's series over a
//! time range, exactly as the store keeps them (count, sum, minimum, maximum and the
//! serialised histogram of every window), so that a client can rebuild them in a store of
//! its own and evaluate any statistic, percentiles included, as this server would:
//! `thermostat backtest --server` replays a rule set over them.
//!
//! Read-only, with the `read_metrics` permission and the namespace in the caller's scope.
//! Bounded: a range of at most [`MAX_EXPORT_DAYS`], at most [`MAX_EXPORT_SERIES`] series and
//! about [`MAX_EXPORT_BYTES`] of windows a page (a series larger than that is split across
//! pages), and a `next_token` to go on. Pages are read off the async workers, through the
//! query gate that bounds every store query.

use std::collections::HashMap;

use axum::extract::{Query as Params, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use thermostat_auth::Permission;
use thermostat_metrics::store::{LIST_MAX_BYTES, ListCursor, ListFilter, ListPage, SeriesExport};
use thermostat_metrics::time::DAY_MS;
use thermostat_metrics::validate::quote;
use thermostat_metrics::{Timestamp, Unit};

use crate::ApiState;
use crate::access::Caller;
use crate::api::parse_time;
use crate::error::ApiError;

/// Widest range a request may cover: 455 days, as long as the store keeps anything.
pub const MAX_EXPORT_DAYS: i64 = 455;
/// Most series a page holds.
pub const MAX_EXPORT_SERIES: usize = 100;
/// A page stops adding windows once their JSON reaches this size: 4 MiB (so a page is at
/// most that plus one window).
pub const MAX_EXPORT_BYTES: usize = 4 << 20;
/// The cost a page counts for in the query gate ([`thermostat_metrics::store::QueryGate`]):
/// a page is bounded by its own limits (series, bytes), so it passes the gate for its bound
/// on queries running at once, never for `--max-query-cost` (whose message speaks of periods
/// and statistics).
const EXPORT_PAGE_COST: u64 = 1;
/// Windows read from the store at a time (one shard lock each).
const CHUNK_WINDOWS: usize = 256;

/// One answer of `GET /api/v1/export/series`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExportPage {
    /// The series, each with the page's share of its windows (a series split across pages
    /// appears on each; [`thermostat_metrics::Store::import`] merges the parts).
    pub series: Vec<SeriesExport>,
    /// Passed back as `next_token` for the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// Where a page starts: after a listed series (`after`), and inside the next one after a
/// window (`resume`: unit, tier, start) when the page before stopped in it.
#[derive(Clone, Debug, Default, PartialEq)]
struct ExportCursor {
    after: Option<ListCursor>,
    resume: Option<(Unit, u8, i64)>,
}

/// The token prefix (format version).
const TOKEN_PREFIX: &str = "e1.";

impl ExportCursor {
    /// `e1.` then hex of `<list token or empty>\n<unit>\n<tier>\n<start>` (the last three
    /// empty without a resume point).
    fn to_token(&self) -> String {
        let list = self
            .after
            .as_ref()
            .map(ListCursor::to_token)
            .unwrap_or_default();
        let resume = self.resume.map_or_else(
            || "\n\n".to_owned(),
            |(u, t, s)| format!("{}\n{t}\n{s}", u.as_str()),
        );
        let text = format!("{list}\n{resume}");
        let mut out = String::from(TOKEN_PREFIX);
        for b in text.bytes() {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    fn from_token(token: &str) -> Result<Self, ApiError> {
        let bad = || {
            ApiError::bad_request(
                "next_token",
                format!(
                    "must be a next_token from an earlier answer of this endpoint (got {})",
                    quote(token)
                ),
            )
        };
        // A list token, a unit name, a tier and a start, hex-encoded.
        let max = TOKEN_PREFIX.len() + 2 * (ListCursor::MAX_TOKEN_LEN + 64 + 3 + 3 + 21);
        if token.len() > max {
            return Err(bad());
        }
        let hex = token.strip_prefix(TOKEN_PREFIX).ok_or_else(bad)?;
        if hex.len() % 2 != 0 || !hex.is_ascii() {
            return Err(bad());
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(bad)?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let parts: Vec<&str> = text.split('\n').collect();
        let [list, unit, tier, start] = parts.as_slice() else {
            return Err(bad());
        };
        let after = if list.is_empty() {
            None
        } else {
            Some(ListCursor::from_token(list).map_err(|_| bad())?)
        };
        let resume = match (*unit, *tier, *start) {
            ("", "", "") => None,
            (u, t, s) => Some((
                u.parse::<Unit>().map_err(|_| bad())?,
                t.parse::<u8>().ok().filter(|t| *t < 4).ok_or_else(bad)?,
                s.parse::<i64>().map_err(|_| bad())?,
            )),
        };
        Ok(ExportCursor { after, resume })
    }
}

fn required<'a>(params: &'a HashMap<String, String>, field: &str) -> Result<&'a str, ApiError> {
    params
        .get(field)
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request(field, "is required"))
}

/// A request's parameters, checked.
#[derive(Clone, Debug, PartialEq)]
struct ExportRequest {
    namespace: String,
    metric_name: String,
    from: Timestamp,
    to: Timestamp,
    cursor: ExportCursor,
}

fn parse_request(params: &HashMap<String, String>) -> Result<ExportRequest, ApiError> {
    let namespace = required(params, "namespace")?.to_owned();
    let metric_name = required(params, "metric_name")?.to_owned();
    let from = parse_time("from", required(params, "from")?)?;
    let to = parse_time("to", required(params, "to")?)?;
    if to < from {
        return Err(ApiError::bad_request(
            "to",
            format!("must not be before from (got from {from}, to {to})"),
        ));
    }
    if to.as_millis().saturating_sub(from.as_millis()) > MAX_EXPORT_DAYS * DAY_MS {
        return Err(ApiError::bad_request(
            "to",
            format!(
                "the range from {from} to {to} is longer than {MAX_EXPORT_DAYS} days, the most one export covers"
            ),
        ));
    }
    let cursor = match params.get("next_token").filter(|t| !t.is_empty()) {
        Some(t) => ExportCursor::from_token(t)?,
        None => ExportCursor::default(),
    };
    Ok(ExportRequest {
        namespace,
        metric_name,
        from,
        to,
        cursor,
    })
}

/// One page of the export (see the module's documentation), read under one shard lock at a
/// time.
fn export_page(
    store: &thermostat_metrics::Store,
    req: &ExportRequest,
    now: Timestamp,
    max_series: usize,
    max_bytes: usize,
) -> ExportPage {
    let filter = ListFilter {
        namespace: Some(&req.namespace),
        metric_name: Some(&req.metric_name),
        // A series with no data since `from` has no window in the range.
        active_since: Some(req.from),
    };
    let after = req.cursor.after.as_ref();
    let page = store.list_page(filter, now, after, max_series, LIST_MAX_BYTES);
    let mut series = Vec::new();
    // Windows in the page, and their JSON bytes.
    let (mut in_page, mut bytes) = (0usize, 0usize);
    for (i, key) in page.keys.iter().enumerate() {
        let mut resume = if i == 0 { req.cursor.resume } else { None };
        let mut part: Option<SeriesExport> = None;
        loop {
            if bytes >= max_bytes && in_page > 0 {
                // Full: go on in this series, after the last window given.
                if let Some(p) = part.filter(|p| !p.streams.is_empty()) {
                    series.push(p);
                }
                let next = ExportCursor {
                    after: ListPage::cursor_after(&page.keys, after, i),
                    resume,
                };
                return ExportPage {
                    series,
                    next_token: Some(next.to_token()),
                };
            }
            let Some(chunk) = store.export_range(key, req.from, req.to, resume, CHUNK_WINDOWS)
            else {
                break; // Removed since it was listed.
            };
            let mut got = 0;
            let p = part.get_or_insert_with(|| SeriesExport {
                key: chunk.key.clone(),
                last_timestamp: chunk.last_timestamp,
                streams: Vec::new(),
            });
            for stream in chunk.streams {
                for w in stream.windows {
                    if bytes >= max_bytes && in_page > 0 {
                        break;
                    }
                    bytes += serde_json::to_vec(&w).map_or(0, |v| v.len());
                    resume = Some((stream.unit, w.0, w.1));
                    got += 1;
                    in_page += 1;
                    match p.streams.last_mut() {
                        Some(s) if s.unit == stream.unit => s.windows.push(w),
                        _ => p.streams.push(thermostat_metrics::store::StreamExport {
                            unit: stream.unit,
                            windows: vec![w],
                        }),
                    }
                }
            }
            if got < CHUNK_WINDOWS && bytes < max_bytes {
                break; // The series' last windows.
            }
        }
        if let Some(p) = part.filter(|p| !p.streams.is_empty()) {
            series.push(p);
        }
    }
    ExportPage {
        series,
        next_token: page.next.map(|after| {
            ExportCursor {
                after: Some(after),
                resume: None,
            }
            .to_token()
        }),
    }
}

/// `GET /api/v1/export/series?namespace=N&metric_name=M&from=T&to=T[&next_token=…]`: one
/// page of the windows of the series of `metric_name` in `namespace` that overlap
/// `from..=to` (RFC 3339 or Unix seconds, at most [`MAX_EXPORT_DAYS`] apart), as
/// [`ExportPage`] JSON.
pub(crate) async fn series(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Params(params): Params<HashMap<String, String>>,
) -> Result<Json<ExportPage>, ApiError> {
    let req = parse_request(&params)?;
    state
        .access
        .authorize_namespace(&caller.principal, Permission::ReadMetrics, &req.namespace)
        .map_err(|denied| ApiError::Forbidden(denied.to_string()))?;
    let now = state.clock.now();
    // Through the query gate like any store query: at most half the cores read pages at
    // once, and a full queue is a 429.
    let page = crate::api::run_queries(&state, "next_token", EXPORT_PAGE_COST, move |store| {
        export_page(store, &req, now, MAX_EXPORT_SERIES, MAX_EXPORT_BYTES)
    })
    .await?;
    Ok(Json(page))
}

#[cfg(test)]
mod tests {
    use super::*;
    use thermostat_metrics::{Observation, Resolution, Sample, SeriesKey, Store};

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn refused(pairs: &[(&str, &str)]) -> (String, String) {
        match parse_request(&params(pairs)) {
            Err(ApiError::BadRequest { field, message }) => (field, message),
            other => panic!("{pairs:?}: {other:?}"),
        }
    }

    const BASE: [(&str, &str); 4] = [
        ("namespace", "App"),
        ("metric_name", "Latency"),
        ("from", "2026-01-01T00:00:00Z"),
        ("to", "2026-01-02T00:00:00Z"),
    ];

    #[test]
    fn requests_out_of_bounds_are_400s_naming_the_field() {
        assert!(parse_request(&params(&BASE)).is_ok());
        let with = |k: &str, v: &str| {
            let mut p: Vec<(&str, &str)> = BASE.iter().copied().filter(|(n, _)| *n != k).collect();
            p.push((k, v));
            refused(&p)
        };
        let (field, message) = with("to", "2027-06-01T00:00:00Z");
        assert_eq!(field, "to");
        assert!(message.contains("longer than 455 days"), "{message}");
        assert_eq!(with("to", "2025-01-01T00:00:00Z").0, "to");
        assert_eq!(with("from", "yesterday").0, "from");
        assert_eq!(with("namespace", "").0, "namespace");
        for token in [
            "nonsense",
            "e1.zz",
            "e1.0a",
            "e1.0a0a0a0a0a",
            "1.00",
            &format!("e1.{}", "00".repeat(10_000)),
        ] {
            let (field, message) = with("next_token", token);
            assert_eq!(field, "next_token", "{token}");
            assert!(message.starts_with("must be a next_token"), "{message}");
        }
        // A unit that is no unit, a tier beyond the store's.
        for text in ["\nPotatoes\n1\n0", "\nSeconds\n9\n0"] {
            let hex: String = text.bytes().map(|b| format!("{b:02x}")).collect();
            assert_eq!(with("next_token", &format!("e1.{hex}")).0, "next_token");
        }
    }

    #[test]
    fn tokens_round_trip() {
        for cursor in [
            ExportCursor::default(),
            ExportCursor {
                after: None,
                resume: Some((Unit::Milliseconds, 1, 60_000)),
            },
        ] {
            assert_eq!(
                ExportCursor::from_token(&cursor.to_token()).unwrap(),
                cursor
            );
        }
    }

    /// Every window once, whatever the page bounds: the pages imported into a fresh store
    /// give the same statistics as the source.
    #[test]
    fn paging_gives_every_window_once() {
        let store = Store::new(4);
        let mut batch = Vec::new();
        for s in 0..5 {
            let key = SeriesKey::new(
                "App",
                "Latency",
                vec![thermostat_metrics::Dimension::new("Host", format!("h{s}"))],
            );
            for m in 0..60 {
                for v in 0..3 {
                    batch.push((
                        key.clone(),
                        Observation {
                            timestamp: Timestamp(m * 60_000 + v * 1000),
                            unit: Unit::Milliseconds,
                            resolution: Resolution::Standard,
                            sample: Sample::Value((m * 3 + v + s) as f64),
                        },
                    ));
                }
            }
        }
        // Another metric, not exported.
        batch.push((
            SeriesKey::new("App", "Other", vec![]),
            Observation {
                timestamp: Timestamp(0),
                unit: Unit::None,
                resolution: Resolution::Standard,
                sample: Sample::Value(1.0),
            },
        ));
        store.record_batch(&batch);
        let mut all = Vec::new();
        store.export_each(|s| all.push(s));
        all.retain(|s| s.key.metric_name() == "Latency");
        all.sort_by(|a, b| a.key.cmp(&b.key));
        for (max_series, max_bytes) in [(100, usize::MAX), (2, 2_000), (1, 1), (3, 9_000)] {
            let mut req = ExportRequest {
                namespace: "App".into(),
                metric_name: "Latency".into(),
                from: Timestamp(0),
                to: Timestamp(60 * 60_000),
                cursor: ExportCursor::default(),
            };
            let copy = Store::new(2);
            let mut pages = 0;
            loop {
                let page = export_page(&store, &req, Timestamp(60 * 60_000), max_series, max_bytes);
                pages += 1;
                assert!(pages < 10_000);
                for s in page.series {
                    copy.import(s);
                }
                match page.next_token {
                    Some(t) => req.cursor = ExportCursor::from_token(&t).unwrap(),
                    None => break,
                }
            }
            let mut got = Vec::new();
            copy.export_each(|s| got.push(s));
            got.sort_by(|a, b| a.key.cmp(&b.key));
            assert_eq!(got, all, "{max_series} series, {max_bytes} bytes a page");
            if max_bytes == 1 {
                // One window a page, and an empty page where a series ends.
                assert!((300..=305).contains(&pages), "{pages} pages");
            }
        }
        // A range cut: only the windows overlapping it.
        let req = ExportRequest {
            namespace: "App".into(),
            metric_name: "Latency".into(),
            from: Timestamp(60_001),
            to: Timestamp(120_000),
            cursor: ExportCursor::default(),
        };
        let page = export_page(&store, &req, Timestamp(60 * 60_000), 100, usize::MAX);
        assert_eq!(page.series.len(), 5);
        let starts: Vec<i64> = page.series[0].streams[0]
            .windows
            .iter()
            .map(|w| w.1)
            .collect();
        assert_eq!(starts, [60_000, 120_000]);
        assert!(page.next_token.is_none());
    }
}
