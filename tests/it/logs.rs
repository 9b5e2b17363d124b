//! Log output: colour only on a terminal.

use std::io::BufRead as _;
use std::process::{Command, Stdio};

/// Logs redirected to a pipe (a file, a collector) carry no ANSI escape codes, even with a
/// terminal type in the environment that would make a naive check colour them.
#[test]
fn redirected_text_logs_have_no_escape_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_thermostat"))
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--log-format",
            "text",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env("TERM", "xterm-256color")
        .env("CLICOLOR_FORCE", "1")
        .env_remove("NO_COLOR")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.unwrap();
        let serving = line.contains("Thermostat is serving");
        seen.push(line);
        if serving {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = seen.join("\n");
    assert!(
        text.contains("Thermostat is serving"),
        "the server did not start: {text}"
    );
    assert!(text.contains("INFO"), "the level is still printed: {text}");
    assert!(
        !text.contains('\u{1b}'),
        "escape codes in redirected logs: {text:?}"
    );
}
