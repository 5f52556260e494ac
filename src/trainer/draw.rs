//! Random draws for Thompson sampling: Beta draws from Gamma draws (Marsaglia and Tsang) and
//! standard normal ones (Box–Muller), on a seedable generator so that a gym run repeats. Pure.

/// A draw from Beta(a, b), as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b).
pub(super) fn beta(a: f64, b: f64, rng: &mut fastrand::Rng) -> f64 {
    let x = gamma(a, rng);
    let y = gamma(b, rng);
    x / (x + y)
}

/// A draw from Gamma(shape, 1) for shape >= 1 (Marsaglia and Tsang).
fn gamma(shape: f64, rng: &mut fastrand::Rng) -> f64 {
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = rng.f64().max(f64::MIN_POSITIVE);
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut fastrand::Rng) -> f64 {
    let u1 = rng.f64().max(f64::MIN_POSITIVE);
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beta_draws_stay_in_the_unit_interval_around_the_mean() {
        let mut rng = fastrand::Rng::with_seed(7);
        let draws: Vec<f64> = (0..2000).map(|_| beta(8.0, 2.0, &mut rng)).collect();
        assert!(draws.iter().all(|d| (0.0..=1.0).contains(d)));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((mean - 0.8).abs() < 0.03, "{mean}");
    }
}
