//! How far the fitted costs leave the CPU they price: the costs are estimates, each with its
//! standard error, and they covary (the runs that tell an empty poll's price from a page's
//! tell them apart only so well). The fit's covariance of its coefficients, carried over to
//! the costs, gives the standard error of any operations' CPU at those costs, `√(nᵀ Σ n)`
//! for counts `n`. The model writes it as loadings, `Lᵀ n` for `Σ = L Lᵀ`: the CPU's standard
//! error is their norm, and that of the difference between two counts priced by one
//! calibration (two modes of one simulation, which share every cost's error) is the norm of
//! their loadings' difference, with no covariance to carry along.

use super::fit::Fitted;
use super::{Calibration, Counts, Op};

/// The costs' covariance, ns², in [`Op::ALL`]'s order, from the coefficients' `f` (s²): every
/// cost is its coefficient but a page's, which is an empty poll's and what a page costs
/// beyond one (`pages_above_empty`).
pub(super) fn cost_covariance(f: &Fitted) -> Vec<Vec<f64>> {
    let n = Op::ALL.len();
    let (empty, page) = (Op::EmptyPoll as usize, Op::Page as usize);
    // cost = T × coefficient.
    let t = |i: usize, k: usize| f64::from(u8::from(i == k || (i == page && k == empty)));
    (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    let mut sum = 0.0;
                    for k in 0..n {
                        for l in 0..n {
                            sum += t(i, k) * f.covariance[k][l] * t(j, l);
                        }
                    }
                    sum * 1e18
                })
                .collect()
        })
        .collect()
}

