//! `breach-latency`: from the push that breaches an alarm to the webhook request arriving, with
//! a real `thermostat serve` process, real gRPC and a real HTTP receiver on loopback.
//!
//! The server evaluates alarms at every 10-second boundary of the wall clock. Each round has
//! its own alarm (`breach-N`: `Maximum > 50` over 10-second periods, 1 of 1, missing data
//! not breaching, alarm action `http://127.0.0.1:<receiver>/hook`) and series. A round waits
//! until `lead` seconds before the next tick, pushes one high-resolution datum of 99
//! (timestamped now) with `PutMetricData`, and waits for the alarm's webhook request. It reports, per round:
//!
//! - `tick_to_webhook_ms`: arrival minus the evaluation tick (the message's
//!   `StateChangeTime`) — issue 8's target is under 1 s;
//! - `push_to_webhook_ms`: arrival minus the start of the push (includes the wait for the tick).
//!
//! Leads cycle through 5, 2, 1, 0.5 and 0.25 s so that pushes land early and late in the
//! tick's window. Times come from the same wall clock (one machine).
//!
//! `--background-alarms N` adds N more alarms of the same shape (10-second periods, so they
//! are due at every tick, but a threshold they never reach and no actions), each over its own
//! series, and pushes one fresh sample to each of those series every 10 s, so that every
//! tick evaluates N + 1 alarms over live data and the breach's notification waits for the
//! whole tick.

#![allow(
    clippy::print_stdout,
    reason = "printing the figures is this binary's job"
)]

use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use clap::Parser;
use thermostat_benches::process::start_thermostat;
use thermostat_metrics::{Clock as _, SystemClock};
use thermostat_proto::v1::metrics_service_client::MetricsServiceClient;
use thermostat_proto::v1::{MetricDatum, PutMetricDataRequest};

/// Measure breach-to-notification latency against a real Thermostat server.
#[derive(Debug, Parser)]
#[command(name = "breach-latency", version)]
struct Args {
    /// Rounds (one evaluation tick, 10 s, each).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: u32,
    /// The Thermostat server binary (default: `thermostat` next to this program).
    #[arg(long)]
    thermostat_bin: Option<PathBuf>,
    /// Alarms besides the breaching ones, each over its own series fed every 10 s.
    #[arg(long, default_value_t = 0)]
    background_alarms: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

const TICK_MS: i64 = 10_000;
/// Seconds before the tick at which round `r` pushes: `LEADS_MS[r % LEADS_MS.len()]`.
const LEADS_MS: [i64; 5] = [5000, 2000, 1000, 500, 250];
const NAMESPACE: &str = "Bench/Breach";
const BACKGROUND_NAMESPACE: &str = "Bench/Background";
/// How long the server may take to start (loading many alarms takes a while).
const START_TIMEOUT: Duration = Duration::from_secs(600);

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(&args, &runtime) {
        Ok(rounds) => {
            let summary = summarise(&rounds);
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({ "rounds": rounds.iter().map(Round::to_json).collect::<Vec<_>>(), "summary": summary })
                );
            } else {
                println!(
                    "{:>5} {:>12} {:>10} {:>18} {:>18}",
                    "round", "lead_ms", "ack_ms", "tick_to_webhook_ms", "push_to_webhook_ms"
                );
                for r in &rounds {
                    println!(
                        "{:>5} {:>12} {:>10.1} {:>18.1} {:>18.1}",
                        r.round, r.lead_ms, r.ack_ms, r.tick_to_webhook_ms, r.push_to_webhook_ms
                    );
                }
                println!(
                    "tick -> webhook: median {:.1} ms, max {:.1} ms (target < 1000 ms); push -> webhook: median {:.1} ms, max {:.1} ms",
                    summary["tick_to_webhook_ms_median"]
                        .as_f64()
                        .unwrap_or_default(),
                    summary["tick_to_webhook_ms_max"]
                        .as_f64()
                        .unwrap_or_default(),
                    summary["push_to_webhook_ms_median"]
                        .as_f64()
                        .unwrap_or_default(),
                    summary["push_to_webhook_ms_max"]
                        .as_f64()
                        .unwrap_or_default(),
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One round's figures.
#[derive(Debug)]
struct Round {
    round: u32,
    lead_ms: i64,
    ack_ms: f64,
    tick_ms: i64,
    tick_to_webhook_ms: f64,
    push_to_webhook_ms: f64,
}

impl Round {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "round": self.round,
            "lead_ms": self.lead_ms,
            "ack_ms": self.ack_ms,
            "tick_ms": self.tick_ms,
            "tick_to_webhook_ms": self.tick_to_webhook_ms,
            "push_to_webhook_ms": self.push_to_webhook_ms,
        })
    }
}

