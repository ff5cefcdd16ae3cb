//! The fit at one idle threshold and one crowding: the costs fitted on the measured counts,
//! the model's wake-ups counted at those costs, and the costs fitted again, until the counts
//! settle.

use super::runs::{for_cpu_alone, measured_runs};
use super::{
    fit, memory_costs, pages_above_empty, per_mode, uncertainty, ByteCost, Calibration, ClientCpu, Cost,
    Counts, Handoff, Op, Run, Wakes, ROUND_TRIP_SCENARIO_NAME, SCHEMA_VERSION, WAKES_SETTLED, WAKE_ROUNDS,
};
use crate::event::Mode;
use crate::results::{ModeResult, Results};
use crate::scenario::Scenario;

impl Calibration {
    /// [`Calibration::fit`] with wake-ups paid after an idle of more than `idle` ns, and
    /// pushes crowded at `crowded_at` clients ([`Op::Crowded`]; none if 0).
    pub(super) fn fit_waking_after(
        results: &Results,
        wakes: Wakes,
        idle: u64,
        crowded_at: u32,
        clients: &[ClientCpu],
    ) -> anyhow::Result<Calibration> {
        let measured = measured_runs(results);
        anyhow::ensure!(
            measured.len() > Op::ALL.len(),
            "{} measured runs cannot tell {} costs apart",
            measured.len(),
            Op::ALL.len()
        );
        let mut rows: Vec<Vec<f64>> = measured
            .iter()
            .map(|(_, s, m)| {
                Counts::measured(m, f64::from(s.clients.count), crowded_at)
                    .0
                    .to_vec()
            })
            .collect();
        let cpu: Vec<f64> = measured.iter().map(|(_, _, m)| m.server.cpu_seconds).collect();
        let weights: Vec<f64> = cpu.iter().map(|c| 1.0 / c.max(1e-6)).collect();
        let modes: Vec<Mode> = Mode::ALL
            .into_iter()
            .filter(|mode| measured.iter().any(|(_, _, m)| m.mode == *mode))
            .collect();
        // The bytes from the runs on loopback whose receivers do not fail (a 503 answers with
        // fewer).
        let of = |mode: Mode| -> Vec<(&Scenario, &ModeResult)> {
            measured
                .iter()
                .filter(|(_, s, m)| m.mode == mode && !for_cpu_alone(&s.name))
                .map(|(_, s, m)| (*s, *m))
                .collect()
        };
        let memory = memory_costs(results);
        let prices_replies_from_afar = measured
            .iter()
            .any(|(_, s, _)| s.name == ROUND_TRIP_SCENARIO_NAME);
        let longest_round_trip_ns = measured
            .iter()
            .map(|(_, _, m)| (m.theory.given.round_trip_ms.max(0.0) * 1e6).round() as u64)
            .max();
        let bytes: Vec<ByteCost> = modes
            .iter()
            .map(|&mode| per_mode::bytes(mode, &of(mode)))
            .collect();
        let assemble = |rows: &[Vec<f64>]| {
            let f = fit::nonnegative_least_squares(&pages_above_empty(rows), &cpu, &weights);
            let (empty, page) = (Op::EmptyPoll as usize, Op::Page as usize);
            let costs: Vec<Cost> = Op::ALL
                .iter()
                .enumerate()
                .map(|(j, &op)| {
                    let (cpu_ns, std_error_ns) = if j == page {
                        (
                            f.coefficients[empty] + f.coefficients[page],
                            f.std_error_of_sum(empty, page),
                        )
                    } else {
                        (f.coefficients[j], f.std_errors[j])
                    };
                    Cost {
                        op,
                        cpu_ns: cpu_ns * 1e9,
                        std_error_ns: std_error_ns * 1e9,
                    }
                })
                .collect();
            let runs = measured
                .iter()
                .zip(rows)
                .map(|((point, _, m), row)| Run {
                    point: point.clone(),
                    mode: m.mode,
                    counts: Op::ALL
                        .iter()
                        .zip(row)
                        .filter(|(_, &n)| n > 0.0)
                        .map(|(&op, &n)| (op, n))
                        .collect(),
                    cpu_seconds: m.server.cpu_seconds,
                    fitted_cpu_seconds: Op::ALL
                        .iter()
                        .zip(row)
                        .map(|(&op, n)| n * costs[op as usize].cpu_ns / 1e9)
                        .sum(),
                })
                .collect();
            Calibration {
                schema_version: SCHEMA_VERSION,
                environment: results.environment.clone(),
                cpu: costs,
                cpu_covariance: uncertainty::cost_covariance(&f),
                memory: memory.clone(),
                bytes: bytes.clone(),
                packets: Vec::new(),
                falls_asleep_ns: idle,
                falls_asleep_alike_ns: Vec::new(),
                crowded_at,
                crowded_at_alike: Vec::new(),
                longest_round_trip_ns,
                prices_replies_from_afar,
                clients: clients.to_vec(),
                clients_handoff: Handoff::default(),
                runs,
                warnings: Vec::new(),
            }
        };
        let mut calibration = assemble(&rows);
        let mut moved = f64::INFINITY;
        for _ in 0..WAKE_ROUNDS {
            moved = 0.0;
            for (row, (_, s, m)) in rows.iter_mut().zip(&measured) {
                for (op, n) in
                    [Op::Wake, Op::RequestWake, Op::ReplyWake]
                        .into_iter()
                        .zip(wakes(s, m, &calibration))
                {
                    let was = row[op as usize];
                    moved = moved.max((n - was).abs() / n.max(was).max(1.0));
                    row[op as usize] = n;
                }
            }
            calibration = assemble(&rows);
            if moved < WAKES_SETTLED {
                break;
            }
        }
        if moved >= WAKES_SETTLED {
            calibration.warnings.push(format!(
                "the model's wake-up counts still moved by up to {:.0}% in the last of {WAKE_ROUNDS} rounds of \
                 counting them and fitting again: the wake-ups' costs, and the costs they trade off against, may be \
                 off",
                moved * 100.0
            ));
        }
        Ok(calibration)
    }
}
