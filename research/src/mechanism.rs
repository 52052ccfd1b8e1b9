//! The noise: OpenDP's mechanisms, calibrated to a ρ and a sensitivity, never hand-rolled.
//!
//! - Counts and sums: the discrete Gaussian (`make_gaussian`, Canonne–Kamath–Steinke 2020) over the
//!   vector of every cell at once, for the L2 sensitivity of that vector. Its samples are exact
//!   (no floating-point sampler for Mironov's 2012 attack to read), outputs are whole numbers.
//! - Quantiles: the exponential mechanism over a fixed grid of candidates (`make_private_quantile`,
//!   report-noisy-max with Gumbel noise), so no order statistic of the data is ever released.
//!
//! Randomness comes from OpenSSL's `RAND_priv_bytes` (OpenDP's `use-openssl`). The ρ charged is the
//! library's own privacy map of the measurement at the sensitivity, not a formula of ours.

use opendp::domains::{AtomDomain, VectorDomain};
use opendp::measurements::{make_gaussian, make_private_quantile};
use opendp::measures::ZeroConcentratedDivergence;
use opendp::metrics::{L2Distance, SymmetricDistance};

/// A mechanism could not be built or run.
#[derive(Debug, thiserror::Error)]
#[error("differential-privacy mechanism: {0}")]
pub struct MechanismError(pub String);

impl From<opendp::error::Error> for MechanismError {
    fn from(e: opendp::error::Error) -> MechanismError {
        MechanismError(format!("{e:?}"))
    }
}

/// A vector of noisy values and what it cost.
#[derive(Clone, Debug)]
pub struct NoisyVector {
    pub values: Vec<f64>,
    /// ρ charged (the measurement's privacy map at the sensitivity).
    pub rho: f64,
    /// Standard deviation of each value's noise (the Gaussian's scale).
    pub sigma: f64,
}

/// Granularity of the Gaussian's outputs, 2^K: exact values are whole numbers or sums of clamped
/// measures, rounded to this before noise (OpenDP adds the rounding to the sensitivity it accounts).
const K: i32 = -20;

type GaussianVec = opendp::core::Measurement<
    VectorDomain<AtomDomain<f64>>,
    L2Distance<f64>,
    ZeroConcentratedDivergence,
    Vec<f64>,
>;

/// The discrete Gaussian over `cells` values of L2 sensitivity `l2`, its scale found so that the
/// library's own privacy map at `l2` is at most `rho` (and within a millionth of it).
fn calibrated(cells: usize, l2: f64, rho: f64) -> Result<(GaussianVec, f64, f64), MechanismError> {
    if !(rho > 0.0 && rho.is_finite() && l2 > 0.0 && l2.is_finite()) {
        return Err(MechanismError(format!(
            "needs ρ > 0 and a finite sensitivity (ρ = {rho}, Δ₂ = {l2})"
        )));
    }
    let build = |scale: f64| -> Result<(GaussianVec, f64), MechanismError> {
        let m = make_gaussian::<_, _, ZeroConcentratedDivergence>(
            VectorDomain::new(AtomDomain::<f64>::new_non_nan()).with_size(cells.max(1)),
            L2Distance::<f64>::default(),
            scale,
            Some(K),
        )
        .map_err(|e| MechanismError(format!("{e:?}")))?;
        let charged = m.map(&l2).map_err(|e| MechanismError(format!("{e:?}")))?;
        Ok((m, charged))
    };
    // ρ = Δ₂² / (2σ²); the map also counts the rounding, so correct the scale by what it says.
    let mut scale = l2 / (2.0 * rho).sqrt();
    for _ in 0..8 {
        let (m, charged) = build(scale)?;
        if charged <= rho {
            return Ok((m, charged, scale));
        }
        scale *= (charged / rho).sqrt() * (1.0 + 1e-9);
    }
    Err(MechanismError(format!(
        "no scale keeps ρ under {rho} at Δ₂ = {l2}"
    )))
}

/// Adds discrete Gaussian noise to every value of `exact`, whose L2 sensitivity (how far one
/// person's records can move the whole vector) is `l2`, spending at most `rho`.
pub fn gaussian(exact: &[f64], l2: f64, rho: f64) -> Result<NoisyVector, MechanismError> {
    if exact.iter().any(|v| !v.is_finite()) {
        return Err(MechanismError("a cell's exact value is not finite".into()));
    }
    let (m, charged, scale) = calibrated(exact.len(), l2, rho)?;
    let mut input = exact.to_vec();
    if input.is_empty() {
        input.push(0.0);
    }
    let mut values = m.invoke(&input)?;
    values.truncate(exact.len());
    Ok(NoisyVector {
        values,
        rho: charged,
        sigma: scale,
    })
}

/// The ρ a Gaussian release over `cells` values of sensitivity `l2` at budget `rho` charges (without
/// drawing noise).
pub fn gaussian_cost(cells: usize, l2: f64, rho: f64) -> Result<f64, MechanismError> {
    Ok(calibrated(cells, l2, rho)?.1)
}

/// A quantile release of one cell.
#[derive(Clone, Debug)]
pub struct QuantileRelease {
    pub values: Vec<Option<f64>>,
    /// ρ charged for all cells together.
    pub rho: f64,
    /// The Gumbel scale in rank units.
    pub scale: f64,
}

