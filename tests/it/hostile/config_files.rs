//! Hostile input: configuration and settings files (issue 15, findings 9 and 12). Every test
//! goes through the real binary (`check`, `test`, `serve`) or the server's HTTP reload, and
//! asserts the outcome and, where the finding was a cost, the CPU time the process spent
//! (from `/proc/<pid>/stat`, read while the finished child is still a zombie), never a
//! wall-clock speed.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::process::ServerProcess;
use crate::util::TestServer;

/// One valid alarm, `{name}` replaced.
fn alarm(name: &str, threshold: u32) -> String {
    format!(
        "  - {{name: {name}, namespace: App, metric_name: M, statistic: Sum, period_seconds: 60, \
         evaluation_periods: 1, threshold: {threshold}, comparison_operator: GreaterThanThreshold}}\n"
    )
}

fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

use super::procfs::{cpu_seconds, run_thermostat as thermostat};

/// A plain HTTP/1.1 request with a JSON body: `(status, body)`.
fn http(addr: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(600))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    // The body may be chunked: the JSON is between the first `{` and the last `}`.
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) if a < b => serde_json::from_str(&body[a..=b]).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, json)
}

fn set_state(addr: &str, name: &str, value: &str, reason: &str) {
    let (status, body) = http(
        addr,
        "PUT",
        &format!("/api/v1/alarms/{name}/state"),
        Some(json!({"state_value": value, "state_reason": reason})),
    );
    assert_eq!(status, 200, "PUT state of {name}: {body}");
}

fn alarm_state(addr: &str, name: &str) -> Option<String> {
    let (status, body) = http(addr, "GET", &format!("/api/v1/alarms/{name}"), None);
    if status == 404 {
        return None;
    }
    assert_eq!(status, 200, "{body}");
    body["state"].as_str().map(str::to_owned)
}

#[test]
fn check_refuses_a_nul_byte_at_its_position_instead_of_dropping_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    // Before: "ok: 1 alarms" — the NUL in the comment ended the file, dropping alarm b.
    let text = format!(
        "alarms:\n{}# a comment \0 here\n{}",
        alarm("a", 1),
        alarm("b", 1)
    );
    let file = write(dir.path(), "nul.yaml", text);
    for command in ["check", "test"] {
        let r = thermostat(&[command, &file]);
        assert_eq!(r.code, 1, "{command}: {r:?}");
        assert!(
            r.stderr
                .contains(&format!("{file}:3:13: : U+0000 NUL is not allowed in YAML")),
            "{command}: {}",
            r.stderr
        );
    }
    // Other control characters, in a value, in a key and in a comment, with their columns.
    for (text, at, name) in [
        (
            "alarms:\n  - {name: \"x\u{1b}[31m\"}\n",
            "2:14",
            "U+001B ESC",
        ),
        ("al\u{7}arms: []\n", "1:3", "U+0007 BEL"),
        ("alarms: [] # \u{7f}\n", "1:14", "U+007F DEL"),
        (
            "alarms: [] # \u{85}\u{9b}\n",
            "1:15",
            "U+009B (a C1 control",
        ),
    ] {
        let file = write(dir.path(), "ctl.yaml", text);
        let r = thermostat(&["check", &file]);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(
            r.stderr.contains(&format!("{file}:{at}: : {name}")),
            "{name}: {}",
            r.stderr
        );
    }
    // Text that is not UTF-8 at all is refused with its position too.
    let file = write(dir.path(), "latin1.yaml", b"alarms: []\n# caf\xe9\n");
    let r = thermostat(&["check", &file]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("{file}:2:6: the file is not UTF-8")),
        "{}",
        r.stderr
    );
    // `serve --config` refuses to start on it (before binding anything).
    let data = tempfile::tempdir().unwrap();
    let nul = dir.path().join("nul.yaml").display().to_string();
    let r = thermostat(&[
        "serve",
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--data-dir",
        data.path().to_str().unwrap(),
        "--config",
        &nul,
    ]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains(":3:13: : U+0000 NUL"), "{}", r.stderr);
}

