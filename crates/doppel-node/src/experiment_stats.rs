//! The statistics of an experiment report: Wilson intervals of proportions, the pooled
//! two-proportion z-test, and the chi-square test of a sample-ratio mismatch.

/// z of a two-sided 95 % interval.
const Z95: f64 = 1.959_963_984_540_054;

/// A proportion with its 95 % Wilson interval.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rate {
    /// successes / trials (0 without trials).
    pub value: f64,
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
}

/// `successes` of `trials` (successes above trials count as trials) with the 95 % Wilson
/// interval; `[0, 1]` without trials.
pub fn wilson(successes: u64, trials: u64) -> Rate {
    if trials == 0 {
        return Rate {
            value: 0.0,
            lower: 0.0,
            upper: 1.0,
        };
    }
    let n = trials as f64;
    let p = successes.min(trials) as f64 / n;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Rate {
        value: p,
        lower: (centre - half).max(0.0),
        upper: (centre + half).min(1.0),
    }
}

/// Two-sided p-value of the pooled two-proportion z-test of `x1/n1` against `x2/n2`
/// (1 when either has no trials or neither varies).
pub fn two_proportion_p_value(x1: u64, n1: u64, x2: u64, n2: u64) -> f64 {
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    let (x1, x2) = (x1.min(n1) as f64, x2.min(n2) as f64);
    let (n1, n2) = (n1 as f64, n2 as f64);
    let pooled = (x1 + x2) / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 {
        return 1.0;
    }
    let z = (x2 / n2 - x1 / n1) / se;
    erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0)
}

/// Chi-square goodness-of-fit p-value of `observed` counts against `shares` (any scale;
/// categories with a zero share are left out). 1 with fewer than two categories or no
/// observations.
pub fn chi_square_p_value(observed: &[u64], shares: &[f64]) -> f64 {
    let total_share: f64 = shares.iter().filter(|s| **s > 0.0).sum();
    let cells: Vec<(f64, f64)> = observed
        .iter()
        .zip(shares)
        .filter(|(_, s)| **s > 0.0)
        .map(|(&o, &s)| (o as f64, s / total_share))
        .collect();
    let n: f64 = cells.iter().map(|(o, _)| o).sum();
    if cells.len() < 2 || n == 0.0 {
        return 1.0;
    }
    let statistic: f64 = cells
        .iter()
        .map(|&(o, share)| {
            let expected = n * share;
            (o - expected).powi(2) / expected
        })
        .sum();
    let df = (cells.len() - 1) as f64;
    upper_gamma_regularized(df / 2.0, statistic / 2.0)
}

/// The complementary error function (Chebyshev fit, relative error < 1.2e-7).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms).
fn ln_gamma(x: f64) -> f64 {
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    let x = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (i, c) in COEFFICIENTS.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// Q(a, x) = Γ(a, x) / Γ(a): a series below a + 1, a continued fraction above.
fn upper_gamma_regularized(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let log_prefix = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        let (mut term, mut sum, mut n) = (1.0 / a, 1.0 / a, a);
        for _ in 0..1_000 {
            n += 1.0;
            term *= x / n;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        return (1.0 - sum * log_prefix.exp()).clamp(0.0, 1.0);
    }
    // Lentz's method.
    let tiny = 1e-300;
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / tiny;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..1_000 {
        let an = -(i as f64) * (i as f64 - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < tiny {
            d = tiny;
        }
        c = b + an / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-15 {
            break;
        }
    }
    (h * log_prefix.exp()).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn wilson_matches_reference_values() {
        // 10 of 100: Wilson 95 % is [0.0552, 0.1744].
        let r = wilson(10, 100);
        assert!(
            close(r.lower, 0.0552, 1e-4) && close(r.upper, 0.1744, 1e-4),
            "{r:?}"
        );
        assert_eq!(wilson(0, 0).upper, 1.0);
    }

    #[test]
    fn z_test_matches_reference_values() {
        // 100/1000 against 130/1000: z = 2.1027, p = 0.0355.
        assert!(close(
            two_proportion_p_value(100, 1000, 130, 1000),
            0.0355,
            1e-4
        ));
        assert_eq!(two_proportion_p_value(5, 10, 5, 10), 1.0);
        assert_eq!(two_proportion_p_value(0, 0, 5, 10), 1.0);
    }

    #[test]
    fn chi_square_matches_reference_values() {
        // 520 vs 480 at 50/50: chi2 = 1.6, df 1, p = 0.2059.
        assert!(close(
            chi_square_p_value(&[520, 480], &[1.0, 1.0]),
            0.2059,
            2e-4
        ));
        // 3 cells, chi2 = 14.0 (df 2): p = e^-7.
        let p = chi_square_p_value(&[30, 50, 20], &[1.0, 1.0, 1.0]);
        assert!(close(p, (-7.0f64).exp(), 1e-6), "{p}");
        // df 3, chi2 = 11.3449: p = 0.01.
        let observed = [0u64; 4];
        assert_eq!(chi_square_p_value(&observed, &[1.0; 4]), 1.0);
        assert!(close(
            upper_gamma_regularized(1.5, 11.3449 / 2.0),
            0.01,
            1e-4
        ));
        assert!(close(erfc(1.0), 0.157_299_207, 1e-7));
    }
}
