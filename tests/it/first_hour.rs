//! Issue 17, "the first hour": the commands README.md and docs/*.md show work as written, from
//! the repository root, on a machine with no cloud account and no secret, through the real
//! binary. `examples/` runs as it is; `production-examples/` names every secret it needs, and
//! `check` says which are missing where `serve` refuses to start, listing all of them at once
//! and leaving no data directory behind. Back-test data cannot be misread: seconds and
//! milliseconds are told apart, a file mixing them or holding a 1970 time is refused naming
//! the row, and each alarm's data rows are counted.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The repository root: the documented commands run from there.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Variables a configuration may need, removed from the children's environment so that they
/// see what a fresh machine sees (`HOME` is a new, empty folder: no `~/.aws`).
const MACHINE_VARS: &[&str] = &[
    "SMTP_PASSWORD",
    "SLACK_HOOK_SECRET",
    "PAGERDUTY_ROUTING_KEY",
    "AUDIT_HOOK_SECRET",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_ENDPOINT_URL",
    "RUST_LOG",
];

/// The secrets `production-examples/` names, with dummy values.
const PRODUCTION_SECRETS: &[(&str, &str)] = &[
    ("SMTP_PASSWORD", "dummy"),
    ("SLACK_HOOK_SECRET", "dummy"),
    ("PAGERDUTY_ROUTING_KEY", "dummy"),
    ("AUDIT_HOOK_SECRET", "dummy"),
];

/// `thermostat ARGS` from the repository root on a fresh machine, plus `env`.
fn fresh(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_thermostat"));
    c.current_dir(root()).args(args).env("HOME", home);
    for v in MACHINE_VARS {
        c.env_remove(v);
    }
    c.envs(env.iter().copied());
    c
}

/// Runs it to the end: exit code, stdout, stderr.
fn run(home: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = fresh(home, args, env).output().expect("runs the binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// No count of one is followed by a plural noun ("1 transitions").
fn assert_singular_after_one(out: &str) {
    for noun in [
        "alarms",
        "composite alarms",
        "tests",
        "scaling groups",
        "evaluations",
        "transitions",
        "data rows",
        "activities",
        "notifications",
        "warnings",
        "requirements",
        "problems",
    ] {
        let bad = format!("1 {noun}");
        for (i, _) in out.match_indices(&bad) {
            let before = out[..i].chars().next_back();
            assert!(
                before.is_none_or(|c| !c.is_ascii_digit()),
                "{bad:?} in:\n{out}"
            );
        }
    }
}

/// The text at `line:column` (1-based, in characters) of `file`.
fn text_at(file: &Path, line: usize, column: usize) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let l = text.lines().nth(line - 1).unwrap();
    l.chars().skip(column - 1).collect()
}

/// Checks a `file:line:column: path: LEVEL: message` line: the file, and that its position
/// points at `at` (the value the message is about). Returns the message.
fn positioned<'a>(line: &'a str, level: &str, at: &str) -> &'a str {
    let mut parts = line.splitn(6, ':');
    let file = parts.next().unwrap();
    let l: usize = parts.next().unwrap().parse().unwrap();
    let c: usize = parts.next().unwrap().parse().unwrap();
    let _path = parts.next().unwrap();
    assert_eq!(parts.next().unwrap().trim(), level, "{line}");
    let message = parts.next().unwrap().trim();
    let found = text_at(&root().join(file), l, c);
    assert!(
        found.starts_with(at),
        "{line}: the position points at {found:?}, not {at:?}"
    );
    message
}

