//! The one clock every timestamp that crosses a process boundary is read from.
//!
//! Server and driver run on one host, and Linux's CLOCK_MONOTONIC is system-wide, so a
//! nanosecond stamp taken in the server's generator can be subtracted from one taken in the
//! driver's client. `std::time::Instant` cannot be serialized, and the wall clock can step.

use std::time::Duration;

/// Nanoseconds on CLOCK_MONOTONIC, comparable across processes on the same host.
pub fn now_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Seconds since the Unix epoch, for protocol fields that want wall time (webhook timestamps).
pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// Sleeps until the monotonic clock reads `deadline_ns` (returns at once if it has passed).
pub async fn sleep_until_ns(deadline_ns: u64) {
    let now = now_ns();
    if deadline_ns > now {
        tokio::time::sleep(Duration::from_nanos(deadline_ns - now)).await;
    }
}