#[test]
fn check_finishes_on_symlink_loops_deep_trees_too_many_files_and_fifos() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cfg");
    std::fs::create_dir_all(cfg.join("sub")).unwrap();
    write(&cfg, "a.yaml", format!("alarms:\n{}", alarm("a", 1)));
    // Before: `check` and every reload ran forever.
    std::os::unix::fs::symlink(&cfg, cfg.join("sub/back")).unwrap();
    let r = thermostat(&["check", cfg.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "{}: a symbolic link loops back to {}",
            cfg.join("sub/back").display(),
            cfg.display()
        )),
        "{}",
        r.stderr
    );

    // Folders 20 deep: refused at the 17th level, which is not read.
    let deep = dir.path().join("deep");
    let mut bottom = deep.clone();
    for i in 0..20 {
        bottom = bottom.join(format!("d{i}"));
    }
    std::fs::create_dir_all(&bottom).unwrap();
    write(&bottom, "x.yaml", "alarms: [\n");
    let r = thermostat(&["check", deep.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("folders nested more than 16 levels below")
            && r.stderr.contains("/d16:"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("x.yaml"), "{}", r.stderr);

    // 10,000 files and their folder: one more than the limit.
    let many = dir.path().join("many");
    std::fs::create_dir(&many).unwrap();
    for i in 0..10_000 {
        std::fs::write(many.join(format!("f{i:05}.yaml")), "").unwrap();
    }
    let r = thermostat(&["check", many.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("more than 10000 YAML files and folders in the configuration (the limit)"),
        "{}",
        r.stderr
    );
    std::fs::remove_file(many.join("f00000.yaml")).unwrap();
    let r = thermostat(&["check", many.to_str().unwrap()]);
    assert_eq!(r.code, 0, "exactly at the limit: {r:?}");
    assert!(r.stdout.starts_with("ok: 0 alarms"), "{}", r.stdout);

    // A FIFO named like a YAML file would block the reader forever: refused unread.
    let fifo_dir = dir.path().join("fifo");
    std::fs::create_dir(&fifo_dir).unwrap();
    let fifo = fifo_dir.join("pipe.yaml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let r = thermostat(&["check", fifo_dir.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("{}: not a regular file", fifo.display())),
        "{}",
        r.stderr
    );
}

#[test]
fn nesting_bombs_and_huge_files_are_refused_with_a_position_in_bounded_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let mb = 1 << 20;
    let flow = format!("alarms: {}{}\n", "[".repeat(mb / 2), "]".repeat(mb / 2));
    let block = format!("alarms:\n  {}x\n", "- ".repeat(mb / 2));
    let maps: String = (0..1_400)
        .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
        .collect();
    for (name, text, at) in [
        // On one line the parser reads ahead: it stops at the 256th `[` (column 264).
        ("flow.yaml", flow, ":1:264:"),
        // Block style crashed `check` with a stack overflow before.
        ("block.yaml", block, ":2:"),
        ("maps.yaml", maps, ":65:"),
    ] {
        let file = write(dir.path(), name, &text);
        let r = thermostat(&["check", &file]);
        assert_eq!(r.code, 1, "{name}: {r:?}");
        assert!(
            r.stderr.contains(at) && r.stderr.contains("nested more than 64 levels deep"),
            "{name}: {}",
            r.stderr
        );
        assert!(
            r.cpu_seconds < 2.0,
            "{name}: {} s of CPU for {} bytes",
            r.cpu_seconds,
            text.len()
        );
    }

    // A settings file: the same checks, before its (quadratic) parser sees it.
    let data = tempfile::tempdir().unwrap();
    let settings = write(
        dir.path(),
        "settings.yaml",
        format!("config: {}{}\n", "[".repeat(mb / 2), "]".repeat(mb / 2)),
    );
    let r = thermostat(&[
        "serve",
        "--data-dir",
        data.path().to_str().unwrap(),
        "--settings",
        &settings,
    ]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "{settings}:1:264: maps and lists are nested more than 64 levels deep"
        )),
        "{}",
        r.stderr
    );
    assert!(r.cpu_seconds < 2.0, "{} s of CPU", r.cpu_seconds);

    // A file beyond 16 MiB is not read whole, let alone parsed.
    let big = write(dir.path(), "big.yaml", vec![b'#'; (16 << 20) + 1]);
    let r = thermostat(&["check", &big]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("{big}: the file is larger than 16777216 bytes")),
        "{}",
        r.stderr
    );
}