/// The `alpha`-quantile of each cell's values, chosen among `candidates` by the exponential
/// mechanism. One person changes at most `per_cell` values of a cell and `sum_sq` bounds the sum over
/// cells of the square of how many values one person changes (`Σ rⱼ² ≤ sum_sq`); the mechanism's ρ
/// grows with the square of the change, so the whole release costs `map(1)·sum_sq`, kept ≤ `rho`.
pub fn quantiles(
    cells: &[Vec<f64>],
    candidates: &[f64],
    alpha: f64,
    sum_sq: f64,
    rho: f64,
) -> Result<QuantileRelease, MechanismError> {
    if !(rho > 0.0 && sum_sq >= 1.0) {
        return Err(MechanismError(format!(
            "needs ρ > 0 and a sensitivity ≥ 1 (ρ = {rho}, Σr² = {sum_sq})"
        )));
    }
    let per_person = rho / sum_sq;
    let build = |scale: f64| {
        make_private_quantile(
            VectorDomain::new(AtomDomain::<f64>::new_non_nan()),
            SymmetricDistance,
            ZeroConcentratedDivergence,
            candidates.to_vec(),
            alpha,
            scale,
        )
    };
    // The map is (2·max(α, 1−α)·d / scale)² / 8 at d changed records: solve it for the scale at
    // d = 1, then let the library's own map say what is charged.
    let a = alpha.max(1.0 - alpha);
    let mut scale = 2.0 * a / (8.0 * per_person).sqrt();
    let mut built = None;
    for _ in 0..8 {
        let m = build(scale)?;
        let at_one = m.map(&1)?;
        if at_one * sum_sq <= rho {
            built = Some((m, at_one));
            break;
        }
        scale *= (at_one * sum_sq / rho).sqrt() * (1.0 + 1e-9);
    }
    let (m, at_one) =
        built.ok_or_else(|| MechanismError(format!("no scale keeps ρ under {rho}")))?;
    let mut values = Vec::with_capacity(cells.len());
    for c in cells {
        if c.iter().any(|v| !v.is_finite()) {
            return Err(MechanismError("a value is not finite".into()));
        }
        values.push(Some(m.invoke(c)?));
    }
    Ok(QuantileRelease {
        values,
        rho: at_one * sum_sq,
        scale,
    })
}

/// The ρ a quantile release charges (without drawing noise).
pub fn quantile_cost(
    candidates: &[f64],
    alpha: f64,
    sum_sq: f64,
    rho: f64,
) -> Result<f64, MechanismError> {
    Ok(quantiles(&[], candidates, alpha, sum_sq, rho)?.rho)
}

/// `n + 1` evenly spaced candidates from `lo` to `hi`.
pub fn grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..=n)
        .map(|i| lo + (hi - lo) * i as f64 / n as f64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gaussian_charges_what_it_was_asked_and_adds_noise() {
        let exact = vec![100.0; 2000];
        let r = gaussian(&exact, 1.0, 0.05).expect("gaussian");
        assert!(
            r.rho <= 0.05 && r.rho > 0.05 * (1.0 - 1e-6),
            "charged {}",
            r.rho
        );
        // σ = 1/sqrt(0.1) ≈ 3.16: the sample's spread is close to it, and values are integers.
        let mean = r.values.iter().sum::<f64>() / 2000.0;
        let sd = (r.values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 1999.0).sqrt();
        assert!((sd - 3.162).abs() < 0.4, "sd {sd}");
        assert!((mean - 100.0).abs() < 0.5, "mean {mean}");
        // Outputs are on the 2^-20 grid.
        assert!(r.values.iter().all(|v| (v * 1048576.0).fract() == 0.0));
        assert!(r.values.iter().any(|v| *v != 100.0));
    }

    #[test]
    fn a_quantile_is_a_candidate_near_the_true_one() {
        let cell: Vec<f64> = (0..5000).map(|i| i as f64).collect();
        let cands = grid(0.0, 5000.0, 100);
        let r = quantiles(&[cell], &cands, 0.5, 1.0, 0.5).expect("quantile");
        let v = r.values[0].expect("value");
        assert!(cands.contains(&v));
        assert!((v - 2500.0).abs() <= 250.0, "median {v}");
        assert!(r.rho <= 0.5 + 1e-9 && r.rho > 0.45, "charged {}", r.rho);
    }

    #[test]
    fn quantile_extremes_do_not_return_the_maximum() {
        // One person far above everyone: QUANTILE(x, 1.0) must not tell their value.
        let mut cell: Vec<f64> = (0..50).map(|i| 1000.0 + i as f64).collect();
        cell.push(59_000.0);
        let cands = grid(0.0, 60_000.0, 600);
        let mut hits = 0;
        for _ in 0..200 {
            let r =
                quantiles(std::slice::from_ref(&cell), &cands, 1.0, 1.0, 0.02).expect("quantile");
            if (r.values[0].expect("v") - 59_000.0).abs() <= 100.0 {
                hits += 1;
            }
        }
        assert!(hits < 20, "the top value came out {hits}/200 times");
    }
}
