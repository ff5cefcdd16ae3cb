//! The process's own CPU time and memory, read from the kernel (`/proc/self`), so that server
//! and driver load are measured, not guessed.

use serde::{Deserialize, Serialize};

/// One reading of this process's resource use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcStat {
    /// User + system CPU seconds since the process started.
    pub cpu_seconds: f64,
    /// Resident set size now, in bytes.
    pub rss_bytes: u64,
    /// Peak resident set size (VmHWM), in bytes.
    pub peak_rss_bytes: u64,
}

/// Reads `/proc/self/stat` and `/proc/self/status`; zeros where they cannot be read (non-Linux).
pub fn read() -> ProcStat {
    let mut st = ProcStat {
        cpu_seconds: cpu_seconds().unwrap_or(0.0),
        ..ProcStat::default()
    };
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        st.rss_bytes = status_kib(&status, "VmRSS:").unwrap_or(0) * 1024;
        st.peak_rss_bytes = status_kib(&status, "VmHWM:").unwrap_or(0) * 1024;
    }
    st
}

fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; the fields we want follow its closing paren.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, so 11 and 12 after the paren.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = rustix::param::clock_ticks_per_second() as f64;
    Some(ticks as f64 / hz)
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
}
