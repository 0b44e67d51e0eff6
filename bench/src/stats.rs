//! Summaries of repeated measurements.

use std::time::Duration;

/// "min / median / max" of the samples, in milliseconds.
pub fn millis(samples: &[Duration]) -> String {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    summary(&mut ms, "ms")
}

/// "min / median / max" of plain numbers with a unit.
pub fn summary(values: &mut [f64], unit: &str) -> String {
    if values.is_empty() {
        return "no samples".into();
    }
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    format!(
        "{:.1} / {:.1} / {:.1} {unit} (min / median / max of {})",
        values[0],
        median,
        values[values.len() - 1],
        values.len()
    )
}
