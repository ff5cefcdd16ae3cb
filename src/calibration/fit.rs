//! Least squares with every coefficient at zero or above (Lawson and Hanson's active set), and
//! the standard error of each coefficient it kept: what `calibrate` fits the server's costs
//! with.

/// A fitted linear model: `y ≈ Σ coefficient[j] × x[j]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    /// Each column's coefficient, at least zero.
    pub coefficients: Vec<f64>,
    /// Each coefficient's standard error: the unconstrained fit's, for one held at zero by
    /// the constraint as for the others (zero for a column with no data).
    pub std_errors: Vec<f64>,
    /// The coefficients' covariance, the unconstrained fit's (see [`nonnegative_least_squares`]).
    pub covariance: Vec<Vec<f64>>,
}

impl Fitted {
    /// The standard error of the sum of coefficients `i` and `j`.
    pub fn std_error_of_sum(&self, i: usize, j: usize) -> f64 {
        let c = &self.covariance;
        (c[i][i] + c[j][j] + 2.0 * c[i][j]).max(0.0).sqrt()
    }
}

/// Fits `y ≈ rows × coefficients` with every coefficient ≥ 0, each row weighted by
/// `weights` (its residual is multiplied by the weight before squaring).
pub fn nonnegative_least_squares(rows: &[Vec<f64>], y: &[f64], weights: &[f64]) -> Fitted {
    let n = rows.first().map_or(0, Vec::len);
    let a: Vec<Vec<f64>> = rows
        .iter()
        .zip(weights)
        .map(|(r, w)| r.iter().map(|v| v * w).collect())
        .collect();
    let b: Vec<f64> = y.iter().zip(weights).map(|(v, w)| v * w).collect();
    // Columns scaled to unit length, so that the tolerance means the same for every column.
    let scale: Vec<f64> = (0..n)
        .map(|j| {
            let norm = a.iter().map(|r| r[j] * r[j]).sum::<f64>().sqrt();
            if norm > 0.0 {
                1.0 / norm
            } else {
                0.0
            }
        })
        .collect();
    let a: Vec<Vec<f64>> = a
        .iter()
        .map(|r| r.iter().zip(&scale).map(|(v, s)| v * s).collect())
        .collect();
    let x = lawson_hanson(&a, &b);
    let residual: f64 = a.iter().zip(&b).map(|(r, bi)| (bi - dot(r, &x)).powi(2)).sum();
    // The covariance is the unconstrained fit's over every column with data, a coefficient
    // held at zero among them: its estimate fell below zero, not its error, and a cost fitted
    // at nothing is not known to be nothing. Where those columns cannot be told apart (one a
    // sum of others), over the columns kept above zero alone.
    let active: Vec<usize> = (0..n).filter(|&j| x[j] > 0.0).collect();
    let with_data: Vec<usize> = (0..n).filter(|&j| scale[j] > 0.0).collect();
    let (set, inverse) = match invert(&normal_matrix(&a, &with_data)) {
        Some(inv) => (with_data, Some(inv)),
        None => {
            let inv = invert(&normal_matrix(&a, &active));
            (active, inv)
        }
    };
    let freedom = a.len().saturating_sub(set.len()).max(1) as f64;
    let variance = residual / freedom;
    let mut covariance = vec![vec![0.0; n]; n];
    if let Some(inv) = &inverse {
        for (k, &i) in set.iter().enumerate() {
            for (l, &j) in set.iter().enumerate() {
                covariance[i][j] = variance * inv[k][l] * scale[i] * scale[j];
            }
        }
    }
    Fitted {
        coefficients: x.iter().zip(&scale).map(|(v, s)| v * s).collect(),
        std_errors: (0..n).map(|j| covariance[j][j].max(0.0).sqrt()).collect(),
        covariance,
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Lawson and Hanson's algorithm (Solving Least Squares Problems, 1974, ch. 23): columns
/// enter the passive set while the gradient points into the feasible region, and leave it when
/// the unconstrained solution on the passive set would go negative.
fn lawson_hanson(a: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    let n = a.first().map_or(0, Vec::len);
    let mut x = vec![0.0; n];
    let mut passive = vec![false; n];
    const TOLERANCE: f64 = 1e-12;
    for _ in 0..3 * n + 10 {
        let gradient = gradient(a, b, &x);
        let Some(t) = (0..n)
            .filter(|&j| !passive[j] && gradient[j] > TOLERANCE)
            .max_by(|&i, &j| gradient[i].total_cmp(&gradient[j]))
        else {
            break;
        };
        passive[t] = true;
        for _ in 0..3 * n + 10 {
            let set: Vec<usize> = (0..n).filter(|&j| passive[j]).collect();
            let Some(s) = solve_on(a, b, &set) else {
                passive[t] = false;
                break;
            };
            let mut z = vec![0.0; n];
            for (k, &j) in set.iter().enumerate() {
                z[j] = s[k];
            }
            if set.iter().all(|&j| z[j] > TOLERANCE) {
                x = z;
                break;
            }
            // Step from x toward z as far as every coefficient stays at zero or above.
            let alpha = set
                .iter()
                .filter(|&&j| z[j] <= TOLERANCE)
                .map(|&j| x[j] / (x[j] - z[j]))
                .fold(f64::INFINITY, f64::min);
            for j in 0..n {
                x[j] += alpha * (z[j] - x[j]);
                if passive[j] && x[j] <= TOLERANCE {
                    passive[j] = false;
                    x[j] = 0.0;
                }
            }
        }
    }
    x
}

/// `aᵀ(b − a x)`: which way each coefficient would lower the squared residual.
fn gradient(a: &[Vec<f64>], b: &[f64], x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mut g = vec![0.0; n];
    for (row, bi) in a.iter().zip(b) {
        let r = bi - dot(row, x);
        for j in 0..n {
            g[j] += row[j] * r;
        }
    }
    g
}

/// `aᵀa` restricted to the columns in `set`.
fn normal_matrix(a: &[Vec<f64>], set: &[usize]) -> Vec<Vec<f64>> {
    set.iter()
        .map(|&i| set.iter().map(|&j| a.iter().map(|r| r[i] * r[j]).sum()).collect())
        .collect()
}

/// The unconstrained least-squares solution on the columns in `set` (normal equations), or
/// None when those columns are dependent.
fn solve_on(a: &[Vec<f64>], b: &[f64], set: &[usize]) -> Option<Vec<f64>> {
    let m = normal_matrix(a, set);
    let rhs: Vec<f64> = set
        .iter()
        .map(|&j| a.iter().zip(b).map(|(r, bi)| r[j] * bi).sum())
        .collect();
    let inv = invert(&m)?;
    Some(inv.iter().map(|row| dot(row, &rhs)).collect())
}

/// The inverse of a square matrix by Gauss–Jordan elimination with partial pivoting, or None
/// when it is singular (a pivot below 1e-12 of the largest diagonal entry).
fn invert(m: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let largest = (0..n).map(|i| m[i][i].abs()).fold(0.0, f64::max);
    let mut w: Vec<Vec<f64>> = m
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut row = r.clone();
            row.extend((0..n).map(|j| if i == j { 1.0 } else { 0.0 }));
            row
        })
        .collect();
    for c in 0..n {
        let p = (c..n).max_by(|&i, &j| w[i][c].abs().total_cmp(&w[j][c].abs()))?;
        if w[p][c].abs() <= 1e-12 * largest.max(f64::MIN_POSITIVE) {
            return None;
        }
        w.swap(c, p);
        let pivot = w[c][c];
        w[c].iter_mut().for_each(|v| *v /= pivot);
        for r in 0..n {
            if r != c {
                let f = w[r][c];
                if f != 0.0 {
                    let pivot_row = w[c].clone();
                    w[r].iter_mut().zip(&pivot_row).for_each(|(v, p)| *v -= f * p);
                }
            }
        }
    }
    Some(w.into_iter().map(|r| r[n..].to_vec()).collect())
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    #[test]
    fn an_exact_system_is_solved_exactly() {
        // 2a + b = 5, a + 3b = 10, a + b = 4: a = 1, b = 3 by hand.
        let rows = vec![vec![2.0, 1.0], vec![1.0, 3.0], vec![1.0, 1.0]];
        let f = nonnegative_least_squares(&rows, &[5.0, 10.0, 4.0], &[1.0; 3]);
        assert!((f.coefficients[0] - 1.0).abs() < 1e-9, "{f:?}");
        assert!((f.coefficients[1] - 3.0).abs() < 1e-9, "{f:?}");
        assert!(f.std_errors.iter().all(|&e| e < 1e-6), "{f:?}");
    }

    #[test]
    fn a_coefficient_that_would_go_negative_is_held_at_zero() {
        // Unconstrained, y = 2x₀ − x₁ fits exactly; with b ≥ 0 the best is b = 0 and a the
        // least-squares slope of y on x₀ alone: Σxy/Σx² = (1·1 + 2·3 + 3·5)/(1+4+9) = 22/14.
        let rows = vec![vec![1.0, 1.0], vec![2.0, 1.0], vec![3.0, 1.0]];
        let f = nonnegative_least_squares(&rows, &[1.0, 3.0, 5.0], &[1.0; 3]);
        assert_eq!(f.coefficients[1], 0.0, "{f:?}");
        assert!((f.coefficients[0] - 22.0 / 14.0).abs() < 1e-9, "{f:?}");
        // Its error is not lost with it: the unconstrained fit's. Its residuals at (22/14, 0)
        // are −4/7, −1/7 and 2/7 (sum of squares 3/7) over 3 − 2 degrees of freedom; the
        // inverse of XᵀX = [[14, 6], [6, 3]] has 14/6 at (1, 1): variance 3/7 × 14/6 = 1.
        assert!((f.std_errors[1] - 1.0).abs() < 1e-9, "{f:?}");
    }

    #[test]
    fn known_costs_are_recovered_from_noisy_counts_within_their_standard_errors() {
        // A seeded Monte-Carlo: 40 runs of random operation counts, CPU = Σ cost × count with
        // 2% noise; the fit finds each cost within 4 standard errors, and the errors are small.
        let costs = [8e-3, 2e-6, 30e-6, 0.0, 12e-6, 5e-6];
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for _ in 0..40 {
            let row: Vec<f64> = std::iter::once(3.0)
                .chain((1..costs.len()).map(|_| rng.gen_range(0.0..30_000.0)))
                .collect();
            let cpu: f64 = row.iter().zip(&costs).map(|(c, k)| c * k).sum();
            y.push(cpu * (1.0 + rng.gen_range(-0.02..0.02)));
            rows.push(row);
        }
        let weights: Vec<f64> = y.iter().map(|v| 1.0 / v).collect();
        let f = nonnegative_least_squares(&rows, &y, &weights);
        for (j, &truth) in costs.iter().enumerate() {
            let (got, err) = (f.coefficients[j], f.std_errors[j]);
            assert!(got >= 0.0);
            assert!(
                (got - truth).abs() <= 4.0 * err + 1e-9,
                "cost {j}: {got} ± {err}, truth {truth}"
            );
            if truth > 0.0 {
                assert!(err < truth * 0.2, "cost {j}: {got} ± {err}");
            }
        }
    }

    #[test]
    fn the_standard_error_of_a_sum_is_that_of_the_sum_fitted_as_one_coefficient() {
        // y = 2·x₀ + 3·x₁ with noise. Fitted on (x₀, x₁ − x₀) instead, the same model's
        // first coefficient is 2 + 3 (c₀x₀ + c₁(x₁ − x₀) = (c₀ − c₁)x₀ + c₁x₁), and its
        // standard error is the sum's, read off that fit alone: the covariance of the first
        // fit must give the same.
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let (mut rows, mut apart, mut y) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..30 {
            let x0: f64 = rng.gen_range(1.0..10.0);
            let x1: f64 = x0 + rng.gen_range(1.0..10.0);
            y.push((2.0 * x0 + 3.0 * x1) * (1.0 + rng.gen_range(-0.05..0.05)));
            rows.push(vec![x0, x1]);
            apart.push(vec![x0, x1 - x0]);
        }
        let weights = vec![1.0; y.len()];
        let f = nonnegative_least_squares(&rows, &y, &weights);
        let g = nonnegative_least_squares(&apart, &y, &weights);
        assert!((g.coefficients[0] - f.coefficients[0] - f.coefficients[1]).abs() < 1e-9);
        let (sum, alone) = (f.std_error_of_sum(0, 1), g.std_errors[0]);
        assert!(
            alone > 0.0 && (sum / alone - 1.0).abs() < 1e-6,
            "{sum} against {alone}"
        );
        // Not the two errors added in quadrature: the coefficients covary.
        let quadrature = f.std_errors[0].hypot(f.std_errors[1]);
        assert!(
            (quadrature / alone - 1.0).abs() > 0.05,
            "{quadrature} against {alone}"
        );
    }
}
