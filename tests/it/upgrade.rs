//! Upgrade: this build starts on a data directory written by an older build and answers about
//! it exactly as that build did.
//!
//! The fixture (`tests/fixtures/upgrade/`) was made by its `make-fixture` script with the
//! release binary of the commit before issue 16 (its header says how and when):
//! `data-dir.tar.gz` is the old build's data directory (snapshot, write-ahead log with data
//! that is only there, `state.redb` with alarm states, history and a scaling group's state,
//! `outbox.redb`), `config.yaml` its configuration, and `expected.json` what the old build
//! answered over HTTP just before it was killed. The alarms are chosen so that their states
//! cannot change whenever the test runs (`config.yaml` says why), so every answer below must
//! be equal, item for item; a build that could not read the snapshot, the log or the state
//! table would answer differently (no series, or every alarm back to
//! `INSUFFICIENT_DATA` with `Unchecked: Initial alarm creation` and a new `created` item).
//!
//! Time: history is kept by age, so the server runs with a retention of a century; the
//! series listing shows only series with data in the past 14 days, so it is compared whole
//! only while the fixture is younger than that (then only the group metrics, which the
//! server keeps recording); the statistics use whole hours, the same in
//! every tier of the store, until the data expire 455 days after the fixture was made (the
//! test then fails saying so: make a new fixture with an older build).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::process::ServerProcess;
use crate::util::{get_json, now_ms, request, stats_request, value_datum};

const DAY_MS: i64 = 86_400_000;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/upgrade")
        .join(name)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn start(data: &Path) -> ServerProcess {
    let config = fixture("config.yaml");
    ServerProcess::start(
        data,
        &[
            "--config",
            config.to_str().unwrap(),
            "--history-retention-days",
            "36500",
        ],
    )
}

/// `v` with every number as a float: `expected.json` went through `jq`, which writes `30.0`
/// as `30`, and serde_json tells the two apart.
fn numbers_as_floats(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.iter().map(numbers_as_floats).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), numbers_as_floats(v)))
                .collect(),
        ),
        v => v.clone(),
    }
}

/// Asserts that `got` equals `want`, numbers compared by value.
#[track_caller]
fn assert_same(got: &Value, want: &Value, what: &str) {
    assert_eq!(numbers_as_floats(got), numbers_as_floats(want), "{what}");
}

/// The alarms as `expected.json` records them: the fields that a restart must not change.
async fn alarms(http: &str) -> Value {
    let mut list: Vec<Value> = get_json(http, "/api/v1/alarms").await["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            json!({
                "name": a["name"],
                "type": a["type"],
                "state": a["state"],
                "reason": a["reason"],
                "reason_data": a["reason_data"],
                "state_updated": a["state_updated"],
            })
        })
        .collect();
    list.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Value::Array(list)
}

/// Every alarm's history and every group with its activities, equal to `expected.json`.
async fn assert_alarms_and_groups(http: &str, expected: &Value) {
    assert_same(
        &alarms(http).await,
        &expected["alarms"],
        "the alarms (state, reason, reason data, when) are those the old build left",
    );
    for (name, items) in expected["history"].as_object().unwrap() {
        let page = get_json(
            http,
            &format!("/api/v1/alarms/{}/history?max_records=100", encode(name)),
        )
        .await;
        assert_eq!(
            page["next_token"],
            Value::Null,
            "history of {name}: one page"
        );
        assert_same(
            &page["history"],
            items,
            &format!("the history of {name} is the old build's, item for item"),
        );
    }
    let mut groups = get_json(http, "/api/v1/groups").await["groups"].clone();
    groups
        .as_array_mut()
        .unwrap()
        .sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    assert_same(&groups, &expected["groups"], "the scaling groups' states");
    for (group, activities) in expected["activities"].as_object().unwrap() {
        assert_same(
            &get_json(
                http,
                &format!("/api/v1/groups/{}/activities", encode(group)),
            )
            .await,
            activities,
            &format!("the activities of group {group}"),
        );
    }
}

