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
    /// How often the process's threads blocked and were woken again (voluntary context
    /// switches, summed over the threads alive now): a worker thread parks each time it runs
    /// out of work, so this counts the wake-ups that idle moments cost. Zero where it cannot
    /// be read (non-Linux) and in readings from before it was recorded.
    #[serde(default)]
    pub voluntary_switches: u64,
    /// How often the scheduler took a core from the process's threads while they could
    /// still run (involuntary context switches, summed as above): what other processes on
    /// the machine, such as a load driver beside the server, cost it in preemptions.
    #[serde(default)]
    pub involuntary_switches: u64,
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
    (st.voluntary_switches, st.involuntary_switches) = context_switches();
    st
}

/// The voluntary and involuntary context switches of this process's threads, from each
/// thread's `/proc/self/task/TID/status` (the process's own status file counts its first
/// thread alone). A thread that has exited no longer counts; the server's worker threads live
/// as long as it does.
fn context_switches() -> (u64, u64) {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (0, 0);
    };
    let mut sum = (0, 0);
    for status in tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
    {
        sum.0 += status_number(&status, "voluntary_ctxt_switches:").unwrap_or(0);
        sum.1 += status_number(&status, "nonvoluntary_ctxt_switches:").unwrap_or(0);
    }
    sum
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

/// The whole machine's CPU time since boot, all cores together, from `/proc/stat` (which
/// counts in clock ticks, `USER_HZ`: 10 ms on most kernels).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MachineCpu {
    /// Seconds spent running anything: user, nice, system, interrupts.
    pub busy: f64,
    /// Seconds a hypervisor ran something else while this machine wanted to run (steal).
    pub steal: f64,
    /// Every second of every core: busy, idle, waiting on I/O, stolen.
    pub total: f64,
    /// One clock tick, seconds: the resolution of the figures above.
    pub tick: f64,
}

/// Reads `/proc/stat`'s `cpu` line; None where there is none (not Linux).
pub fn machine_cpu() -> Option<MachineCpu> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse_machine_cpu(&stat, rustix::param::clock_ticks_per_second())
}

fn parse_machine_cpu(stat: &str, ticks_per_second: u64) -> Option<MachineCpu> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    let busy = at(0) + at(1) + at(2) + at(5) + at(6);
    let tick = 1.0 / ticks_per_second.max(1) as f64;
    Some(MachineCpu {
        busy: busy as f64 * tick,
        steal: at(7) as f64 * tick,
        total: (busy + at(3) + at(4) + at(7)) as f64 * tick,
        tick,
    })
}

/// The 1-minute load average from `/proc/loadavg`.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn seconds(ts: rustix::time::Timespec) -> f64 {
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// The value of a `/proc/.../status` line that starts with `key`.
fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    Some(line[key.len()..].trim())
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    status_field(status, key)?
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn status_number(status: &str, key: &str) -> Option<u64> {
    status_field(status, key)?.parse().ok()
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
    fn a_thread_that_sleeps_and_wakes_counts_as_voluntary_switches() {
        // Each sleep blocks this thread and the timer wakes it: at least one voluntary switch
        // each; and the process's sum counts this thread's among its threads'.
        let own = || {
            let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
            super::status_number(&status, "voluntary_ctxt_switches:").unwrap()
        };
        let before = own();
        for _ in 0..20 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let after = own();
        assert!(after >= before + 20, "{before} then {after}");
        assert!(super::read().voluntary_switches >= after);
    }

    #[test]
    fn the_machines_cpu_line_in_seconds() {
        let stat = "cpu  100 20 30 800 40 5 5 10 7 0\ncpu0 50 10 15 400 20 2 3 5 3 0\n";
        let m = super::parse_machine_cpu(stat, 100).unwrap();
        assert!((m.busy - 1.60).abs() < 1e-9, "{m:?}");
        assert!((m.steal - 0.10).abs() < 1e-9, "{m:?}");
        assert!((m.total - 10.10).abs() < 1e-9, "{m:?}");
        assert_eq!(m.tick, 0.01);
        assert!(super::parse_machine_cpu("intr 5\n", 100).is_none());
        let here = super::machine_cpu().expect("Linux has /proc/stat");
        assert!(here.total >= here.busy && here.busy > 0.0, "{here:?}");
        assert!(super::load_average().is_some());
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
