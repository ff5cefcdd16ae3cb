//! Where a run happened (host, CPU, memory, OS, versions, commit, time), for measured and
//! simulated runs alike, and the open-file limit a measured run needs.

use crate::results::Environment;

/// Reads the environment of this process.
pub fn capture() -> Environment {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let meminfo = read("/proc/meminfo");
    let kib = |key: &str| {
        meminfo
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    let os_name = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| std::env::consts::OS.to_string());
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_string();
    Environment {
        hostname: read("/proc/sys/kernel/hostname").trim().to_string(),
        cpu_model,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_bytes: kib("MemTotal:"),
        memory_available_bytes: kib("MemAvailable:"),
        open_files_limit: rustix::process::getrlimit(rustix::process::Resource::Nofile).current,
        os: if kernel.is_empty() {
            os_name
        } else {
            format!("{os_name}, Linux {kernel}")
        },
        pushpull_version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: git_commit(),
        started_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        clock: "CLOCK_MONOTONIC, server and driver on one host".to_string(),
        cpu_clock: format!(
            "CLOCK_PROCESS_CPUTIME_ID, resolution {} ns, read by the server and the driver each for itself",
            crate::procstat::cpu_resolution_ns()
        ),
        clock_offset_ns: None,
        clock_uncertainty_ns: None,
    }
}

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Descriptors `serve` keeps for itself (listeners, log, control connections, the webhook
/// sender's connections, `/proc` reads) out of its open-file limit.
pub const DESCRIPTORS_KEPT: u64 = 128;

/// Client connections `serve` holds by default: its open-file limit less
/// [`DESCRIPTORS_KEPT`], so that the next one is answered 503 rather than left unaccepted.
pub fn connections_held() -> u64 {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    soft.map_or(u64::MAX, |n| n.saturating_sub(DESCRIPTORS_KEPT).max(1))
}

/// Makes sure this process (and the server it starts, which inherits its limits) may open
/// `needed` files: raises the soft RLIMIT_NOFILE to the hard limit when it is lower, and
/// refuses, saying what to change, when even the hard limit is too low.
pub fn ensure_open_files(needed: u64, clients: u32) -> anyhow::Result<()> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX);
    if soft >= needed {
        return Ok(());
    }
    let hard = limit.maximum.unwrap_or(u64::MAX);
    anyhow::ensure!(
        hard >= needed,
        "{clients} clients need about {needed} open files in the driver and as many in the server, \
         and this machine lets a process open {hard} (RLIMIT_NOFILE's hard limit): raise it \
         (`ulimit -Hn`, or nofile in /etc/security/limits.conf) or run fewer clients"
    );
    let raised = rustix::process::Rlimit {
        current: Some(needed.min(hard)),
        maximum: limit.maximum,
    };
    setrlimit(Resource::Nofile, raised)
        .map_err(|e| anyhow::anyhow!("raising the open-file limit to {needed} (hard limit {hard}): {e}"))
}

/// Threads for `items` items of work: one per core, at most one per item.
pub fn threads_for(items: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items)
}

/// `f` of each of `items`, in their order, the items spread over this machine's cores (for
/// work that is single-threaded, each item apart from the others).
pub fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = threads_for(items.len()).max(1);
    let f = &f;
    let mut out: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    items
                        .iter()
                        .enumerate()
                        .skip(t)
                        .step_by(threads)
                        .map(|(i, item)| (i, f(item)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a thread of work panicked"))
            .collect()
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::DESCRIPTORS_KEPT;

    #[test]
    fn work_in_parallel_comes_back_in_the_items_order() {
        let items: Vec<u64> = (0..37).collect();
        let ran = std::sync::atomic::AtomicUsize::new(0);
        let squares = super::in_parallel(&items, |&n| {
            ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            n * n
        });
        assert_eq!(squares, items.iter().map(|n| n * n).collect::<Vec<_>>());
        assert_eq!(ran.into_inner(), 37, "each item once");
        assert!(super::in_parallel(&[] as &[u8], |&n| n).is_empty());
    }

    #[test]
    fn the_limit_run_raises_to_leaves_the_server_room_for_every_client() {
        // `run` raises the open-file limit to what the scenario needs; the server's default
        // `max_connections` is that less what it keeps, which must still hold every client.
        for count in [1u32, 15_000, 1_000_000] {
            let text =
                format!("name = \"d\"\nduration = \"1s\"\n[events]\nrate = 1\n[clients]\ncount = {count}\n");
            let s = crate::scenario::Scenario::parse(std::path::Path::new("d.toml"), &text).unwrap();
            assert!(
                s.descriptors_needed() - DESCRIPTORS_KEPT >= u64::from(count),
                "{count}"
            );
        }
    }
}
