//! Hostile input to `thermostat backtest` and `thermostat simulate` (issue 15, finding 11)
//! through the real binary: rows and flags at the ends of `i64`, ranges beyond the replay
//! limit, `--data /dev/zero`, and a large file, each with its exit code and message, and the
//! child's peak memory (`VmHWM`, sampled from `/proc/<pid>/status` while it runs).

use std::path::Path;

/// An alarm on `App/Load`, which the CSVs below feed.
const ALARM: &str = "alarms:
  - name: busy
    namespace: App
    metric_name: Load
    statistic: Average
    period_seconds: 60
    evaluation_periods: 1
    threshold: 50
    comparison_operator: GreaterThanThreshold
";
const HEADER: &str = "timestamp,namespace,metric_name,dimensions,value\n";
/// 2020-09-13T12:26:00Z in milliseconds, a multiple of 60 s: the rows below start there
/// (row times must be plausible, from 2000 to a year from now: issue 17).
const BASE_MS: i64 = 1_599_999_960_000;
/// [`BASE_MS`] in seconds, for `--from`/`--to`.
const BASE_S: i64 = BASE_MS / 1000;

use super::procfs::{Run, run_thermostat as run};

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// Runs `backtest` and `simulate` with the same arguments.
fn both(rest: &[&str]) -> [(&'static str, Run); 2] {
    ["backtest", "simulate"].map(|cmd| {
        let mut args = vec![cmd];
        args.extend_from_slice(rest);
        (cmd, run(&args))
    })
}

/// Peak memory a replay that fails at once may reach: the binary's own footprint.
const SMALL_PEAK_KIB: u64 = 64 * 1024;

/// Finding 11: a row at i64::MAX milliseconds made the replay loop forever, one at i64::MIN
/// panicked. A row the store cannot represent is refused with its line number, exit code 1.
#[test]
fn rows_that_cannot_be_represented_name_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "a.yaml", ALARM);
    for (row, says) in [
        (
            "9223372036854775807,App,Load,,1",
            "timestamp: must be between",
        ),
        (
            "-9223372036854775808,App,Load,,1",
            "timestamp: must be between",
        ),
        (
            "99999999999999999999999,App,Load,,1",
            "timestamp: must be between",
        ),
        (
            "+010000-01-01T00:00:00Z,App,Load,,1",
            "timestamp: must be RFC 3339",
        ),
        (
            &format!("{},App,Load,,NaN", BASE_MS + 60_000),
            "value: must be a finite number",
        ),
        (
            &format!("{},App,Load,,-inf", BASE_MS + 60_000),
            "value: must be a finite number",
        ),
    ] {
        let data = write(
            dir.path(),
            "d.csv",
            &format!(
                "{HEADER}{},App,Load,,1\n{row}\n{},App,Load,,2\n",
                BASE_MS + 60_000,
                BASE_MS + 120_000
            ),
        );
        for (cmd, r) in both(&["--config", &cfg, "--data", &data]) {
            assert_eq!(r.code, 1, "{cmd} {row}: {}", r.stderr);
            assert!(
                r.stderr.contains(&format!("d.csv: line 3: {says}")),
                "{cmd} {row}: {}",
                r.stderr
            );
            assert!(r.stdout.is_empty(), "{cmd} {row}: {}", r.stdout);
            assert!(r.peak_kib < SMALL_PEAK_KIB, "{cmd}: {} KiB", r.peak_kib);
        }
    }
    // A row at the last millisecond of year 9999 is refused as implausible (more than a
    // year from now), naming its line (issue 17), instead of being replayed...
    let data = write(
        dir.path(),
        "edge.csv",
        &format!("{HEADER}{BASE_MS},App,Load,,80\n9999-12-31T23:59:59Z,App,Load,,80\n"),
    );
    for (cmd, r) in both(&["--config", &cfg, "--data", &data]) {
        assert_eq!(r.code, 1, "{cmd}: {}", r.stderr);
        assert!(
            r.stderr
                .contains("edge.csv: line 3: timestamp: is not a plausible time"),
            "{cmd}: {}",
            r.stderr
        );
    }
    // ...and the end of what can be written is still replayed, without overflow, when the
    // flags ask for it.
    let empty = write(dir.path(), "empty.csv", HEADER);
    let edge = [
        "--config",
        &cfg,
        "--data",
        &empty,
        "--from",
        "9999-12-31T23:58:00Z",
        "--to",
        "9999-12-31T23:59:59Z",
    ];
    for (cmd, r) in both(&edge) {
        assert_eq!(r.code, 0, "{cmd}: {}", r.stderr);
        assert!(r.stdout.starts_with("2 evaluations"), "{cmd}: {}", r.stdout);
    }
}

