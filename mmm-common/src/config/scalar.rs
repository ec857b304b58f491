//! Scalar values of MMM directives: durations (ours: fractional seconds and units), MMM's
//! booleans, comma-separated lists.

use std::time::Duration;

/// How durations may be written.
pub const DURATION_SYNTAX: &str = "seconds (e.g. 5 or 0.5) or with a unit (500ms, 2s)";

/// Parses a duration: plain (fractional) seconds or with `ms`/`s`.
pub fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    let (num, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else {
        (v, 1.0)
    };
    let x: f64 = num.trim().parse().ok()?;
    if !x.is_finite() || x < 0.0 || x * scale > 1e9 {
        return None;
    }
    Some(Duration::from_secs_f64(x * scale))
}

/// Parses MMM's booleans.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" => Some(true),
        "0" | "false" | "off" | "no" => Some(false),
        _ => None,
    }
}

pub(super) fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}