/// Whether two statistics agree: counts, extremes, times and units exactly, sums and averages
/// to the last few bits (rolling windows up into coarser tiers adds in another order).
fn assert_same_statistic(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= want.abs() * 1e-9,
        "{what}: got {got}, want {want}"
    );
}

/// `SampleCount` of one series over the minute starting at `t0`, 0 when it has none.
async fn count(
    server: &ServerProcess,
    namespace: &str,
    metric: &str,
    dims: &[(&str, &str)],
    t0: i64,
) -> f64 {
    let req = stats_request(
        namespace,
        metric,
        dims,
        t0,
        t0 + 60_000,
        60,
        &["SampleCount"],
    );
    let datapoints = server
        .client()
        .await
        .get_metric_statistics(req)
        .await
        .unwrap()
        .into_inner()
        .datapoints;
    datapoints
        .first()
        .map_or(0.0, |d| d.statistics["SampleCount"])
}

/// Every pushed series' statistics over whole hours, through HTTP and gRPC, equal to those
/// the old build answered (but those of namespace `skip`).
async fn assert_statistics(server: &ServerProcess, expected: &Value, skip: Option<&str>) {
    for item in expected["statistics"].as_array().unwrap() {
        let q = &item["query"];
        if q["namespace"].as_str() == skip {
            continue;
        }
        let query: String = q
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={}", encode(s)),
                v => format!("{k}={v}"),
            })
            .collect::<Vec<_>>()
            .join("&");
        let what = format!(
            "{} {} {}",
            q["namespace"], q["metric_name"], q["dimensions"]
        );
        let got = get_json(&server.http, &format!("/api/v1/statistics?{query}")).await;
        let (got, want) = (
            got["datapoints"].as_array().unwrap(),
            item["datapoints"].as_array().unwrap(),
        );
        assert!(!want.is_empty(), "{what}: the fixture has data");
        assert_eq!(got.len(), want.len(), "{what}: datapoints {got:?}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g["timestamp"], w["timestamp"], "{what}");
            assert_eq!(g["unit"], w["unit"], "{what}");
            for exact in ["SampleCount", "Minimum", "Maximum"] {
                assert_eq!(g[exact].as_f64(), w[exact].as_f64(), "{what}: {exact}");
            }
            for close in ["Sum", "Average"] {
                assert_same_statistic(
                    g[close].as_f64().unwrap(),
                    w[close].as_f64().unwrap(),
                    &format!("{what}: {close}"),
                );
            }
        }

        // The same through gRPC's GetMetricStatistics.
        let dims: Vec<(&str, &str)> = q["dimensions"]
            .as_str()
            .unwrap()
            .split(',')
            .map(|pair| pair.split_once('=').unwrap())
            .collect();
        let statistics: Vec<&str> = q["statistics"].as_str().unwrap().split(',').collect();
        let req = stats_request(
            q["namespace"].as_str().unwrap(),
            q["metric_name"].as_str().unwrap(),
            &dims,
            q["start"].as_i64().unwrap() * 1000,
            q["end"].as_i64().unwrap() * 1000,
            q["period_seconds"].as_i64().unwrap() as i32,
            &statistics,
        );
        let grpc = server
            .client()
            .await
            .get_metric_statistics(req)
            .await
            .unwrap()
            .into_inner()
            .datapoints;
        assert_eq!(grpc.len(), want.len(), "{what}: gRPC datapoints");
        for (g, w) in grpc.iter().zip(want) {
            let t = w["timestamp"].as_str().unwrap().parse::<jiff::Timestamp>();
            assert_eq!(g.timestamp_ms, t.unwrap().as_millisecond(), "{what}: gRPC");
            assert_eq!(g.unit, w["unit"].as_str().unwrap(), "{what}: gRPC unit");
            for s in &statistics {
                assert_same_statistic(
                    g.statistics[*s],
                    w[*s].as_f64().unwrap(),
                    &format!("{what}: gRPC {s}"),
                );
            }
        }
    }
}

