//! The driver's once-a-second sampler: the server's stats, the driver's own CPU and the
//! machine's, for the time-series chart and the noise warnings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::child::Control;
use crate::procstat;
use crate::recorder::Recorder;
use crate::results::{MachineSample, Sample};

/// Samples the server's stats, the driver's CPU and the machine once a second until `stop`.
pub(super) async fn sample(
    control: Control,
    recorder: Arc<Recorder>,
    server_cpu0: f64,
    driver_cpu0: f64,
    stop: CancellationToken,
) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    // The previous reading: when, the machine, the server process's CPU, the driver's CPU.
    let mut prev = (
        Instant::now(),
        procstat::machine_cpu(),
        None::<f64>,
        procstat::cpu_seconds(),
    );
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => break,
        }
        let Ok(st) = control.stats().await else {
            continue;
        };
        let (now, machine, driver_cpu) = (Instant::now(), procstat::machine_cpu(), procstat::cpu_seconds());
        let server_total = st.process.cpu_seconds;
        let driver_seconds = driver_cpu - prev.3;
        let machine_sample = match (prev.1, machine) {
            (Some(a), Some(b)) => {
                let busy = b.busy - a.busy;
                let server = prev.2.map_or(0.0, |s| server_total - s);
                MachineSample {
                    interval_s: now.duration_since(prev.0).as_secs_f64(),
                    cores,
                    busy_seconds: busy,
                    others_seconds: (busy - server - driver_seconds).max(0.0),
                    steal_seconds: b.steal - a.steal,
                    load_1m: procstat::load_average().unwrap_or(0.0),
                    driver_seconds,
                }
            }
            _ => MachineSample::default(),
        };
        // The first reading of the server's CPU has no interval before it to charge.
        let first = prev.2.is_none();
        prev = (now, machine, Some(server_total), driver_cpu);
        out.push(Sample {
            source: 0,
            t_s: recorder.since_start().unwrap_or_default().as_secs_f64(),
            delivered: recorder.delivered(),
            requests: st.requests_total,
            server_cpu_seconds: st.server_cpu_seconds() - server_cpu0,
            server_rss_bytes: st.process.rss_bytes,
            open_connections: st.counters.open_connections,
            held_long_polls: st.counters.held_long_polls,
            webhook_in_flight: st.webhook.in_flight,
            webhook_retries: st.webhook.retries,
            webhook_attempts: st.webhook.attempts,
            webhook_queued: st.webhook.queued,
            driver_cpu_seconds: driver_cpu - driver_cpu0,
            machine: if first {
                MachineSample::default()
            } else {
                machine_sample
            },
        });
    }
    out
}
