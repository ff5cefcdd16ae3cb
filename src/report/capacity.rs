//! For a simulation with `[server] p99_target`: the server each mode needs to keep it, as a
//! section of the report.

use super::{format_ms, Section};
use crate::results::Results;

const HEADER: [&str; 6] = [
    "mode",
    "cores needed",
    "within the costs' error",
    "p99 there",
    "memory for the clients",
    "models run",
];

/// `b` bytes in GiB, or MiB below one GiB.
fn bytes(b: f64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    if b >= 1024.0 * MIB {
        format!("{:.2} GiB", b / (1024.0 * MIB))
    } else {
        format!("{:.1} MiB", b / MIB)
    }
}

/// The capacity table, when the model searched for one.
pub fn section(r: &Results) -> Option<Section> {
    let sim = r.simulated.as_ref()?;
    let first = sim.capacity.first()?;
    let rows = sim
        .capacity
        .iter()
        .map(|c| {
            let cores = match c.cores {
                Some(n) => n.to_string(),
                None if c.lost > 0 => format!("none: {} deliveries lost with {}", c.lost, c.most_cores),
                None => format!("more than {}", c.most_cores),
            };
            let within = match c.within_error {
                Some(w) => {
                    let count =
                        |n: Option<u32>| n.map_or(format!("more than {}", c.most_cores), |n| n.to_string());
                    let (cheaper, dearer) = (count(w.cheaper), count(w.dearer));
                    let span = if cheaper == dearer {
                        cheaper
                    } else {
                        format!("{cheaper} to {dearer}")
                    };
                    format!("{span} (CPU ± {:.0}%)", w.cpu_error * 100.0)
                }
                None => "-".to_string(),
            };
            let p99 = match c.cores {
                Some(_) => format_ms(c.p99_ms),
                None => format!("{} with {} cores", format_ms(c.p99_ms), c.most_cores),
            };
            (
                c.mode,
                vec![
                    c.mode.to_string(),
                    cores,
                    within,
                    p99,
                    bytes(c.memory_bytes),
                    c.probes.to_string(),
                ],
            )
        })
        .collect();
    let lost = if sim.capacity.iter().any(|c| c.cores.is_none() && c.lost > 0) {
        " \"None\" means deliveries were lost even with the most cores, which no core count mends: clients \
         the server turns away (`max_connections`), or what a fault loses."
    } else {
        ""
    };
    Some(Section {
        id: "capacity",
        title: "The server each mode needs (simulated)",
        header: &HEADER,
        rows,
        note: format!(
            "For a p99 within {}: the fewest cores whose model keeps it with nothing lost (every event \
             delivered, or dead-lettered by the sender's own policy) and its cores busy at most 95% of the time, \
             each operation at the calibration's CPU, found by doubling the cores until one does and then halving \
             the gap to the count below (the search takes p99 to fall as cores are added). Within the costs' error: \
             the same search with every cost scaled alike so that the mode's CPU is one standard error of the \
             calibration's costs cheaper, and dearer (the error from the fit's covariance, as the CPU's own; \
             not how the machine's prices move between days), its share given of the CPU on the cores found, \
             not on the scenario's own. \"More than\" means \
             not even the most cores searched keep it: what is left is the mode's own delay (a poll interval, \
             a round trip, a retry schedule). Memory is what the clients hold on the server at the calibration's rates (a fixed \
             part and a part per connection held; for webhooks, per pooled connection, per endpoint and per attempt \
             a second), not the process's whole footprint.{lost}",
            format_ms(first.p99_target_ms)
        ),
    })
}