/// The lower-triangular `L` with `L Lᵀ = m`, for a covariance (symmetric, positive
/// semi-definite): a row whose variance the rows before it already explain (a cost the fit
/// pinned at zero, or one the others determine: what is left of its diagonal at or below a
/// billionth of it) gets no column of its own.
pub fn cholesky(m: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = m.len();
    let mut l = vec![vec![0.0; n]; n];
    for j in 0..n {
        let left = m[j][j] - (0..j).map(|k| l[j][k] * l[j][k]).sum::<f64>();
        if m[j][j] <= 0.0 || left <= 1e-9 * m[j][j] {
            continue;
        }
        let pivot = left.sqrt();
        l[j][j] = pivot;
        for i in j + 1..n {
            l[i][j] = (m[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>()) / pivot;
        }
    }
    l
}

impl Calibration {
    /// The CPU of `counts` at these costs as loadings on the costs' uncertainty, ns (see the
    /// module): its standard error is their norm. Empty for a calibration without the costs'
    /// covariance (files written before it was kept).
    pub fn cpu_loadings(&self, counts: &Counts) -> Vec<f64> {
        if self.cpu_covariance.len() != self.cpu.len() {
            return Vec::new();
        }
        let l = cholesky(&self.cpu_covariance);
        (0..self.cpu.len())
            .map(|k| {
                self.cpu
                    .iter()
                    .zip(&l)
                    .map(|(cost, row)| counts.get(cost.op) * row[k])
                    .sum()
            })
            .collect()
    }

    /// The standard error of the CPU of `counts` at these costs, s (None without the costs'
    /// covariance).
    pub fn cpu_std_error_seconds(&self, counts: &Counts) -> Option<f64> {
        let loadings = self.cpu_loadings(counts);
        (!loadings.is_empty()).then(|| loadings.iter().map(|x| x * x).sum::<f64>().sqrt() / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::calibration::tests::runs;
    use crate::calibration::Calibration;
    use crate::results::ModeResult;
    use crate::scenario::Scenario;

    #[test]
    fn cholesky_factors_a_covariance_and_skips_what_earlier_rows_explain() {
        // By hand: [[4, 2], [2, 5]] = L Lᵀ with L = [[2, 0], [1, 2]].
        let l = cholesky(&[vec![4.0, 2.0], vec![2.0, 5.0]]);
        assert_eq!(l, vec![vec![2.0, 0.0], vec![1.0, 2.0]]);
        // The second variable is twice the first, the third pinned at zero: one column.
        let l = cholesky(&[vec![1.0, 2.0, 0.0], vec![2.0, 4.0, 0.0], vec![0.0, 0.0, 0.0]]);
        assert_eq!(l, vec![vec![1.0, 0.0, 0.0], vec![2.0, 0.0, 0.0], vec![0.0; 3]]);
    }

    #[test]
    fn the_cpus_standard_error_is_how_far_refits_on_fresh_noise_scatter_it() {
        // A seeded Monte-Carlo over the reference runs' own operation counts: their CPU made
        // up at known costs (every operation dear enough that no fit pins one at zero) with
        // 3% noise a run, fitted 150 times on fresh noise. The CPU of two mixes of operations
        // at each fit's costs, and its difference, scatter over the refits by what one fit's
        // covariance says (the mean over the refits of its standard error), within 15%
        // (150 draws give a standard deviation within about 6%). A poller's mix and a
        // webhook sender's share the process's and the clients' seconds, whose errors cancel
        // in their difference: added as though independent, the two errors overstate it.
        let truth = |op: Op| match op {
            Op::Second => 3e6,
            Op::ClientSecond => 300.0,
            Op::Connection => 85e3,
            Op::Page => 60e3,
            Op::PagedEvent | Op::LongPollTimeout => 10e3,
            _ => 25e3,
        };
        let base = runs();
        let none = |_: &Scenario, _: &ModeResult, _: &Calibration| [0.0; 3];
        let mix = |ops: &[(Op, f64)]| {
            let mut n = Counts::default();
            for &(op, k) in ops {
                n.set(op, k);
            }
            n
        };
        let common = [
            (Op::Second, 600.0),
            (Op::ClientSecond, 600.0 * 20_000.0),
            (Op::Event, 5e4),
        ];
        let poller = mix(&[common.as_slice(), &[(Op::EmptyPoll, 1e6), (Op::Page, 5e4)]].concat());
        let sender = mix(&[common.as_slice(), &[(Op::WebhookAttempt, 5e4)]].concat());
        let mut difference = poller;
        for (d, s) in difference.0.iter_mut().zip(sender.0) {
            *d -= s;
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (mut cpu, mut predicted) = (vec![Vec::new(); 3], vec![Vec::new(); 3]);
        for _ in 0..150 {
            let mut r = base.clone();
            for p in &mut r.points {
                let clients = f64::from(p.scenario.clients.count);
                for m in &mut p.modes {
                    let n = Counts::measured(m, clients, 0);
                    let exact: f64 = Op::ALL.iter().map(|&op| n.get(op) * truth(op)).sum();
                    let noise: f64 = rng.sample(rand_distr::StandardNormal);
                    m.server.cpu_seconds = exact * (1.0 + 0.03 * noise) / 1e9;
                }
            }
            let c = Calibration::fit_waking_after(&r, &none, 0, 0, &[]).unwrap();
            for (k, n) in [poller, sender, difference].iter().enumerate() {
                cpu[k].push(c.cpu_seconds(n));
                predicted[k].push(c.cpu_std_error_seconds(n).unwrap());
            }
        }
        let sd = |v: &[f64]| {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
        };
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        for (k, what) in ["poller", "sender", "difference"].iter().enumerate() {
            let (scatter, said) = (sd(&cpu[k]), mean(&predicted[k]));
            assert!(
                (said / scatter - 1.0).abs() < 0.15,
                "{what}: refits scatter by {scatter} s, the fit says {said} s"
            );
        }
        let apart = mean(&predicted[0]).hypot(mean(&predicted[1]));
        assert!(
            apart > 1.5 * sd(&cpu[2]),
            "the two errors in quadrature, {apart} s, against the difference's scatter, {}",
            sd(&cpu[2])
        );
    }

    #[test]
    fn the_costs_standard_errors_are_their_covariances_diagonal() {
        let none = |_: &Scenario, _: &ModeResult, _: &Calibration| [0.0; 3];
        let c = Calibration::fit_waking_after(&runs(), &none, 0, 0, &[]).unwrap();
        assert_eq!(c.cpu_covariance.len(), c.cpu.len());
        for (i, cost) in c.cpu.iter().enumerate() {
            let from_covariance = c.cpu_covariance[i][i].max(0.0).sqrt();
            assert!(
                (from_covariance - cost.std_error_ns).abs() <= 1e-9 * cost.std_error_ns.max(1.0),
                "{:?}: {from_covariance} against {}",
                cost.op,
                cost.std_error_ns
            );
        }
        // A page's error is an empty poll's and its own beyond, with their covariance.
        assert!(c.cpu_ns(Op::Page) > 0.0);
        let mut one_page = Counts::default();
        one_page.set(Op::Page, 1.0);
        let page = c.cpu.iter().find(|k| k.op == Op::Page).unwrap();
        let se = c.cpu_std_error_seconds(&one_page).unwrap() * 1e9;
        assert!(
            (se / page.std_error_ns - 1.0).abs() < 1e-9,
            "{se} against {}",
            page.std_error_ns
        );
    }
}