#[test]
fn zero_limits_in_a_settings_file_or_a_flag_stop_serve_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let settings = write(dir.path(), "s.yaml", "max_streams: 0\n");
    let r = thermostat(&[
        "serve",
        "--data-dir",
        data.to_str().unwrap(),
        "--settings",
        &settings,
    ]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("max_streams"), "{}", r.stderr);
    let r = thermostat(&[
        "serve",
        "--data-dir",
        data.to_str().unwrap(),
        "--request-body-timeout-seconds",
        "0",
    ]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("request_body_timeout_seconds"),
        "{}",
        r.stderr
    );
    // A NUL in a settings file is an error at its position, not the end of the file.
    let settings = write(dir.path(), "nul.yaml", "# \0\nmax_streams: 0\n");
    let r = thermostat(&[
        "serve",
        "--data-dir",
        data.to_str().unwrap(),
        "--settings",
        &settings,
    ]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains(&format!("{settings}:1:3: U+0000 NUL")),
        "{}",
        r.stderr
    );
}

/// 20,000 alarms in one file, thresholds from `base`.
fn big_config(dir: &Path, base: u32) {
    let mut text = String::from("alarms:\n");
    for i in 0..20_000 {
        text.push_str(&alarm(&format!("a{i}"), base + i));
    }
    write(dir, "big.yaml", text);
}

#[test]
fn a_big_reload_does_not_block_set_alarm_state_and_an_unchanged_one_costs_little() {
    let cfg = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    big_config(cfg.path(), 0);
    let server = ServerProcess::start(data.path(), &["--config", cfg.path().to_str().unwrap()]);
    let http_addr = server.http.clone();
    let pid = server.child.id();
    set_state(&http_addr, "a7", "ALARM", "before the reload");

    // Unchanged files: nothing is validated or swapped. Before: ~64 s of CPU (debug build)
    // under the engine's lock.
    let before = cpu_seconds(pid);
    let (status, body) = http(&http_addr, "POST", "/api/v1/reload", None);
    let cpu = cpu_seconds(pid) - before;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["alarms"], 20_000, "{body}");
    assert_eq!(body["changed"].as_array().map(Vec::len), Some(0), "{body}");
    assert!(cpu < 2.0, "an unchanged reload cost {cpu} s of CPU");
    eprintln!("unchanged reload of 20,000 alarms: {cpu:.2} s of CPU");

    // Every threshold changes: the whole set is re-validated and every alarm updated.
    big_config(cfg.path(), 1);
    let done = Arc::new(AtomicBool::new(false));
    let reload = {
        let (addr, done) = (http_addr.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let r = http(&addr, "POST", "/api/v1/reload", None);
            done.store(true, Ordering::SeqCst);
            r
        })
    };
    server.wait_log("Reading the configuration to reload it.");
    let before = cpu_seconds(pid);
    let (mut puts, mut before_the_reload) = (0, 0);
    while !done.load(Ordering::SeqCst) {
        puts += 1;
        let value = if puts % 2 == 0 { "OK" } else { "ALARM" };
        set_state(
            &http_addr,
            "a7",
            value,
            &format!("during the reload ({puts})"),
        );
        // This PUT was issued after the reload began and answered before it was.
        if !done.load(Ordering::SeqCst) {
            before_the_reload += 1;
        }
    }
    let (status, body) = reload.join().unwrap();
    let cpu = cpu_seconds(pid) - before;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"].as_array().map(Vec::len), Some(20_000));
    assert!(
        before_the_reload >= 1,
        "no SetAlarmState completed while the reload ran ({puts} issued)"
    );
    eprintln!(
        "changed reload of 20,000 alarms: {cpu:.2} s of CPU; {before_the_reload} SetAlarmState \
         calls answered while it ran"
    );
    // The last state set survived the swap: a changed alarm keeps its state value.
    let last = if puts % 2 == 0 { "OK" } else { "ALARM" };
    assert_eq!(alarm_state(&http_addr, "a7").as_deref(), Some(last));
}

