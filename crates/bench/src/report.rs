//! Printing figures as `name: value` lines, and the statistics behind them.

use std::time::Duration;

pub fn figure(name: &str, value: f64) {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        println!("{name}: {value:.0}");
    } else {
        println!("{name}: {value:.3}");
    }
}

pub fn per_second(count: usize, elapsed: Duration) -> f64 {
    (count as f64 / elapsed.as_secs_f64()).round()
}

/// The `p`-th percentile (0..=100) of `samples`, in milliseconds.
pub fn percentile_ms(samples: &mut [Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank].as_secs_f64() * 1000.0
}