fn median_and_max(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let median = if v.is_empty() {
        0.0
    } else if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    (median, v.last().copied().unwrap_or_default())
}

fn summarise(rounds: &[Round]) -> serde_json::Value {
    let (tm, tx) = median_and_max(rounds.iter().map(|r| r.tick_to_webhook_ms).collect());
    let (pm, px) = median_and_max(rounds.iter().map(|r| r.push_to_webhook_ms).collect());
    serde_json::json!({
        "rounds": rounds.len(),
        "tick_to_webhook_ms_median": tm,
        "tick_to_webhook_ms_max": tx,
        "push_to_webhook_ms_median": pm,
        "push_to_webhook_ms_max": px,
        "target_met": tx < 1000.0,
    })
}

fn now_ms() -> i64 {
    SystemClock.now().as_millis()
}

/// A webhook request: arrival (Unix ms) and body.
type Hook = (i64, String);

/// Accepts connections on `listener` and sends every request's arrival time and body to `tx`,
/// answering each with 200 (keep-alive, as reqwest reuses connections).
fn receive(listener: TcpListener, tx: Sender<Hook>) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = serve_connection(conn, &tx);
        });
    }
}

fn serve_connection(conn: TcpStream, tx: &Sender<Hook>) -> std::io::Result<()> {
    let mut writer = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut length = 0;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let h = line.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let arrived = now_ms();
        writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")?;
        let _ = tx.send((arrived, String::from_utf8_lossy(&body).into_owned()));
    }
}

fn alarms_yaml(rounds: u32, hook: &str, background: usize) -> String {
    let mut yaml = String::from("alarms:\n");
    for i in 0..background {
        yaml.push_str(&format!(
            "  - {{name: background-{i}, namespace: {BACKGROUND_NAMESPACE}, metric_name: Value, \
             dimensions: {{Series: \"{i}\"}}, statistic: Average, period_seconds: 10, \
             evaluation_periods: 1, threshold: 1000, comparison_operator: GreaterThanThreshold, \
             treat_missing_data: notBreaching}}\n"
        ));
    }
    for r in 0..rounds {
        yaml.push_str(&format!(
            "  - {{name: breach-{r}, namespace: {NAMESPACE}, metric_name: Latency, \
             dimensions: {{Round: \"{r}\"}}, statistic: Maximum, period_seconds: 10, \
             evaluation_periods: 1, threshold: 50, comparison_operator: GreaterThanThreshold, \
             treat_missing_data: notBreaching, alarm_actions: [\"{hook}\"]}}\n"
        ));
    }
    yaml
}

/// `yyyy-MM-ddTHH:mm:ss.SSS+0000` (CloudWatch's `StateChangeTime`) as Unix ms.
fn parse_state_change_time(s: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms)
}