/// The series listing: whole while the fixture is younger than the listing's 14 days; later
/// a part of it that holds at least the group metrics (the server records them every tick).
async fn assert_listing(http: &str, expected: &Value, age_ms: i64) {
    let got = get_json(http, "/api/v1/metrics").await;
    assert_eq!(got.get("next_token"), None, "one page of series");
    let mut got = got["metrics"].as_array().unwrap().clone();
    let key = |m: &Value| {
        (
            m["namespace"].as_str().unwrap().to_owned(),
            m["metric_name"].as_str().unwrap().to_owned(),
            m["dimensions"].to_string(),
        )
    };
    got.sort_by_key(key);
    let mut want = expected["metrics"].as_array().unwrap().clone();
    want.sort_by_key(key);
    if age_ms < 13 * DAY_MS {
        assert_eq!(got, want, "the series listing");
    } else {
        // Around 14 days the pushed series leave the listing.
        for m in &got {
            assert!(want.contains(m), "listed, but not in the fixture: {m}");
        }
        for m in want.iter().filter(|m| m["namespace"] == "AWS/AutoScaling") {
            assert!(got.contains(m), "the group metric {m} is listed");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_of_the_previous_build_reads_the_same() {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap();
    let made = expected["made"]["at"]
        .as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond();
    let age_ms = now_ms() - made;
    assert!(
        age_ms < 450 * DAY_MS,
        "the upgrade fixture was made {} days ago: its data have expired from the store (455 \
         days); make a new one with tests/fixtures/upgrade/make-fixture and a build older than \
         the code under test",
        age_ms / DAY_MS
    );

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let ok = Command::new("tar")
        .arg("-xzf")
        .arg(fixture("data-dir.tar.gz"))
        .arg("-C")
        .arg(&data)
        .status()
        .unwrap()
        .success();
    assert!(ok, "tar unpacks the fixture");

    let server = start(&data);
    assert_alarms_and_groups(&server.http, &expected).await;
    assert_listing(&server.http, &expected, age_ms).await;
    assert_statistics(&server, &expected, None).await;

    // It keeps working: a push to a series that came from the old build's log, and to a new
    // one (no alarm watches either), is stored and read back. (Counted before and after: a
    // fixture made a moment ago has samples in this minute.)
    let t0 = {
        let now = now_ms();
        now - now.rem_euclid(60_000)
    };
    let wal = [("AvailabilityZone", "zone-0"), ("InstanceId", "i-00000000")];
    let new = [("After", "upgrade")];
    let before = count(&server, "Upgrade/Wal", "LoadgenValue", &wal, t0).await;
    let mut old_series = value_datum("LoadgenValue", &wal, t0, 42.0);
    old_series.unit = "Percent".into();
    server
        .client()
        .await
        .put_metric_data(request("Upgrade/Wal", vec![old_series]))
        .await
        .unwrap();
    server
        .client()
        .await
        .put_metric_data(request(
            "Upgrade/After",
            vec![value_datum("Pushed", &new, t0, 7.0)],
        ))
        .await
        .unwrap();
    let after = count(&server, "Upgrade/Wal", "LoadgenValue", &wal, t0).await;
    assert_eq!(after, before + 1.0, "the push to Upgrade/Wal is stored");
    assert_eq!(
        count(&server, "Upgrade/After", "Pushed", &new, t0).await,
        1.0
    );
    // Nothing moved meanwhile (the composite is evaluated every 10 s).
    assert_alarms_and_groups(&server.http, &expected).await;

    // What this build writes on a graceful stop it reads again.
    server.signal("-TERM");
    let mut server = server;
    assert!(server.child.wait().unwrap().success(), "stops cleanly");
    drop(server);
    let server = start(&data);
    assert_alarms_and_groups(&server.http, &expected).await;
    assert_statistics(&server, &expected, Some("Upgrade/Wal")).await;
    assert_eq!(
        count(&server, "Upgrade/Wal", "LoadgenValue", &wal, t0).await,
        after
    );
    assert_eq!(
        count(&server, "Upgrade/After", "Pushed", &new, t0).await,
        1.0
    );
}