/// Finding 11: `--to` at i64::MAX looped forever, `--from` at i64::MIN panicked. Flags are
/// checked before the data is read (here `/dev/zero`), naming the flag; a range longer than
/// the replay limit (400 days) is refused, also when it comes from the data's own span.
#[test]
fn extreme_flags_and_ranges_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "a.yaml", ALARM);
    for (flags, says) in [
        (
            &["--to", "9223372036854775807"][..],
            "--to: must be between",
        ),
        (&["--to", "9223372036854775"][..], "--to: must be between"),
        (
            &["--from", "-9223372036854775808"][..],
            "--from: must be between",
        ),
        (
            &["--from", "99999999999999999999"][..],
            "--from: must be between",
        ),
        (
            &["--from", "10000-01-01T00:00:00Z"][..],
            "--from: must be an RFC 3339 time",
        ),
        (
            &["--from", "0", "--to", "9999-12-31T23:59:59Z"][..],
            "--to: the range",
        ),
        (
            &["--from", "0", "--to", "34560001"][..],
            "--to: the range from 1970-01-01T00:00:00Z to 1971-02-05T00:00:01Z is longer than 400 days",
        ),
        (
            &["--from", "60", "--to", "0"][..],
            "--to: must not be before from",
        ),
    ] {
        let mut args = vec!["--config", &cfg, "--data", "/dev/zero"];
        args.extend_from_slice(flags);
        for (cmd, r) in both(&args) {
            assert_eq!(r.code, 1, "{cmd} {flags:?}: {}", r.stderr);
            assert!(r.stderr.starts_with(says), "{cmd} {flags:?}: {}", r.stderr);
            assert!(r.peak_kib < SMALL_PEAK_KIB, "{cmd}: {} KiB", r.peak_kib);
        }
    }
    // Exactly 400 days is allowed.
    let data = write(
        dir.path(),
        "d.csv",
        &format!("{HEADER}{},App,Load,,1\n", BASE_MS + 60_000),
    );
    let (from, to) = (BASE_S.to_string(), (BASE_S + 34_560_000).to_string());
    let r = run(&[
        "backtest", "--config", &cfg, "--data", &data, "--from", &from, "--to", &to,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("576001 evaluations"), "{}", r.stdout);
    // Data spanning more than 400 days, without --from/--to.
    let data = write(
        dir.path(),
        "long.csv",
        &format!(
            "{HEADER}{BASE_MS},App,Load,,1\n{},App,Load,,1\n",
            BASE_MS + 34_560_060_000
        ),
    );
    for (cmd, r) in both(&["--config", &cfg, "--data", &data]) {
        assert_eq!(r.code, 1, "{cmd}: {}", r.stderr);
        assert!(
            r.stderr.starts_with("--to: the range") && r.stderr.contains("without --from and --to"),
            "{cmd}: {}",
            r.stderr
        );
    }
}

/// Finding 11: `--data /dev/zero` read until memory ran out. Lines are read one at a time
/// up to 64 KiB: the replay ends at line 1 with exit code 1, within the binary's own memory.
#[test]
fn dev_zero_is_refused_at_line_1_within_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "a.yaml", ALARM);
    for (cmd, r) in both(&["--config", &cfg, "--data", "/dev/zero"]) {
        assert_eq!(r.code, 1, "{cmd}: {}", r.stderr);
        assert_eq!(
            r.stderr.trim_end(),
            "/dev/zero: line 1: line: is longer than the limit of 65536 bytes (a back-test CSV has one row a line)",
            "{cmd}"
        );
        assert!(
            r.peak_kib > 0 && r.peak_kib < SMALL_PEAK_KIB,
            "{cmd}: {} KiB",
            r.peak_kib
        );
    }
    // A line just past the limit after valid rows: refused at its line too.
    let long = format!(
        "{HEADER}{BASE_MS},App,Load,,1\n{BASE_MS},App,Load,{},1\n",
        "A=".repeat(40_000)
    );
    let data = write(dir.path(), "long-line.csv", &long);
    let r = run(&["backtest", "--config", &cfg, "--data", &data]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("long-line.csv: line 3: line: is longer than the limit"),
        "{}",
        r.stderr
    );
}

