//! Percentiles and the markdown tables every benchmark prints and writes.

use std::time::Duration;

/// p50/p90/p99/max of `xs` (nearest rank).
pub fn summary(xs: &[f64]) -> Option<[f64; 4]> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = |p: f64| v[(((p / 100.0) * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Some([rank(50.0), rank(90.0), rank(99.0), v[v.len() - 1]])
}

/// The middle value of `xs` (the upper one of two); NaN for none.
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A markdown table.
pub struct Table {
    pub title: String,
    pub head: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub notes: Vec<String>,
}

impl Table {
    pub fn new(title: &str, head: &[&str]) -> Table {
        Table {
            title: title.into(),
            head: head.iter().map(|s| s.to_string()).collect(),
            rows: vec![],
            notes: vec![],
        }
    }

    /// A row `name | n | p50 | p90 | p99 | max | target | verdict` for values in `unit`.
    pub fn dist(&mut self, name: &str, xs: &[f64], unit: &str, target: Option<(f64, &str)>) {
        let Some([p50, p90, p99, max]) = summary(xs) else {
            self.rows.push(vec![
                name.into(),
                "0".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "no data".into(),
            ]);
            return;
        };
        let f = |x: f64| format!("{x:.3} {unit}");
        let (t, verdict) = match target {
            None => ("-".to_string(), "-".to_string()),
            Some((limit, which)) => {
                let v = if which == "p99" { p99 } else { p50 };
                let verdict = if v <= limit {
                    "met".to_string()
                } else {
                    format!(
                        "missed by {:.3} {unit} ({:.0} %)",
                        v - limit,
                        (v / limit - 1.0) * 100.0
                    )
                };
                (format!("{which} ≤ {limit} {unit}"), verdict)
            }
        };
        self.rows.push(vec![
            name.into(),
            xs.len().to_string(),
            f(p50),
            f(p90),
            f(p99),
            f(max),
            t,
            verdict,
        ]);
    }

    pub fn render(&self) -> String {
        let mut s = format!(
            "### {}\n\n| {} |\n|{}|\n",
            self.title,
            self.head.join(" | "),
            self.head
                .iter()
                .map(|_| "---")
                .collect::<Vec<_>>()
                .join("|")
        );
        for r in &self.rows {
            s += &format!("| {} |\n", r.join(" | "));
        }
        for n in &self.notes {
            s += &format!("\n{n}\n");
        }
        s
    }
}

pub const DIST_HEAD: &[&str] = &[
    "measure", "n", "p50", "p90", "p99", "max", "target", "verdict",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(summary(&xs), Some([50.0, 90.0, 99.0, 100.0]));
        assert_eq!(summary(&[3.0]), Some([3.0; 4]));
        assert_eq!(summary(&[]), None);
    }
}