#[test]
fn serve_refuses_an_empty_configuration_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let data = dir.path().join("data");
    let r = thermostat(&[
        "serve",
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
        "--config",
        empty.to_str().unwrap(),
    ]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "the configuration at {} defines no alarms and no scaling groups; refusing to \
             delete every alarm",
            empty.display()
        )) && r.stderr.contains("allow_empty_config: true"),
        "{}",
        r.stderr
    );
    // Allowed by the flag, it serves with no alarms.
    let server = ServerProcess::start(
        &data,
        &["--config", empty.to_str().unwrap(), "--allow-empty-config"],
    );
    let (status, body) = http(&server.http, "GET", "/api/v1/alarms", None);
    assert_eq!(status, 200);
    assert_eq!(body["alarms"], json!([]));
}

const GROUP_ONLY: &str = "scaling_groups:\n  - name: web\n    backend: simulated\n    min_size: 1\n    max_size: 4\n    desired_capacity: 1\n";

#[tokio::test]
async fn a_reload_that_would_delete_every_alarm_is_refused_and_state_kept() {
    let cfg = tempfile::tempdir().unwrap();
    let file = write(cfg.path(), "a.yaml", format!("alarms:\n{}", alarm("a", 1)));
    let path = cfg.path().to_owned();
    let server = TestServer::start_with(move |s| s.config = vec![path]).await;
    let addr = server.running.http_addr.to_string();
    let reload = |addr: String| async move {
        tokio::task::spawn_blocking(move || http(&addr, "POST", "/api/v1/reload", None))
            .await
            .unwrap()
    };
    crate::util::set_alarm_state(&addr, "a", "ALARM", "paged").await;

    // The folder emptied (a deploy gone wrong): refused, alarm and state kept.
    std::fs::remove_file(&file).unwrap();
    let (status, body) = reload(addr.clone()).await;
    assert_eq!(status, 400, "{body}");
    let errors = body["error"]["errors"].to_string();
    assert!(
        errors.contains("defines no alarms and no scaling groups; refusing to delete every alarm"),
        "{body}"
    );
    // Only scaling groups left: the alarms would all go, so it is refused too.
    write(cfg.path(), "g.yaml", GROUP_ONLY);
    let (status, body) = reload(addr.clone()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["errors"]
            .to_string()
            .contains("defines no alarms;"),
        "{body}"
    );
    // A file with a NUL byte: refused with its position, nothing dropped.
    let nul = write(
        cfg.path(),
        "a.yaml",
        format!("alarms:\n{}#\0\n{}", alarm("a", 1), alarm("b", 1)),
    );
    let (status, body) = reload(addr.clone()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["errors"]
            .to_string()
            .contains(&format!("{nul}:3:2: : U+0000 NUL")),
        "{body}"
    );
    let a = crate::util::get_json(&addr, "/api/v1/alarms").await;
    let names: Vec<&str> = a["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a"]);
    assert_eq!(a["alarms"][0]["state"], "ALARM");
}

#[tokio::test]
async fn allow_empty_config_accepts_a_reload_without_alarms_and_groups_only_starts() {
    let cfg = tempfile::tempdir().unwrap();
    let file = write(cfg.path(), "a.yaml", format!("alarms:\n{}", alarm("a", 1)));
    let path = cfg.path().to_owned();
    let server = TestServer::start_with(move |s| {
        s.config = vec![path];
        s.allow_empty_config = true;
    })
    .await;
    let addr = server.running.http_addr.to_string();
    std::fs::remove_file(&file).unwrap();
    let (status, body) = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || http(&addr, "POST", "/api/v1/reload", None)
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["removed"], json!(["a"]), "{body}");
    let a = crate::util::get_json(&addr, "/api/v1/alarms").await;
    assert_eq!(a["alarms"], json!([]));

    // A configuration of scaling groups only is legitimate at start, without the setting.
    let groups = tempfile::tempdir().unwrap();
    write(groups.path(), "g.yaml", GROUP_ONLY);
    let path = groups.path().to_owned();
    let server = TestServer::start_with(move |s| s.config = vec![path]).await;
    let g = crate::util::get_json(server.running.http_addr, "/api/v1/groups").await;
    assert!(g.to_string().contains("\"web\""), "{g}");
}
