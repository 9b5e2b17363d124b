//! `thermostat backtest --server URL`: the data a running server holds, read through its
//! query API (`GET /api/v1/export/series`, `dashboards/src/export.rs`) into a local store,
//! window for window, so that the replay computes every statistic (percentiles included) as
//! the server would.

use std::time::Duration;

use thermostat_alarms::model::AlarmSet;
use thermostat_alarms::timefmt;
use thermostat_dashboards::export::ExportPage;
use thermostat_metrics::{Store, Timestamp};

/// Most series a back-test reads from a server (as from a CSV file).
const MAX_SERIES: usize = thermostat_alarms::backtest::MAX_CSV_SERIES;
/// Most bytes of answers a back-test reads from a server, all pages together: 2 GiB.
const MAX_TOTAL_BYTES: u64 = 2 << 30;
/// Largest answer accepted for one page (the server sends about 4 MiB at most).
const MAX_PAGE_BYTES: u64 = 64 << 20;

/// Where the data comes from and how to authenticate.
#[derive(Debug)]
pub(super) struct Server<'a> {
    /// `http://host:port` or `https://…`, as given to `--server`.
    pub url: &'a str,
    /// The bearer token, if any (never printed).
    pub token: Option<&'a str>,
}

/// Reads the series of every `(namespace, metric_name)` the sets read, windows overlapping
/// `from - lookback ..= to`, into a fresh store.
///
/// # Errors
/// A message for the command line: the server unreachable, the token refused (401) or not
/// allowed a namespace (403), an answer that is not an export, or more data than a replay
/// takes.
pub(super) fn fetch(
    server: &Server<'_>,
    sets: &[&AlarmSet],
    from: Timestamp,
    to: Timestamp,
) -> Result<Store, String> {
    let lookback = sets
        .iter()
        .map(|s| thermostat_alarms::backtest::lookback_ms(s))
        .max()
        .unwrap_or(0);
    let start = Timestamp(from.as_millis().saturating_sub(lookback)).max(Timestamp::EARLIEST);
    let mut pairs: Vec<(String, String)> = sets
        .iter()
        .flat_map(|s| thermostat_alarms::backtest::metrics_read(s))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(fetch_all(server, &pairs, start, to))
}

async fn fetch_all(
    server: &Server<'_>,
    pairs: &[(String, String)],
    from: Timestamp,
    to: Timestamp,
) -> Result<Store, String> {
    let base = server.url.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(format!(
            "--server: must be an http:// or https:// URL of the server's HTTP API, such as http://127.0.0.1:8080 (got {})",
            thermostat_metrics::validate::quote(server.url)
        ));
    }
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    let url = format!("{base}/api/v1/export/series");
    let store = Store::new(4);
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    let (from_s, to_s) = (timefmt::rfc3339(from), timefmt::rfc3339(to));
    for (namespace, metric_name) in pairs {
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![
                ("namespace", namespace.as_str()),
                ("metric_name", metric_name.as_str()),
                ("from", from_s.as_str()),
                ("to", to_s.as_str()),
            ];
            if let Some(t) = &token {
                query.push(("next_token", t.as_str()));
            }
            let mut req = client.get(&url).query(&query);
            if let Some(t) = server.token {
                req = req.bearer_auth(t);
            }
            let what = format!("{namespace}/{metric_name}");
            let resp = req.send().await.map_err(|e| unreachable(base, &e))?;
            let status = resp.status();
            let body = read_body(resp, &mut total)
                .await
                .map_err(|e| format!("{base}: reading the export of {what} failed: {e}"))?;
            if !status.is_success() {
                return Err(refused(base, server.token.is_some(), status, &body, &what));
            }
            let page: ExportPage = serde_json::from_slice(&body).map_err(|e| {
                format!(
                    "{base}: the answer to GET /api/v1/export/series is not an export ({e}); is it a Thermostat server of this version?"
                )
            })?;
            for s in page.series {
                seen.insert(s.key.clone());
                if seen.len() > MAX_SERIES {
                    return Err(format!(
                        "the server holds more than {MAX_SERIES} series of the metrics the alarms read, the limit of a replay"
                    ));
                }
                store.import(s);
            }
            match page.next_token {
                Some(next) if token.as_deref() == Some(next.as_str()) => {
                    return Err(format!(
                        "{base}: the export of {what} does not advance (the same next_token twice)"
                    ));
                }
                Some(next) => token = Some(next),
                None => break,
            }
        }
    }
    Ok(store)
}

/// The body, at most [`MAX_PAGE_BYTES`], counted into `total` (at most [`MAX_TOTAL_BYTES`]).
async fn read_body(mut resp: reqwest::Response, total: &mut u64) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        body.extend_from_slice(&chunk);
        *total += chunk.len() as u64;
        if body.len() as u64 > MAX_PAGE_BYTES {
            return Err(format!("an answer is larger than {MAX_PAGE_BYTES} bytes"));
        }
        if *total > MAX_TOTAL_BYTES {
            return Err(format!(
                "the data is larger than {MAX_TOTAL_BYTES} bytes, the limit of a replay; replay a shorter range"
            ));
        }
    }
    Ok(body)
}

/// The message for a request that reached no server.
fn unreachable(base: &str, e: &reqwest::Error) -> String {
    // The innermost cause says what happened (connection refused, no such host, ...).
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let how = if e.is_timeout() {
        "it did not answer in time".to_owned()
    } else {
        cause.to_string()
    };
    format!("cannot reach the server at {base}: {how}")
}

/// The message for an answer other than 200, with the server's own message when it sent
/// its JSON error.
fn refused(
    base: &str,
    had_token: bool,
    status: reqwest::StatusCode,
    body: &[u8],
    what: &str,
) -> String {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
    match status.as_u16() {
        401 if had_token => format!(
            "{base} refused the token (401 Unauthorized: {message}); give a token the server accepts (THERMOSTAT_TOKEN or --token)"
        ),
        401 => format!(
            "{base} needs a token (401 Unauthorized: {message}); set THERMOSTAT_TOKEN or --token to a token with the read_metrics permission"
        ),
        403 => format!(
            "{base} refused to export {what} (403 Forbidden: {message}); the token needs the read_metrics permission on that namespace"
        ),
        404 => format!(
            "{base} has no export endpoint (404 Not Found: {message}); back-tests need a Thermostat server of this version"
        ),
        _ => format!("{base} refused to export {what} ({status}: {message})"),
    }
}
