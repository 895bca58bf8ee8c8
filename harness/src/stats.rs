//! The few statistics the checks, reports and benchmarks share, each defined once so that two
//! figures computed in different places mean the same thing:
//!
//! - [`median`]: the middle value, or the mean of the two middle ones; `None` for no values.
//!   Callers decide what "no values" means for them (a check says Unknown, a benchmark refuses
//!   zero rounds): no median invents a 0 or a NaN.
//! - [`nearest_rank`]: the quantile without interpolation, so a reported p99 is a latency that
//!   was observed; `None` for no values.
//! - [`ols`]: the least-squares line with the slope's standard error, and
//!   [`Fit::slope_interval`]: its two-sided interval from Student's t with n-2 degrees of
//!   freedom. The t quantile comes from `statrs` 0.18 without its default features (no nalgebra,
//!   no rand; it builds on the workspace's Rust 1.85, which 0.19 does not).

use statrs::distribution::{ContinuousCDF, StudentsT};

/// The median of `values` (any order; NaN sorts above every number): the middle value of an
/// odd count, the mean of the two middle values of an even count, `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// The nearest-rank `q` quantile of an ascending slice: the value at rank `ceil(q * n)`
/// (1-based), clamped to `1..=n`, so `q` = 0 gives the minimum and `q` = 1 the maximum. `None`
/// when empty.
pub fn nearest_rank<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A least-squares fit of y on x.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    pub slope: f64,
    pub intercept: f64,
    /// Standard error of the slope.
    pub se: f64,
    pub n: usize,
}

impl Fit {
    /// The two-sided `confidence` interval of the slope (e.g. 0.95), from Student's t with
    /// n-2 degrees of freedom.
    pub fn slope_interval(&self, confidence: f64) -> (f64, f64) {
        let t = t_quantile(0.5 + confidence / 2.0, (self.n - 2) as f64);
        (self.slope - t * self.se, self.slope + t * self.se)
    }
}

/// Ordinary least squares; `None` with fewer than 3 points (no degree of freedom left for the
/// standard error) or no spread in x.
pub fn ols(points: &[(f64, f64)]) -> Option<Fit> {
    let n = points.len();
    if n < 3 {
        return None;
    }
    let nf = n as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / nf;
    let my = points.iter().map(|p| p.1).sum::<f64>() / nf;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let sse: f64 = points.iter().map(|p| (p.1 - intercept - slope * p.0).powi(2)).sum();
    let se = (sse / (nf - 2.0) / sxx).sqrt();
    Some(Fit { slope, intercept, se, n })
}

/// The `p` quantile (0 < p < 1) of Student's t with `df` > 0 degrees of freedom.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    StudentsT::new(0.0, 1.0, df).expect("Student's t needs df > 0: a fit has at least 3 points").inverse_cdf(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn median_of_none_one_odd_and_even() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[7.5]), Some(7.5));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[4.0, 1.0]), Some(2.5));
        // NaN sorts last: it moves the median by one place, never makes it NaN here.
        assert_eq!(median(&[f64::NAN, 1.0, 2.0]), Some(2.0));
    }

    #[test]
    fn nearest_rank_quantiles_and_their_edges() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let ms = |q| nearest_rank(&v, q).map(|d| d.as_millis());
        assert_eq!(ms(0.99), Some(99));
        assert_eq!(ms(0.5), Some(50));
        assert_eq!(ms(0.001), Some(1));
        assert_eq!(ms(0.0), Some(1), "q = 0 is the minimum");
        assert_eq!(ms(1.0), Some(100), "q = 1 is the maximum");
        assert_eq!(nearest_rank(&v[..1], 0.99), Some(Duration::from_millis(1)));
        let f = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(nearest_rank(&f, 0.5), Some(2.0), "no interpolation: the lower middle");
        assert_eq!(nearest_rank(&f, 0.99), Some(4.0));
        assert_eq!(nearest_rank::<f64>(&[], 0.5), None);
    }

    #[test]
    fn ols_recovers_an_exact_line_with_zero_error() {
        let pts: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 3.0 + 2.0 * i as f64)).collect();
        let f = ols(&pts).unwrap();
        assert!((f.slope - 2.0).abs() < 1e-12 && (f.intercept - 3.0).abs() < 1e-12, "{f:?}");
        assert!(f.se < 1e-9 && f.n == 10, "{f:?}");
        let (lo, hi) = f.slope_interval(0.95);
        assert!((lo - 2.0).abs() < 1e-8 && (hi - 2.0).abs() < 1e-8);
        assert!(ols(&[(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]).is_none(), "no spread in x");
        assert!(ols(&[(1.0, 1.0), (2.0, 2.0)]).is_none(), "two points leave no degree of freedom");
        assert!(ols(&[]).is_none());
    }

    #[test]
    fn ols_on_noisy_data_has_the_textbook_error_and_interval() {
        // y = 1 + 0.5 x + e, e = +1, -1, +1, -1, ...: worked by hand for x = 0..=5.
        // mean x 2.5, Sxx 17.5; e's fitted slope is Σ(x - 2.5)e / Sxx = -3 / 17.5.
        let pts: Vec<(f64, f64)> = (0..6).map(|i| (i as f64, 1.0 + 0.5 * i as f64 + if i % 2 == 0 { 1.0 } else { -1.0 })).collect();
        let f = ols(&pts).unwrap();
        let b = 0.5 - 3.0 / 17.5;
        assert!((f.slope - b).abs() < 1e-12, "{f:?}");
        let a = (pts.iter().map(|p| p.1).sum::<f64>() - b * 15.0) / 6.0;
        assert!((f.intercept - a).abs() < 1e-12, "{f:?}");
        let sse: f64 = pts.iter().map(|p| (p.1 - a - b * p.0).powi(2)).sum();
        assert!((f.se - (sse / 4.0 / 17.5).sqrt()).abs() < 1e-12, "{f:?}");
        // 95 % with 4 degrees of freedom: t = 2.776445105.
        let (lo, hi) = f.slope_interval(0.95);
        assert!((hi - f.slope - 2.776_445_105 * f.se).abs() < 1e-6 && (f.slope - lo - (hi - f.slope)).abs() < 1e-12);
        assert!(lo < 0.5 && 0.5 < hi, "the true slope is inside: {lo}..{hi}");
    }

    #[test]
    fn t_quantiles_match_the_tables() {
        for (p, df, want) in [
            (0.975, 1.0, 12.706_204_736),
            (0.975, 2.0, 4.302_652_730),
            (0.975, 10.0, 2.228_138_852),
            (0.975, 30.0, 2.042_272_456),
            (0.995, 5.0, 4.032_142_984),
            (0.95, 20.0, 1.724_718_243),
            (0.975, 1000.0, 1.962_339_081),
        ] {
            let got = t_quantile(p, df);
            assert!((got - want).abs() < 1e-6 * want, "t({p}, {df}) = {got}, want {want}");
        }
        assert!(t_quantile(0.5, 7.0).abs() < 1e-12, "the median of Student's t is 0");
        assert!((t_quantile(0.025, 10.0) + 2.228_138_852).abs() < 1e-6);
    }
}
