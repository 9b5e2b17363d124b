//! CPU time and peak memory of a process, from Linux's `/proc/<pid>/stat` and
//! `/proc/<pid>/status`.
//!
//! The parsers are pure functions of the files' text (tested below); [`ProcStat::read`] reads
//! the files of a live process.

use std::io;
use std::process::Command;
use std::sync::OnceLock;

/// What `/proc` says about one process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcStat {
    /// User plus system CPU time of every thread so far (`utime + stime`), seconds.
    pub cpu_seconds: f64,
    /// Peak resident set size (`VmHWM`), bytes.
    pub peak_rss_bytes: u64,
    /// Current resident set size (`VmRSS`), bytes.
    pub rss_bytes: u64,
}

impl ProcStat {
    /// Reads the process `pid` (`"self"` works too).
    ///
    /// # Errors
    /// The process is gone, or the files do not have the expected fields.
    pub fn read(pid: &str) -> io::Result<ProcStat> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
        let ticks = cpu_ticks(&stat).ok_or_else(|| bad("no utime/stime in /proc/<pid>/stat"))?;
        Ok(ProcStat {
            cpu_seconds: ticks as f64 / clock_ticks_per_second() as f64,
            peak_rss_bytes: status_kib(&status, "VmHWM")
                .ok_or_else(|| bad("no VmHWM in /proc/<pid>/status"))?
                * 1024,
            rss_bytes: status_kib(&status, "VmRSS")
                .ok_or_else(|| bad("no VmRSS in /proc/<pid>/status"))?
                * 1024,
        })
    }
}

/// `utime + stime` (fields 14 and 15, in clock ticks) from the text of `/proc/<pid>/stat`.
///
/// The second field, the command name in parentheses, may hold spaces and parentheses, so
/// fields are counted after its last `)`.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (state); utime is field 14, stime field 15.
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` line (`VmHWM:   123 kB`) of `/proc/<pid>/status`, in KiB.
pub fn status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.strip_prefix(':')?;
        v.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// Clock ticks per second of `/proc` CPU times (`getconf CLK_TCK`; 100, Linux's `USER_HZ`,
/// when `getconf` is unavailable).
pub fn clock_ticks_per_second() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_utime_plus_stime_even_with_odd_command_names() {
        let stat = "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                    250 75 0 0 20 0 9 0 12345 1000000 2000 18446744073709551615";
        assert_eq!(cpu_ticks(stat), Some(325));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn status_lines_are_read_in_kib() {
        let status =
            "Name:\tthermostat\nVmPeak:\t  900 kB\nVmHWM:\t   45312 kB\nVmRSS:\t 40000 kB\n";
        assert_eq!(status_kib(status, "VmHWM"), Some(45_312));
        assert_eq!(status_kib(status, "VmRSS"), Some(40_000));
        assert_eq!(status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let me = ProcStat::read("self").unwrap();
        assert!(me.peak_rss_bytes >= me.rss_bytes && me.rss_bytes > 0);
        assert!(me.cpu_seconds >= 0.0);
    }
}
