//! Scaling by hand over HTTP (issue 18; EC2 Auto Scaling's `SetDesiredCapacity` and
//! `ExecutePolicy`, reference §5.2): a simulated group is set and its policies run through
//! `PUT /api/v1/groups/{name}/desired-capacity` and
//! `POST /api/v1/groups/{name}/policies/{policy}/execute`; the group, its activities and the
//! audit trail show it, and refused requests name the field.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::util::*;

const CONFIG: &str = r#"scaling_groups:
  - name: web
    backend: simulated
    min_size: 1
    max_size: 6
    desired_capacity: 2
    simulated: {launch_seconds: 1}
    policies:
      - name: out
        policy_type: SimpleScaling
        adjustment_type: ChangeInCapacity
        scaling_adjustment: 2
        cooldown_seconds: 600
      - name: steps
        policy_type: StepScaling
        adjustment_type: ExactCapacity
        step_adjustments:
          - {metric_interval_lower_bound: 0, scaling_adjustment: 5}
      - name: track
        policy_type: TargetTrackingScaling
        target_tracking:
          predefined_metric: ASGAverageCPUUtilization
          target_value: 50
"#;

async fn get(server: &TestServer, path: &str) -> Value {
    reqwest::get(server.http(path))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Sends `body` (JSON, or none) with `method` to `path`; the status and the JSON answer.
async fn send(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Client::new().request(method, server.http(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{path}: {status} {text:?} is not JSON: {e}"));
    (status, json)
}

async fn set_desired(server: &TestServer, group: &str, body: Value) -> (StatusCode, Value) {
    let path = format!("/api/v1/groups/{group}/desired-capacity");
    send(server, reqwest::Method::PUT, &path, Some(body)).await
}

async fn execute(
    server: &TestServer,
    group: &str,
    policy: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let path = format!("/api/v1/groups/{group}/policies/{policy}/execute");
    send(server, reqwest::Method::POST, &path, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sets_the_desired_capacity_and_runs_policies() {
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(cfg.path().join("web.yaml"), CONFIG).unwrap();
    let cfg_path = cfg.path().to_owned();
    let server = TestServer::start_with(move |s| s.config = vec![cfg_path]).await;
    assert_eq!(
        get(&server, "/api/v1/groups/web").await["desired_capacity"],
        2
    );

    // SetDesiredCapacity: the group follows, with EC2's cause text in its activities.
    let (status, answer) = set_desired(&server, "web", json!({"desired_capacity": 4})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["desired_capacity"], 4);
    let cause = answer["activity"]["cause"].as_str().unwrap().to_owned();
    assert!(
        cause.ends_with(
            "a user request explicitly set group desired capacity changing the desired capacity from 2 to 4."
        ),
        "{cause}"
    );
    assert_eq!(answer["activity"]["status"], "Successful");
    let group = get(&server, "/api/v1/groups/web").await;
    assert_eq!(group["desired_capacity"], 4, "{group}");
    assert_eq!(group["last_activities"][0], answer["activity"], "{group}");
    let activities = get(&server, "/api/v1/groups/web/activities").await;
    assert_eq!(activities["activities"][0], answer["activity"]);

    // Outside [min, max]: EC2's ValidationError, naming the field; nothing changes.
    let (status, answer) = set_desired(&server, "web", json!({"desired_capacity": 9})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["field"], "desired_capacity");
    assert_eq!(
        answer["error"]["message"],
        "New SetDesiredCapacity value 9 is above max value 6 for the AutoScalingGroup."
    );
    let (status, answer) = set_desired(&server, "web", json!({"desired_capacity": -1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["field"], "body");
    let (status, answer) = set_desired(&server, "api", json!({"desired_capacity": 1})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(
        get(&server, "/api/v1/groups/web").await["desired_capacity"],
        4
    );

    // ExecutePolicy on the simple policy (no body: the defaults): 4 → 6, and its cooldown
    // starts, which honor_cooldown then respects.
    let (status, answer) = execute(&server, "web", "out", None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["desired_capacity"], 6);
    let cause = answer["activity"]["cause"].as_str().unwrap();
    assert!(
        cause.ends_with(
            "a user request executed policy out changing the desired capacity from 4 to 6."
        ),
        "{cause}"
    );
    assert_eq!(
        get(&server, "/api/v1/groups/web").await["desired_capacity"],
        6
    );
    let (status, answer) = set_desired(
        &server,
        "web",
        json!({"desired_capacity": 3, "honor_cooldown": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["field"], "honor_cooldown");
    let (status, answer) =
        execute(&server, "web", "out", Some(json!({"honor_cooldown": true}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    // By default the cooldown does not hold an operator back.
    let (status, answer) = set_desired(&server, "web", json!({"desired_capacity": 3})).await;
    assert_eq!(
        (status, &answer["desired_capacity"]),
        (StatusCode::OK, &json!(3))
    );

    // A step policy needs metric_value and breach_threshold; target tracking cannot run;
    // unknown policies are 404.
    let (status, answer) =
        execute(&server, "web", "steps", Some(json!({"metric_value": 80}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["field"], "breach_threshold");
    let (status, answer) = execute(
        &server,
        "web",
        "steps",
        Some(json!({"metric_value": 80, "breach_threshold": 70})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["desired_capacity"], 5);
    let (status, answer) = execute(&server, "web", "track", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["field"], "policy");
    let (status, answer) = execute(&server, "web", "nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nope"),
        "{answer}"
    );

    // Every request is in the audit trail, refused ones too, with its parameters.
    let audit = get(&server, "/api/v1/audit?limit=100").await;
    let events = audit["events"].as_array().unwrap();
    let find = |action: &str, target: &str, outcome: &str| {
        events
            .iter()
            .find(|e| e["action"] == action && e["target"] == target && e["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no {action} {target} {outcome} in {audit}"))
    };
    let set = find("set_desired_capacity", "web", "success");
    assert_eq!(set["parameters"]["honor_cooldown"], false);
    find("set_desired_capacity", "web", "failure");
    let run = find("execute_policy", "web/steps", "success");
    assert_eq!(run["parameters"]["metric_value"], 80.0, "{run}");
    find("execute_policy", "web/nope", "failure");
}
