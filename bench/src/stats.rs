//! Summaries of repeated measurements, and ratios against a peer.

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

/// Median of the samples in seconds (the upper one of an even count; 0
/// if there are none).
pub fn median_secs(samples: &[Duration]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted
        .get(sorted.len() / 2)
        .map_or(0.0, Duration::as_secs_f64)
}

/// "ours / theirs" as a ratio with two decimals ("n/a" when `theirs` is 0).
pub fn ratio(ours: f64, theirs: f64) -> String {
    if theirs > 0.0 {
        format!("{:.2}", ours / theirs)
    } else {
        "n/a".into()
    }
}
