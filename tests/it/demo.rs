//! `thermostat demo`: the whole loop on a simulated clock (the real agents, gRPC server,
//! alarm engine, scaling and notifications, with time under the test's control), and the
//! real binary started, fed, and stopped with SIGINT.

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use serde_json::Value;
use thermostat::app::{self, Running, Settings};
use thermostat::demo::receiver::Receiver as WebhookReceiver;
use thermostat::demo::{self, Demo, Event, Style};
use thermostat_metrics::{ManualClock, Timestamp};
use tokio_util::sync::CancellationToken;

/// 2026-11-26T10:00:00Z.
const T0: i64 = 1_795_687_200_000;
/// The loop must complete within this much simulated time.
const SIMULATED_LIMIT_MS: i64 = 15 * 60_000;

async fn get(running: &Running, path: &str) -> Value {
    crate::util::get_json(running.http_addr, path).await
}

fn ms(rfc3339: &str) -> i64 {
    rfc3339.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

/// Every effect the demo printed comes after its cause: a scaling activity or held policy
/// after its alarm went to ALARM, a notification after its alarm entered the state it
/// reports.
fn causes_come_first(events: &[Event], log: &str) {
    let mut entered: Vec<(&str, &str)> = Vec::new();
    for e in events {
        match e {
            Event::AlarmChanged { alarm, to, .. } => entered.push((alarm, to)),
            Event::Activity {
                alarm: Some(alarm), ..
            }
            | Event::PolicyHeld { alarm, .. } => assert!(
                entered.contains(&(alarm.as_str(), "ALARM")),
                "{e:?} before its alarm went to ALARM:\n{log}"
            ),
            Event::Notification {
                alarm, new_state, ..
            } => assert!(
                entered.contains(&(alarm.as_str(), new_state.as_str())),
                "{e:?} before its alarm went to {new_state}:\n{log}"
            ),
            _ => {}
        }
    }
}

/// `(time, summary)` of an alarm's state updates, oldest first.
async fn transitions(running: &Running, alarm: &str) -> Vec<(i64, String)> {
    let doc = get(
        running,
        &format!("/api/v1/alarms/{alarm}/history?limit=1000"),
    )
    .await;
    let mut out: Vec<(i64, String)> = doc["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["item_type"] == "StateUpdate")
        .map(|i| {
            (
                ms(i["timestamp"].as_str().unwrap()),
                i["summary"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.reverse();
    out
}

fn first_at(list: &[(i64, String)], summary_end: &str, after: i64) -> Option<i64> {
    list.iter()
        .find(|(t, s)| *t > after && s.ends_with(summary_end))
        .map(|(t, _)| *t)
}

/// The loop the demo exists to show has happened, as the demo itself reported it: the CPU
/// alarm fired and recovered, the group scaled out and came back to its minimum.
fn loop_complete(events: &[Event]) -> bool {
    let mut seen_alarm = false;
    let mut seen_ok = false;
    let mut seen_out = false;
    for e in events {
        match e {
            Event::AlarmChanged { alarm, to, .. } if alarm == "demo-cpu-high" => {
                seen_alarm |= to == "ALARM";
                seen_ok |= seen_alarm && to == "OK";
            }
            Event::Activity {
                old_desired,
                new_desired,
                ..
            } => {
                seen_out |= new_desired > old_desired;
                if seen_ok && seen_out && new_desired < old_desired && *new_desired == 2 {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_the_whole_loop_on_a_simulated_clock() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("info")
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let receiver = WebhookReceiver::start(stop.clone()).await.unwrap();
    let config = demo::write_config(&dir.path().join("config"), &receiver.url).unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(T0)));
    let settings = Settings {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        config: vec![config],
        alarm_tick_loop: false,
        ..Settings::default()
    };
    let running = app::start_with_clock(settings, clock.clone())
        .await
        .unwrap();
    let mut demo = Demo::connect(&running, Timestamp(T0)).await.unwrap();

    // Every 5 simulated seconds the agents push; every 10 the engine evaluates, at the same
    // time as the agents' step, as in real time (where a tick may fall in the middle of the
    // demo's look at the server).
    let mut events: Vec<Event> = Vec::new();
    let mut t = T0;
    let mut complete = false;
    while t <= T0 + SIMULATED_LIMIT_MS {
        clock.set(Timestamp(t));
        let tick = (t % 10_000 == 0).then(|| {
            let engine = Arc::clone(&running.engine);
            tokio::task::spawn_blocking(move || engine.tick(Timestamp(t)))
        });
        events.extend(demo.step(Timestamp(t)).await.unwrap());
        if let Some(tick) = tick {
            tick.await.unwrap().unwrap();
        }
        if loop_complete(&events) {
            complete = true;
            break;
        }
        t += 5_000;
    }
    let log: Vec<String> = events.iter().map(|e| e.render(Style::PLAIN)).collect();
    let log = log.join("\n");
    println!("{log}");
    assert!(
        complete,
        "the loop did not complete within {} simulated minutes:\n{log}",
        SIMULATED_LIMIT_MS / 60_000
    );
    assert!(demo.samples_pushed() > 0);
    // docs/demo.md and the README: the whole loop takes about four minutes.
    let took = t - T0;
    println!("the loop took {} s of simulated time", took / 1000);
    assert!(
        (180_000..=270_000).contains(&took),
        "the loop took {} s, not about four minutes:\n{log}",
        took / 1000
    );
    causes_come_first(&events, &log);

    // The CPU alarm fired and recovered.
    let cpu = transitions(&running, "demo-cpu-high").await;
    let fired = first_at(&cpu, "to ALARM", T0).unwrap_or_else(|| panic!("{cpu:?}"));
    let recovered = first_at(&cpu, "ALARM to OK", fired).unwrap_or_else(|| panic!("{cpu:?}"));

    // The group scaled out at the tick the alarm fired, through the step policy, and in
    // after the recovery, through the simple policy, two at a time with the 90-second
    // cooldown between the steps, back to its minimum.
    let doc = get(&running, "/api/v1/groups/demo-web/activities?limit=100").await;
    let mut acts: Vec<Value> = doc["activities"].as_array().unwrap().clone();
    acts.reverse();
    let out = acts
        .iter()
        .find(|a| a["new_desired"].as_u64() > a["old_desired"].as_u64())
        .unwrap_or_else(|| panic!("{acts:?}"));
    assert_eq!(out["timestamp"].as_i64(), Some(fired), "{out}");
    assert_eq!(out["policy"], "step-out", "{out}");
    assert_eq!(out["alarm"], "demo-cpu-high", "{out}");
    assert_eq!(out["status"], "Successful", "{out}");
    assert!(out["new_desired"].as_u64().unwrap() >= 4, "{out}");
    let ins: Vec<&Value> = acts
        .iter()
        .filter(|a| a["new_desired"].as_u64() < a["old_desired"].as_u64())
        .collect();
    assert!(!ins.is_empty(), "{acts:?}");
    for a in &ins {
        assert!(a["timestamp"].as_i64().unwrap() > recovered, "{a}");
        assert_eq!(a["policy"], "scale-in", "{a}");
        assert_eq!(a["alarm"], "demo-cpu-low", "{a}");
    }
    for pair in ins.windows(2) {
        let gap = pair[1]["timestamp"].as_i64().unwrap() - pair[0]["timestamp"].as_i64().unwrap();
        assert!(gap >= 90_000, "scale-in waits for the cooldown: {pair:?}");
    }
    assert_eq!(ins.last().unwrap()["new_desired"], 2);
    let group = get(&running, "/api/v1/groups/demo-web").await;
    assert_eq!(group["desired_capacity"], 2, "{group}");
    // Two steps of 2 (6 -> 4 -> 2): the re-invocation between them was held by the cooldown,
    // and the demo said so.
    assert!(ins.len() >= 2, "{acts:?}");
    let cooldown_end = ins[0]["timestamp"].as_i64().unwrap() + 90_000;
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::PolicyHeld {
                hold: demo::summary::Hold::Cooldown,
                policy,
                until,
                ..
            } if policy == "scale-in" && until.as_millis() == cooldown_end
        )),
        "the held re-invocation is reported:\n{log}"
    );

    // Latency followed CPU: the p99 and p50 alarms fired during the spike and recovered.
    for alarm in ["demo-latency-p99", "demo-latency-p50"] {
        let list = transitions(&running, alarm).await;
        let up = first_at(&list, "to ALARM", T0).unwrap_or_else(|| panic!("{alarm}: {list:?}"));
        assert!(
            first_at(&list, "ALARM to OK", up).is_some(),
            "{alarm}: {list:?}"
        );
    }

    // Notifications for the CPU and p99 alarms reached the webhook (delivery runs in real
    // time, in the background).
    let deadline = Instant::now() + Duration::from_secs(30);
    let wanted = [
        ("demo-cpu-high", "ALARM"),
        ("demo-cpu-high", "OK"),
        ("demo-latency-p99", "ALARM"),
        ("demo-latency-p99", "OK"),
    ];
    loop {
        let doc = get(&running, "/api/v1/notifications?limit=1000").await;
        let list = doc["notifications"].as_array().unwrap().clone();
        let delivered = |alarm: &str, state: &str| {
            list.iter().any(|n| {
                n["alarm_name"] == alarm && n["new_state"] == state && n["status"] == "delivered"
            })
        };
        if wanted.iter().all(|(a, s)| delivered(a, s)) {
            let count = list.iter().filter(|n| n["status"] == "delivered").count() as u64;
            assert!(receiver.received() >= count, "{list:?}");
            assert!(
                list.iter().all(|n| n["status"] != "failed"),
                "no delivery failed: {list:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "deliveries: {list:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The group metrics show the scale-out: desired capacity above 2 at some tick, 2 now.
    let desired = get(
        &running,
        &format!(
            "/api/v1/statistics?namespace=AWS/AutoScaling&metric_name=GroupDesiredCapacity&dimensions=AutoScalingGroupName=demo-web&period_seconds=60&statistics=Maximum,Minimum&start={}&end={}",
            T0 / 1000,
            t / 1000 + 60
        ),
    )
    .await;
    let points = desired["datapoints"].as_array().unwrap();
    let max = points
        .iter()
        .map(|p| p["Maximum"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(max >= 4.0, "{desired}");

    running.shutdown();
    running.wait().await.unwrap();
    stop.cancel();
    receiver.stopped().await;
}

/// Lines of a child's stdout.
fn lines(child: &mut std::process::Child) -> Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    rx
}

fn wait_line(rx: &Receiver<String>, prefix: &str, seen: &mut Vec<String>) -> String {
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no line starting with {prefix:?}; got {seen:?}"));
        seen.push(line.clone());
        if let Some(rest) = line.trim_start().strip_prefix(prefix) {
            return rest.trim().to_owned();
        }
    }
}

/// Kills the child if the test fails before it exits.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for a line containing `text`; returns its index in `seen`.
fn wait_containing(rx: &Receiver<String>, text: &str, seen: &mut Vec<String>) -> usize {
    if let Some(i) = seen.iter().position(|l| l.contains(text)) {
        return i;
    }
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no line containing {text:?}; got {seen:#?}"));
        seen.push(line);
        if seen[seen.len() - 1].contains(text) {
            return seen.len() - 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_binary_serves_pushes_prints_whole_lines_and_stops_cleanly_on_sigint() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_thermostat"))
            .args([
                "demo",
                "--http-addr",
                "127.0.0.1:0",
                "--grpc-addr",
                "127.0.0.1:0",
            ])
            .env("TMPDIR", tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let rx = lines(&mut child.0);
    let mut seen = Vec::new();
    let dashboard = wait_line(&rx, "Dashboard:", &mut seen);
    let data = wait_line(&rx, "Data directory:", &mut seen);
    assert!(
        dashboard.starts_with("http://127.0.0.1:") && dashboard.ends_with('/'),
        "{dashboard}"
    );
    let data = std::path::PathBuf::from(
        data.strip_suffix(" (temporary, removed on exit)")
            .unwrap_or_else(|| panic!("{data}")),
    );
    assert!(data.starts_with(tmp.path()), "{}", data.display());
    assert!(data.is_dir(), "{}", data.display());

    // The HTTP API answers with the demo's group and alarms.
    let api = |path: &str| {
        let url = format!("{dashboard}{}", path.trim_start_matches('/'));
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let group = api("/api/v1/groups/demo-web").await;
    assert_eq!(group["min_size"], 2, "{group}");
    let alarms = api("/api/v1/alarms").await;
    let names: Vec<&str> = alarms["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    for n in [
        "demo-cpu-high",
        "demo-cpu-low",
        "demo-latency-p50",
        "demo-latency-p99",
    ] {
        assert!(names.contains(&n), "{alarms}");
    }

    // The agents' data arrive: CPU of both base instances, latency histograms.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let cpu = api("/api/v1/statistics?namespace=AWS/EC2&metric_name=CPUUtilization&dimensions=AutoScalingGroupName=demo-web&period_seconds=60&statistics=SampleCount,Average").await;
        let latency = api("/api/v1/statistics?namespace=App/Web&metric_name=Latency&dimensions=AutoScalingGroupName=demo-web&period_seconds=60&statistics=SampleCount,p99").await;
        let count = |doc: &Value| {
            doc["datapoints"].as_array().map_or(0.0, |d| {
                d.iter().filter_map(|p| p["SampleCount"].as_f64()).sum()
            })
        };
        if count(&cpu) >= 2.0 && count(&latency) >= 100.0 {
            let p99 = latency["datapoints"][0]["p99"].as_f64();
            assert!(p99.is_some_and(|v| v > 0.0), "{latency}");
            break;
        }
        assert!(Instant::now() < deadline, "no data: {cpu} {latency}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A state set by hand with a reason of 300 characters: stdout is a pipe, so the line
    // carries the reason whole, and it comes before the notification it causes.
    let reason = format!(
        "Set by hand to see a long reason printed whole: {}end.",
        "word ".repeat(50)
    );
    assert!(reason.chars().count() > 250);
    let put = reqwest::Client::new()
        .put(format!("{dashboard}api/v1/alarms/demo-cpu-high/state"))
        .json(&serde_json::json!({"state_value": "ALARM", "state_reason": reason}))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{:?}", put.text().await);
    let changed = wait_containing(&rx, &format!("-> ALARM  {reason}"), &mut seen);
    let line = &seen[changed];
    assert!(
        line.get(8..)
            .is_some_and(|l| l.starts_with("  alarm demo-cpu-high ") && l.ends_with(&reason)),
        "{line}"
    );
    let notified = wait_containing(
        &rx,
        "notification ALARM demo-cpu-high to webhook:",
        &mut seen,
    );
    assert!(changed < notified, "{seen:#?}");
    // Plain lines off a terminal, with the plurals right.
    for line in &seen {
        assert!(!line.contains('\x1b'), "{line:?}");
        assert!(!line.contains(" 1 instances"), "{line:?}");
    }

    // SIGINT stops it in order; the temporary directory goes with it.
    let ok = Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "still running after SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let bye = wait_line(&rx, "Stopped;", &mut seen);
    assert!(
        bye.starts_with("removed the temporary data directory"),
        "{bye}"
    );
    assert!(!data.exists(), "{} is gone", data.display());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "nothing is left in TMPDIR"
    );
}
