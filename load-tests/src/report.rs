//! Output: a status line redrawn on stderr, failures counted by kind, and
//! latency percentiles.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};

use hdrhistogram::Histogram;

/// The status line on stderr: redrawn in place on a terminal, one line
/// per update otherwise (logs, pipes).
pub struct StatusLine {
    terminal: bool,
    drawn: bool,
}

impl StatusLine {
    pub fn new() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    pub fn show(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2K{line}");
            self.drawn = true;
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    /// Ends the redrawn line so that what follows starts on its own.
    pub fn finish(&mut self) {
        if self.drawn {
            let _ = writeln!(std::io::stderr());
            self.drawn = false;
        }
    }
}

/// Failures counted by kind, with one example of each.
#[derive(Default)]
pub struct Tally {
    kinds: BTreeMap<String, (u64, String)>,
}

impl Tally {
    pub fn add(&mut self, kind: String, example: String) {
        let entry = self.kinds.entry(kind).or_insert((0, example));
        entry.0 += 1;
    }

    pub fn total(&self) -> u64 {
        self.kinds.values().map(|(n, _)| n).sum()
    }

    /// One line per kind, most frequent first.
    pub fn lines(&self) -> Vec<String> {
        let mut kinds: Vec<_> = self.kinds.iter().collect();
        kinds.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
        kinds
            .into_iter()
            .map(|(kind, (n, example))| {
                if example == kind || example.is_empty() {
                    format!("{n:>8}  {kind}")
                } else {
                    format!("{n:>8}  {kind}  (e.g. {example})")
                }
            })
            .collect()
    }
}

/// A latency histogram in microseconds, 1 µs to 10 minutes.
pub fn latency_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 600_000_000, 3)
        .map_err(|e| anyhow::anyhow!("creating a latency histogram: {e:?}"))
}

/// The 99th percentile of the last second's latencies, or `-` if none.
pub fn last_second_p99(second: &hdrhistogram::Histogram<u64>) -> String {
    if second.is_empty() {
        "-".to_string()
    } else {
        format!("{} ms", ms(second.value_at_quantile(0.99)))
    }
}

/// `12.345` ms.
pub fn ms(micros: u64) -> String {
    format!("{:.3}", micros as f64 / 1000.0)
}

/// The percentile line of a latency histogram.
pub fn percentiles(name: &str, h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return format!("{name:<18} no samples");
    }
    format!(
        "{name:<18} p50 {:>9}  p90 {:>9}  p99 {:>9}  p99.9 {:>9}  max {:>9}  ms  ({} samples)",
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.90)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
        h.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_grouped_most_frequent_first() {
        let mut tally = Tally::default();
        tally.add("timeout".into(), "timeout".into());
        tally.add("closed: 4401".into(), "closed: 4401 (expired)".into());
        tally.add("closed: 4401".into(), "closed: 4401 (other)".into());
        assert_eq!(tally.total(), 3);
        assert_eq!(
            tally.lines(),
            vec![
                "       2  closed: 4401  (e.g. closed: 4401 (expired))".to_string(),
                "       1  timeout".to_string()
            ]
        );
    }

    #[test]
    fn percentiles_read_in_milliseconds() {
        let mut h = latency_histogram().unwrap();
        assert!(percentiles("delivery", &h).ends_with("no samples"));
        for v in 1..=1000 {
            h.record(v * 1000).unwrap();
        }
        let line = percentiles("delivery", &h);
        assert!(line.contains("p50   500.223"), "{line}");
        assert!(line.contains("(1000 samples)"), "{line}");
    }
}
