//! What the hostile tests measure, read from `/proc`: CPU time, resident memory and open
//! descriptors of a process (or of the test's own thread), and a run of the real binary with
//! its CPU time and peak memory. Resource bounds, never wall-clock speed.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// Clock ticks per second of the times in `/proc/<pid>/stat`.
fn clock_ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(100.0)
    })
}

/// `(state, user + system CPU seconds)` from a `stat` file (`/proc/<pid>/stat`,
/// `/proc/thread-self/stat`); `None` when it cannot be read (the process is gone).
fn stat_at(path: &str) -> Option<(char, f64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may hold spaces: fields are counted after its closing parenthesis
    // (state is field 3, utime 14, stime 15).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields[0].chars().next()?;
    let utime: f64 = fields[11].parse().ok()?;
    let stime: f64 = fields[12].parse().ok()?;
    Some((state, (utime + stime) / clock_ticks_per_second()))
}

/// `(state, user + system CPU seconds)` of a process; `None` once it has been reaped.
pub(crate) fn stat(pid: u32) -> Option<(char, f64)> {
    stat_at(&format!("/proc/{pid}/stat"))
}

/// CPU seconds of a process (panics if it is gone).
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    stat(pid)
        .unwrap_or_else(|| panic!("process {pid} is gone"))
        .1
}

/// CPU seconds (user + system) the calling thread has used.
pub(crate) fn thread_cpu_seconds() -> f64 {
    stat_at("/proc/thread-self/stat").unwrap().1
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`), in KiB; `None` once the process
/// has exited (a zombie has no memory).
pub(crate) fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resident memory of a live process, in bytes.
pub(crate) fn rss_bytes(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:").unwrap_or_else(|| panic!("no VmRSS for process {pid}")) * 1024
}

/// Descriptors a process holds open.
pub(crate) fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// What a finished `thermostat` run did and cost.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    /// CPU time (user + system) the process spent, in seconds.
    pub(crate) cpu_seconds: f64,
    /// Highest `VmHWM` seen while it ran, in KiB.
    pub(crate) peak_kib: u64,
}

/// Runs the real binary with `args`, sampling its CPU time and peak memory until it exits
/// (read while the finished child is still a zombie, so the final CPU time is seen). The
/// two-minute limit is only a safety net against a hang (the test then fails); nothing
/// asserts on elapsed time.
pub(crate) fn run_thermostat(args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_thermostat"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs the binary");
    let pipe = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = pipe(Box::new(child.stdout.take().unwrap()));
    let err = pipe(Box::new(child.stderr.take().unwrap()));
    let pid = child.id();
    let (mut cpu_seconds, mut peak_kib, mut polls) = (0.0, 0, 0);
    while let Some((state, cpu)) = stat(pid) {
        cpu_seconds = cpu;
        if let Some(kib) = status_kib(pid, "VmHWM:") {
            peak_kib = peak_kib.max(kib);
        }
        if state == 'Z' {
            break;
        }
        polls += 1;
        if polls > 60_000 {
            let _ = child.kill();
            let _ = child.wait();
            panic!("thermostat {args:?} did not finish (safety net)");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let status = child.wait().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        cpu_seconds,
        peak_kib,
    }
}
