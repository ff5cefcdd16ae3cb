//! The machine's noise second by second, from the samples: a warning names the seconds in
//! which the driver ran out of its share of the cores, other processes took a fifth of the
//! machine, the machine was saturated, or a hypervisor took CPU away; one average over the
//! run would hide a bad second among quiet ones.

use crate::results::{MachineSample, Sample};

/// The driver at this share of its cores or more may have been the bottleneck.
pub const DRIVER_BUSY: f64 = 0.9;
/// Other processes at this share of the machine or more make the figures noisy.
pub const OTHERS_BUSY: f64 = MachineSample::NOISY_OTHERS;
/// The whole machine at this share or more was saturated.
pub const MACHINE_BUSY: f64 = 0.9;
/// A hypervisor taking this share of the machine or more.
pub const STEAL: f64 = 0.02;

/// What the samples say about the run's conditions.
#[derive(Debug, Default, PartialEq)]
pub struct Noise {
    /// One sentence per kind of trouble, naming its seconds.
    pub warnings: Vec<String>,
    /// Whether the driver or the machine ran out of CPU in any second.
    pub saturated: bool,
}

/// Judges every sample with a machine reading; `driver_share_cores` is the cores the driver
/// may use (half the machine when the server shares it).
pub fn judge(samples: &[Sample], driver_share_cores: f64) -> Noise {
    let read: Vec<(f64, &MachineSample)> = samples
        .iter()
        .filter(|s| s.machine.interval_s > 0.0)
        .map(|s| (s.t_s, &s.machine))
        .collect();
    let n = read.len();
    let mut noise = Noise::default();
    let mut flag = |share: &dyn Fn(&MachineSample) -> f64, limit: f64, what: &dyn Fn(f64) -> String| {
        let hits: Vec<(f64, f64)> = read
            .iter()
            .map(|(t, m)| (*t, share(m)))
            .filter(|(_, v)| *v >= limit)
            .collect();
        if hits.is_empty() {
            return false;
        }
        let worst = hits.iter().map(|h| h.1).fold(0.0, f64::max);
        noise.warnings.push(format!(
            "in {} of {n} seconds ({}) {}",
            hits.len(),
            at(&hits.iter().map(|h| h.0).collect::<Vec<_>>()),
            what(worst)
        ));
        true
    };
    let share = driver_share_cores.max(1e-9);
    let driver = flag(&|m| m.driver_share() / share, DRIVER_BUSY, &|w| {
        format!(
                "the driver used {:.0}% or more of its share of the cores ({} of {}), up to {:.0}%: it may have been \
                 the bottleneck, so latency and throughput understate the server",
                DRIVER_BUSY * 100.0,
                trim(driver_share_cores),
                trim(read.first().map_or(0.0, |r| r.1.cores)),
                w * 100.0
            )
    });
    let machine = flag(
        &|m| m.busy_seconds / (m.interval_s * m.cores).max(1e-9),
        MACHINE_BUSY,
        &|w| {
            format!(
                "the machine was saturated, up to {:.0}% of all its cores busy",
                w * 100.0
            )
        },
    );
    flag(&MachineSample::others_share, OTHERS_BUSY, &|w| {
        format!(
            "other processes used {:.0}% or more of the machine, up to {:.0}%: the figures carry their noise",
            OTHERS_BUSY * 100.0,
            w * 100.0
        )
    });
    flag(
        &|m| m.steal_seconds / (m.interval_s * m.cores).max(1e-9),
        STEAL,
        &|w| {
            format!(
                "a hypervisor took up to {:.0}% of the machine (steal time)",
                w * 100.0
            )
        },
    );
    noise.saturated = driver || machine;
    noise
}

/// `at 2 s`, `at 2, 5 and 7 s`, `at 1, 2, 3, 4, 5 s and 6 more`.
fn at(ts: &[f64]) -> String {
    let shown: Vec<String> = ts.iter().take(5).map(|t| format!("{t:.0}")).collect();
    let rest = ts.len().saturating_sub(5);
    match (shown.as_slice(), rest) {
        ([one], _) => format!("at {one} s"),
        (list, 0) => {
            let (last, init) = list.split_last().expect("two or more");
            format!("at {} and {last} s", init.join(", "))
        }
        (list, more) => format!("at {} s and {more} more", list.join(", ")),
    }
}

fn trim(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second(t: f64, busy: f64, others: f64, driver: f64, steal: f64) -> Sample {
        Sample {
            source: 0,
            t_s: t,
            delivered: 0,
            requests: 0,
            server_cpu_seconds: 0.0,
            server_rss_bytes: 0,
            open_connections: 0,
            held_long_polls: 0,
            webhook_in_flight: 0,
            webhook_retries: 0,
            webhook_attempts: 0,
            webhook_queued: 0,
            driver_cpu_seconds: 0.0,
            machine: MachineSample {
                interval_s: 1.0,
                cores: 2.0,
                busy_seconds: busy,
                others_seconds: others,
                steal_seconds: steal,
                load_1m: 0.5,
                driver_seconds: driver,
            },
        }
    }

    #[test]
    fn a_quiet_run_has_nothing_to_say() {
        let quiet: Vec<Sample> = (1..=10).map(|t| second(t as f64, 0.6, 0.05, 0.3, 0.0)).collect();
        assert_eq!(judge(&quiet, 1.0), Noise::default());
    }

    #[test]
    fn each_bad_second_is_named_not_averaged_away() {
        let mut run: Vec<Sample> = (1..=10).map(|t| second(t as f64, 0.6, 0.05, 0.3, 0.0)).collect();
        // Second 4: a neighbour takes 0.6 of 2 cores (30%); second 7: the driver pegs its core.
        run[3] = second(4.0, 1.2, 0.6, 0.3, 0.0);
        run[6] = second(7.0, 1.86, 0.05, 0.95, 0.0);
        run[8] = second(9.0, 0.6, 0.05, 0.3, 0.1);
        let noise = judge(&run, 1.0);
        assert!(noise.saturated);
        let all = noise.warnings.join("\n");
        assert!(all.contains("in 1 of 10 seconds (at 7 s) the driver used 90% or more of its share of the cores (1 of 2), up to 95%"), "{all}");
        assert!(
            all.contains("in 1 of 10 seconds (at 7 s) the machine was saturated, up to 93%"),
            "{all}"
        );
        assert!(
            all.contains(
                "in 1 of 10 seconds (at 4 s) other processes used 20% or more of the machine, up to 30%"
            ),
            "{all}"
        );
        assert!(all.contains("(at 9 s) a hypervisor took up to 5%"), "{all}");
        // Averaged over the run, others used about 5% of the machine: an average would have
        // said nothing.
        assert_eq!(noise.warnings.len(), 4);
        // A remote server leaves the driver both cores: 0.95 of them is not saturation.
        assert!(!judge(&run, 2.0).warnings.iter().any(|w| w.contains("driver")));
    }

    #[test]
    fn seconds_read_as_a_list() {
        assert_eq!(at(&[2.0]), "at 2 s");
        assert_eq!(at(&[2.0, 5.0, 7.0]), "at 2, 5 and 7 s");
        assert_eq!(
            at(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]),
            "at 1, 2, 3, 4, 5 s and 2 more"
        );
    }
}