#[test]
fn check_examples_is_clean_and_production_examples_name_every_missing_secret() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();

    // README: `thermostat check examples/` and `thermostat test examples/`, as written.
    let (code, out, err) = run(home, &["check", "examples/"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.is_empty(),
        "no warning for the runnable examples: {err}"
    );
    assert!(
        out.starts_with("ok: ") && out.contains(" 1 composite alarm, "),
        "{out}"
    );
    assert_singular_after_one(&out);
    let (code, out, err) = run(home, &["test", "examples/"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("; 0 failed"), "{out}");
    // docs/demo.md: `thermostat serve --config examples/demo.yaml` (the file on its own).
    let (code, out, err) = run(home, &["check", "examples/demo.yaml"], &[]);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");

    // Without the secrets: a warning per variable at the position of its name, and one per
    // place that needs AWS credentials; exit 0.
    let (code, out, err) = run(home, &["check", "production-examples/"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = err.lines().collect();
    for (var, _) in PRODUCTION_SECRETS {
        let mine: Vec<&&str> = lines.iter().filter(|l| l.contains(var)).collect();
        assert_eq!(mine.len(), 1, "one warning for {var}:\n{err}");
        let message = positioned(mine[0], "warning", var);
        assert_eq!(
            message,
            format!(
                "the environment variable {var} is not set (thermostat serve refuses to start without it)"
            )
        );
        assert!(mine[0].starts_with("production-examples/notifications.yaml:"));
    }
    let aws: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("no AWS credentials found"))
        .collect();
    assert_eq!(
        aws.len(),
        3,
        "two SNS actions and one Auto Scaling group:\n{err}"
    );
    positioned(aws[0], "warning", "\"arn:aws:sns:");
    positioned(aws[2], "warning", "aws_autoscaling");
    assert_eq!(lines.len(), 7, "{err}");
    assert!(
        out.starts_with("ok: ") && out.ends_with(" (7 warnings)\n"),
        "{out}"
    );

    // --strict: the same lines as errors, exit 1.
    let (code, out, err) = run(home, &["check", "--strict", "production-examples/"], &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    let errors: Vec<&str> = err.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(errors.len(), 7, "{err}");
    assert!(
        err.ends_with(
            "check --strict: this machine does not meet 7 requirements of the configuration\n"
        ),
        "{err}"
    );

    // With every secret (and AWS credentials) set, even to dummy values: no warning.
    let mut env = PRODUCTION_SECRETS.to_vec();
    env.extend([
        ("AWS_ACCESS_KEY_ID", "dummy"),
        ("AWS_SECRET_ACCESS_KEY", "dummy"),
    ]);
    for args in [
        &["check", "production-examples/"][..],
        &["check", "--strict", "production-examples/"],
    ] {
        let (code, out, err) = run(home, args, &env);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
        assert!(err.is_empty(), "{args:?}: {err}");
        assert!(!out.contains("warning"), "{out}");
    }
    // AWS credentials in the shared file count too.
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(home.join(".aws/credentials"), "[default]\n").unwrap();
    let (code, _, err) = run(
        home,
        &["check", "--strict", "production-examples/"],
        PRODUCTION_SECRETS,
    );
    assert_eq!(code, 0, "{err}");
}

/// A `thermostat serve` child on loopback port 0 with a fresh environment; killed on drop.
struct Serve {
    child: std::process::Child,
    http: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_args<'a>(config: &'a str, data: &'a str) -> [&'a str; 11] {
    [
        "serve",
        "--config",
        config,
        "--data-dir",
        data,
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_examples_on_a_fresh_machine() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("thermostat-data");
    let data_s = data.display().to_string();
    // README: `thermostat serve --config examples/`, with no secret and no cloud account.
    let mut child = fresh(dir.path(), &serve_args("examples/", &data_s), &[])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut server = Serve {
        child,
        http: String::new(),
    };
    let mut log = Vec::new();
    while server.http.is_empty() {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the server starts; its log:\n{}", log.join("\n")));
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if v["fields"]["message"] == "Thermostat is serving." {
            server.http = v["fields"]["http"].as_str().unwrap().to_owned();
        }
        log.push(line);
    }
    assert!(
        !log.iter().any(|l| l.contains("requirement")),
        "examples/ needs nothing from the machine: {log:?}"
    );
    let ready = reqwest::get(format!("http://{}/readyz", server.http))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    // Every example alarm is there and gets evaluated: `maintenance` treats missing data as
    // not breaching, so its first evaluation (within 10 s) takes it to OK.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let doc = crate::util::get_json(&server.http, "/api/v1/alarms").await;
        let names: Vec<&str> = doc["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["name"].as_str())
            .collect();
        for want in [
            "web-high-cpu",
            "web-high-latency",
            "web-degraded",
            "web-low-cpu",
            "demo-cpu-high",
        ] {
            assert!(names.contains(&want), "{want} in {names:?}");
        }
        let maintenance = doc["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "maintenance")
            .unwrap();
        if maintenance["state"] == "OK" {
            break;
        }
        assert!(Instant::now() < deadline, "not evaluated: {maintenance}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let groups = crate::util::get_json(&server.http, "/api/v1/groups").await;
    assert_eq!(
        groups["groups"].as_array().map(Vec::len),
        Some(2),
        "{groups}"
    );
}

#[test]
fn serve_refuses_production_examples_listing_every_problem_and_leaves_no_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    // The AWS call fails at once and offline: no instance metadata, a region given.
    let offline = [
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_REGION", "eu-west-1"),
    ];
    // A data directory that does not exist yet, below a folder that does not either.
    let data = dir.path().join("new/thermostat-data");
    let data_s = data.display().to_string();
    let started = Instant::now();
    let (code, out, err) = run(
        &home,
        &serve_args("production-examples/", &data_s),
        &offline,
    );
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "refused at once: {:?}",
        started.elapsed()
    );
    // One message with every problem: the four variables at their positions, and the
    // Auto Scaling group that cannot be described.
    let message = err
        .lines()
        .skip_while(|l| !l.starts_with("error: "))
        .collect::<Vec<_>>();
    assert!(
        message[0].ends_with("5 problems (every one listed):"),
        "{err}"
    );
    for (var, _) in PRODUCTION_SECRETS {
        let line = message
            .iter()
            .find(|l| l.contains(var))
            .unwrap_or_else(|| panic!("{var} in {err}"));
        let line = line.trim_start();
        assert!(
            line.starts_with("production-examples/notifications.yaml:")
                && line.ends_with(&format!("the environment variable {var} is not set")),
            "{line}"
        );
        let mut parts = line.splitn(4, ':');
        let (file, l, c) = (
            parts.next().unwrap(),
            parts.next().unwrap().parse().unwrap(),
            parts.next().unwrap().parse().unwrap(),
        );
        assert!(text_at(&root().join(file), l, c).starts_with(var), "{line}");
    }
    assert!(
        message.iter().any(|l| l
            .trim_start()
            .starts_with("scaling group \"api\": EC2 Auto Scaling")),
        "{err}"
    );
    assert!(
        !dir.path().join("new").exists(),
        "the data directory (and the folder above it) this start created are removed"
    );

    // With the secrets set, only the group is left.
    let mut env = offline.to_vec();
    env.extend_from_slice(PRODUCTION_SECRETS);
    let (code, _, err) = run(&home, &serve_args("production-examples/", &data_s), &env);
    assert_ne!(code, 0);
    assert!(err.contains("1 problem (every one listed):"), "{err}");
    assert!(!err.contains("is not set"), "{err}");
    assert!(!dir.path().join("new").exists());

    // A data directory that existed before is kept, with what it held.
    let existing = dir.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("keep.txt"), "mine").unwrap();
    let existing_s = existing.display().to_string();
    let (code, _, err) = run(
        &home,
        &serve_args("production-examples/", &existing_s),
        &offline,
    );
    assert_ne!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(existing.join("keep.txt")).unwrap(),
        "mine"
    );
    // An invalid configuration never touches the data directory.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "alarms: 3\n").unwrap();
    let (code, _, err) = run(
        &home,
        &serve_args(&bad.display().to_string(), &data_s),
        &offline,
    );
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("the configuration is invalid"), "{err}");
    assert!(!dir.path().join("new").exists());
}

/// `examples/recorded.csv` with its RFC 3339 timestamps rewritten by `f` (header kept).
fn rewrite_times(f: impl Fn(usize, i64) -> String) -> String {
    let text = std::fs::read_to_string(root().join("examples/recorded.csv")).unwrap();
    let mut lines = text.lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    for (i, l) in lines.enumerate() {
        let (ts, rest) = l.split_once(',').unwrap();
        let ms = thermostat_alarms::timefmt::parse_time_checked(ts, 1000)
            .unwrap()
            .as_millis();
        out.push_str(&format!("{},{rest}\n", f(i + 2, ms)));
    }
    out
}

/// Data rows of a series in `examples/recorded.csv`.
fn rows_of(series: &str) -> usize {
    std::fs::read_to_string(root().join("examples/recorded.csv"))
        .unwrap()
        .lines()
        .filter(|l| l.contains(series))
        .count()
}

#[test]
fn the_readme_backtest_shows_alarms_and_rows_and_the_csv_cannot_be_misread() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    // README, as written.
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let example = "thermostat backtest --config examples/ --data examples/recorded.csv";
    assert!(readme.contains(example), "the README shows {example:?}");
    let args: Vec<&str> = example.split(' ').skip(1).collect();
    let (code, out, err) = run(home, &args, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(" -> ALARM "), "{out}");
    let cpu = rows_of(",AWS/EC2,CPUUtilization,AutoScalingGroupName=web,");
    let latency = rows_of(",App/Web,Latency,Service=web,");
    assert!(cpu > 100 && latency > 100);
    let header = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("{name} in {out}"))
            .to_owned()
    };
    assert!(
        header("web-high-cpu").contains(&format!("({cpu} data rows, ")),
        "{out}"
    );
    assert!(
        header("web-high-latency").contains(&format!("({latency} data rows, ")),
        "{out}"
    );
    assert!(
        header("maintenance")
            .contains("(no data rows of its series App/Ops/MaintenanceWindow, 1 transition)"),
        "{out}"
    );
    assert_singular_after_one(&out);
    let json_args: Vec<&str> = args.iter().copied().chain(["--format", "json"]).collect();
    let (code, reference, err) = run(home, &json_args, &[]);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&reference).unwrap();
    let alarms = doc["alarms"].as_array().unwrap();
    let by_name = |n: &str| alarms.iter().find(|a| a["name"] == n).unwrap();
    assert_eq!(by_name("web-high-cpu")["data_rows"], cpu);
    assert!(
        by_name("web-high-cpu")["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["new_state"] == "ALARM")
    );

    // The same data in Unix seconds and in Unix milliseconds: the same result.
    let seconds = dir.path().join("seconds.csv");
    std::fs::write(&seconds, rewrite_times(|_, ms| (ms / 1000).to_string())).unwrap();
    let millis = dir.path().join("millis.csv");
    std::fs::write(&millis, rewrite_times(|_, ms| ms.to_string())).unwrap();
    let (seconds, millis) = (seconds.display().to_string(), millis.display().to_string());
    let replay = |data: &str, extra: &[&str]| {
        let mut a = vec![
            "backtest",
            "--config",
            "examples/",
            "--data",
            data,
            "--format",
            "json",
        ];
        a.extend_from_slice(extra);
        run(home, &a, &[])
    };
    for (data, extra) in [
        (&seconds, &[][..]),
        (&millis, &[]),
        (&seconds, &["--time-unit", "s"]),
        (&millis, &["--time-unit", "ms"]),
    ] {
        let (code, out, err) = replay(data, extra);
        assert_eq!(code, 0, "{data} {extra:?}: {err}");
        assert_eq!(out, reference, "{data} {extra:?}");
    }
    // --time-unit wins over the magnitude: the wrong unit is refused at the first row.
    let (code, _, err) = replay(&seconds, &["--time-unit", "ms"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(&format!(
            "{seconds}: line 2: timestamp: is not a plausible time"
        )) && err.contains("read as Unix milliseconds: 1970-01-21"),
        "{err}"
    );
    let (code, _, err) = replay(&millis, &["--time-unit", "s"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(&format!("{millis}: line 2: timestamp: must be between"))
            && err.contains("read as Unix seconds"),
        "{err}"
    );

    // A file mixing the units is refused, naming the first row of the other unit.
    let mixed = dir.path().join("mixed.csv");
    std::fs::write(
        &mixed,
        rewrite_times(|line, ms| {
            if line >= 40 && line % 2 == 0 {
                ms.to_string()
            } else {
                (ms / 1000).to_string()
            }
        }),
    )
    .unwrap();
    let mixed = mixed.display().to_string();
    for cmd in ["backtest", "simulate"] {
        let (code, out, err) = run(home, &[cmd, "--config", "examples/", "--data", &mixed], &[]);
        assert_eq!(code, 1, "{cmd}: {out}");
        assert!(out.is_empty(), "{cmd}: {out}");
        assert!(
            err.starts_with(&format!(
                "{mixed}: line 40: timestamp: reads as Unix milliseconds"
            )) && err.contains("but line 2 holds Unix seconds: a file must use one unit"),
            "{cmd}: {err}"
        );
    }

    // A 1970 time (milliseconds written where seconds are read, or a typo) is refused,
    // naming its row, never replayed as 1970.
    let old = dir.path().join("old.csv");
    std::fs::write(
        &old,
        "timestamp,namespace,metric_name,dimensions,value\n2026-11-26T10:00:00Z,App/Web,Latency,Service=web,0.2\n60000,App/Web,Latency,Service=web,0.2\n",
    )
    .unwrap();
    let old = old.display().to_string();
    for cmd in ["backtest", "simulate"] {
        let (code, out, err) = run(home, &[cmd, "--config", "examples/", "--data", &old], &[]);
        assert_eq!(code, 1, "{cmd}: {out}");
        assert!(
            err.starts_with(&format!("{old}: line 3: timestamp: is not a plausible time: must be between 2000-01-01T00:00:00Z and "))
                && err.contains("(got \"60000\", read as Unix seconds: 1970-01-01T16:40:00Z)"),
            "{cmd}: {err}"
        );
    }
}

#[test]
fn simulate_and_one_tick_replays_speak_in_singular_and_plural() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let (code, out, err) = run(
        home,
        &[
            "simulate",
            "--config",
            "examples/",
            "--data",
            "examples/recorded.csv",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\ngroup web: desired "), "{out}");
    assert!(out.contains(" recorded (not sent)\n"), "{out}");
    assert!(out.contains("(0 activities)"), "{out}");
    assert_singular_after_one(&out);
    // One tick: "1 evaluation"; maintenance's first evaluation is "1 transition".
    let (code, out, err) = run(
        home,
        &[
            "backtest",
            "--config",
            "examples/",
            "--data",
            "examples/recorded.csv",
            "--from",
            "2026-11-26T10:05:00Z",
            "--to",
            "2026-11-26T10:05:00Z",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("1 evaluation\n"), "{out}");
    assert!(out.contains(", 1 transition)\n"), "{out}");
    assert_singular_after_one(&out);
}