/// The CSV is streamed, not held: a file of 1,500,000 rows (about 28 MB) into one minute of
/// one series is replayed in less memory than the file's size (the probe saw about 450 bytes
/// a row held, which would be 675 MB here).
#[test]
fn a_large_csv_is_streamed_in_bounded_memory() {
    const ROWS: usize = 1_500_000;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "a.yaml", ALARM);
    let path = dir.path().join("big.csv");
    {
        use std::io::Write as _;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        f.write_all(HEADER.as_bytes()).unwrap();
        for i in 0..ROWS {
            writeln!(
                f,
                "{},App,Load,,{}",
                BASE_MS + 60_000 + i as i64 % 60_000,
                80 + i % 3
            )
            .unwrap();
        }
    }
    let file_kib = std::fs::metadata(&path).unwrap().len() / 1024;
    assert!(file_kib > 20 * 1024, "{file_kib} KiB");
    let data = path.display().to_string();
    let (from, to) = (BASE_S.to_string(), (BASE_S + 180).to_string());
    let r = run(&[
        "backtest", "--config", &cfg, "--data", &data, "--from", &from, "--to", &to, "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["evaluations"], 4);
    // Every row was read: the minute they fill is over the threshold.
    assert_eq!(doc["alarms"][0]["name"], "busy");
    assert_eq!(doc["alarms"][0]["final_state"], "ALARM");
    let reason = doc["alarms"][0]["transitions"][0]["reason"].to_string();
    assert!(reason.contains("[81.0 "), "{reason}");
    assert!(
        r.peak_kib < file_kib,
        "peak {} KiB for a file of {file_kib} KiB",
        r.peak_kib
    );
}

/// Rows are held in the store's windows, not as parsed rows: 200,000 rows, each in a
/// minute of its own (the costliest layout), add less than 300 bytes a row to the binary's
/// own footprint (measured: about 170; the probe saw about 450 before).
#[test]
fn rows_held_cost_bounded_memory_each() {
    const ROWS: u64 = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "a.yaml", ALARM);
    let empty = write(dir.path(), "empty.csv", HEADER);
    let mut csv = String::from(HEADER);
    for i in 0..ROWS {
        csv.push_str(&format!(
            "{},App,Load,,{}\n",
            BASE_MS as u64 + i * 60_000,
            i % 100
        ));
    }
    let data = write(dir.path(), "d.csv", &csv);
    drop(csv);
    let (from, to) = (BASE_S.to_string(), (BASE_S + 120).to_string());
    let args = |data: &str| {
        [
            "--config", &cfg, "--data", data, "--from", &from, "--to", &to,
        ]
        .map(str::to_owned)
    };
    for cmd in ["backtest", "simulate"] {
        let base = run(&[&[cmd][..], &args(&empty).each_ref().map(String::as_str)[..]].concat());
        assert_eq!(base.code, 0, "{cmd}: {}", base.stderr);
        let full = run(&[&[cmd][..], &args(&data).each_ref().map(String::as_str)[..]].concat());
        assert_eq!(full.code, 0, "{cmd}: {}", full.stderr);
        let per_row = full.peak_kib.saturating_sub(base.peak_kib) * 1024 / ROWS;
        assert!(
            per_row < 300,
            "{cmd}: {per_row} bytes a row ({} KiB against {} KiB)",
            full.peak_kib,
            base.peak_kib
        );
        // And the rows were read: the minutes evaluated hold data.
        assert!(full.stdout.contains("busy: "), "{cmd}: {}", full.stdout);
    }
}