fn run(args: &Args, rt: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Round>> {
    let bin = match &args.thermostat_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("thermostat"),
    };
    ensure!(
        bin.is_file(),
        "the Thermostat binary {} is missing: `cargo build --release --bin thermostat`, or pass --thermostat-bin",
        bin.display()
    );
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    let (tx, hooks) = mpsc::channel();
    std::thread::spawn(move || receive(listener, tx));

    let dir = std::env::temp_dir().join(format!("thermostat-breach-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = (|| {
        std::fs::write(
            dir.join("alarms.yaml"),
            alarms_yaml(args.rounds, &hook, args.background_alarms),
        )?;
        let started = Instant::now();
        let config = dir.join("alarms.yaml");
        let server = start_thermostat(
            &bin,
            &dir.join("data"),
            [OsStr::new("--config"), config.as_os_str()],
            START_TIMEOUT,
        )?;
        let grpc = server.grpc.clone();
        eprintln!(
            "breach-latency: the server started in {:.1} s with {} alarms",
            started.elapsed().as_secs_f64(),
            args.background_alarms + args.rounds as usize
        );
        let mut client = rt
            .block_on(MetricsServiceClient::connect(format!("http://{grpc}")))
            .context("cannot connect over gRPC")?;
        let _feeder = (args.background_alarms > 0)
            .then(|| rt.spawn(feed_background(client.clone(), args.background_alarms)));
        if args.background_alarms > 0 {
            // Let the first feed land and one tick evaluate everything before measuring.
            let first_tick = (now_ms() + 1000).div_euclid(TICK_MS) * TICK_MS + TICK_MS;
            std::thread::sleep(Duration::from_millis(
                u64::try_from(first_tick + 2000 - now_ms()).unwrap_or(0),
            ));
        }
        let mut rounds = Vec::new();
        for r in 0..args.rounds {
            let lead = LEADS_MS[r as usize % LEADS_MS.len()];
            let done = round(rt, &mut client, &hooks, r, lead)?;
            eprintln!(
                "breach-latency: round {r}: pushed {lead} ms before the tick, webhook {} ms after it",
                done.tick_to_webhook_ms
            );
            rounds.push(done);
        }
        Ok(rounds)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Pushes one sample (timestamped now, value 10) to each of the `n` background series every
/// 10 s, 3 s after each tick, in requests of 1,000 datums.
async fn feed_background(mut client: MetricsServiceClient<tonic::transport::Channel>, n: usize) {
    loop {
        let ts = now_ms();
        let mut i = 0;
        while i < n {
            let metric_data = (i..(i + 1000).min(n))
                .map(|s| MetricDatum {
                    metric_name: "Value".to_owned(),
                    dimensions: vec![thermostat_proto::v1::Dimension {
                        name: "Series".to_owned(),
                        value: s.to_string(),
                    }],
                    timestamp_ms: ts,
                    value: Some(10.0),
                    storage_resolution: 1,
                    ..MetricDatum::default()
                })
                .collect();
            let req = PutMetricDataRequest {
                namespace: BACKGROUND_NAMESPACE.to_owned(),
                metric_data,
            };
            if let Err(e) = client.put_metric_data(req).await {
                eprintln!("breach-latency: a background push failed: {e}");
            }
            i += 1000;
        }
        let next = (now_ms()).div_euclid(TICK_MS) * TICK_MS + TICK_MS + 3000;
        let wait = u64::try_from(next - now_ms()).unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}

fn round(
    rt: &tokio::runtime::Runtime,
    client: &mut MetricsServiceClient<tonic::transport::Channel>,
    hooks: &Receiver<Hook>,
    r: u32,
    lead: i64,
) -> anyhow::Result<Round> {
    // The next tick at least `lead` + 300 ms away, so the wait is never negative.
    let now = now_ms();
    let tick = (now + lead + 300).div_euclid(TICK_MS) * TICK_MS + TICK_MS;
    std::thread::sleep(Duration::from_millis(
        u64::try_from(tick - lead - now_ms()).unwrap_or(0),
    ));
    let pushed = now_ms();
    let started = Instant::now();
    let req = PutMetricDataRequest {
        namespace: NAMESPACE.to_owned(),
        metric_data: vec![MetricDatum {
            metric_name: "Latency".to_owned(),
            dimensions: vec![thermostat_proto::v1::Dimension {
                name: "Round".to_owned(),
                value: r.to_string(),
            }],
            timestamp_ms: pushed,
            value: Some(99.0),
            // High resolution: 10-second periods need 1-second windows.
            storage_resolution: 1,
            ..MetricDatum::default()
        }],
    };
    let resp = rt
        .block_on(client.put_metric_data(req))
        .context("the push failed")?;
    ensure!(
        resp.get_ref().accepted_samples == 1,
        "the push was not accepted"
    );
    let ack_ms = started.elapsed().as_secs_f64() * 1000.0;

    let name = format!("\"AlarmName\":\"breach-{r}\"");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (arrived, body) =
            match hooks.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(h) => h,
                Err(RecvTimeoutError::Timeout) => {
                    bail!("round {r}: no webhook for breach-{r} within 30 s of the push")
                }
                Err(RecvTimeoutError::Disconnected) => bail!("the receiver stopped"),
            };
        if !body.contains(&name) || !body.contains("\"NewStateValue\":\"ALARM\"") {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&body)
            .with_context(|| format!("the webhook body is not JSON: {body}"))?;
        let changed = v["StateChangeTime"]
            .as_str()
            .and_then(parse_state_change_time)
            .with_context(|| format!("no StateChangeTime in {body}"))?;
        ensure!(
            changed == tick,
            "round {r}: the breach was evaluated at tick {changed}, not at {tick} (the push \
             took {ack_ms:.0} ms)"
        );
        return Ok(Round {
            round: r,
            lead_ms: lead,
            ack_ms,
            tick_ms: tick,
            tick_to_webhook_ms: (arrived - tick) as f64,
            push_to_webhook_ms: (arrived - pushed) as f64,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_change_times_are_unix_milliseconds() {
        assert_eq!(
            parse_state_change_time("2024-03-19T17:19:14.422+0000"),
            Some(1_710_868_754_422)
        );
        assert_eq!(
            parse_state_change_time("1970-01-01T00:00:00.000+0000"),
            Some(0)
        );
        assert_eq!(parse_state_change_time("yesterday"), None);
    }

    #[test]
    fn medians_and_maxima() {
        assert_eq!(median_and_max(vec![3.0, 1.0, 2.0]), (2.0, 3.0));
        assert_eq!(median_and_max(vec![4.0, 1.0, 2.0, 3.0]), (2.5, 4.0));
        assert_eq!(median_and_max(vec![]), (0.0, 0.0));
    }
}
