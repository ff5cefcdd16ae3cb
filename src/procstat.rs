//! The process's own CPU time and memory, read from the kernel, so that server and driver load
//! are measured, not guessed.
//!
//! CPU time comes from `CLOCK_PROCESS_CPUTIME_ID`, which the kernel keeps in nanoseconds
//! (the scheduler's accounting), not from `/proc/self/stat`, whose 10 ms ticks would turn a
//! few hundred events' worth of CPU into a handful of steps. Memory comes from
//! `/proc/self/status`.

use serde::{Deserialize, Serialize};

/// One reading of this process's resource use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcStat {
    /// User + system CPU seconds since the process started (nanosecond resolution).
    pub cpu_seconds: f64,
    /// Resident set size now, in bytes.
    pub rss_bytes: u64,
    /// Peak resident set size (VmHWM), in bytes.
    pub peak_rss_bytes: u64,
}

/// Reads the process CPU clock and `/proc/self/status`; memory is zero where it cannot be
/// read (non-Linux).
pub fn read() -> ProcStat {
    let mut st = ProcStat {
        cpu_seconds: cpu_seconds(),
        ..ProcStat::default()
    };
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        st.rss_bytes = status_kib(&status, "VmRSS:").unwrap_or(0) * 1024;
        st.peak_rss_bytes = status_kib(&status, "VmHWM:").unwrap_or(0) * 1024;
    }
    st
}

/// CPU seconds this process has used, user and system, from `CLOCK_PROCESS_CPUTIME_ID`.
pub fn cpu_seconds() -> f64 {
    seconds(rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime))
}

/// CPU nanoseconds the calling thread has used, from `CLOCK_THREAD_CPUTIME_ID`.
pub fn thread_cpu_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The resolution the kernel claims for the process CPU clock, in ns (1 on current Linux).
pub fn cpu_resolution_ns() -> u64 {
    let ts = rustix::time::clock_getres(rustix::time::ClockId::ProcessCPUTime);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn seconds(ts: rustix::time::Timespec) -> f64 {
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let st = super::read();
        assert!(st.rss_bytes > 0, "{st:?}");
        assert!(st.peak_rss_bytes >= st.rss_bytes);
        let busy_until = std::time::Instant::now() + std::time::Duration::from_millis(50);
        while std::time::Instant::now() < busy_until {}
        assert!(super::read().cpu_seconds > 0.0);
    }

    #[test]
    fn cpu_is_read_finer_than_a_scheduler_tick() {
        // 200 µs of this thread's CPU, a fiftieth of the 10 ms tick /proc/self/stat counts
        // in: the process clock must see it (a tick counter would mostly read 0), and not
        // as a whole number of ticks.
        let before = super::cpu_seconds();
        let t0 = super::thread_cpu_ns();
        while super::thread_cpu_ns() - t0 < 200_000 {
            std::hint::spin_loop();
        }
        let used = super::cpu_seconds() - before;
        assert!(used >= 200e-6, "{used}");
        assert!(!((used * 1e9) as u64).is_multiple_of(10_000_000), "{used}");
        assert!(
            super::cpu_resolution_ns() <= 1_000,
            "{}",
            super::cpu_resolution_ns()
        );
    }
}
