//! Per-endpoint measurements: request counts, outcomes by status and error code,
//! and latency in HDR histograms; printed as a table or JSON.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The endpoints a simulated buyer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    Time,
    Event,
    PurchaseUrl,
    Buy,
    Order,
    Pay,
    Queue,
    Challenge,
}

impl Endpoint {
    pub const ALL: [Endpoint; 8] = [
        Self::Time,
        Self::Event,
        Self::Challenge,
        Self::PurchaseUrl,
        Self::Queue,
        Self::Buy,
        Self::Order,
        Self::Pay,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Time => "GET /api/time",
            Self::Event => "GET /api/events/{id}",
            Self::PurchaseUrl => "POST purchase-url",
            Self::Buy => "POST /buy",
            Self::Order => "GET /api/orders/{id}",
            Self::Pay => "POST pay",
            Self::Queue => "queue join/poll",
            Self::Challenge => "GET challenge",
        }
    }
}

struct Series {
    latency_us: Histogram<u64>,
    outcomes: BTreeMap<String, u64>,
}

impl Series {
    fn new() -> Self {
        Self {
            latency_us: Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds"),
            outcomes: BTreeMap::new(),
        }
    }
}

/// Shared by every simulated user.
pub struct Recorder {
    series: Mutex<BTreeMap<Endpoint, Series>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            series: Mutex::new(Endpoint::ALL.iter().map(|e| (*e, Series::new())).collect()),
        }
    }
}

impl Recorder {
    /// Records one answer: `outcome` is the status, plus the error code if any
    /// (`"202"`, `"429 not_admitted"`), or `"error"` if no answer came.
    pub fn record(&self, endpoint: Endpoint, latency: Duration, outcome: &str) {
        if let Ok(mut series) = self.series.lock()
            && let Some(s) = series.get_mut(&endpoint)
        {
            let _ = s.latency_us.record((latency.as_micros() as u64).max(1));
            *s.outcomes.entry(outcome.to_owned()).or_insert(0) += 1;
        }
    }

    pub fn report(&self, elapsed: Duration) -> Vec<EndpointReport> {
        let Ok(series) = self.series.lock() else {
            return Vec::new();
        };
        series
            .iter()
            .filter(|(_, s)| !s.latency_us.is_empty())
            .map(|(endpoint, s)| {
                let q = |q: f64| {
                    Duration::from_micros(s.latency_us.value_at_quantile(q)).as_secs_f64() * 1000.0
                };
                let requests = s.latency_us.len();
                EndpointReport {
                    endpoint: *endpoint,
                    requests,
                    per_second: requests as f64 / elapsed.as_secs_f64().max(1e-9),
                    p50_ms: q(0.5),
                    p90_ms: q(0.9),
                    p99_ms: q(0.99),
                    max_ms: s.latency_us.max() as f64 / 1000.0,
                    outcomes: s.outcomes.clone(),
                }
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EndpointReport {
    pub endpoint: Endpoint,
    pub requests: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub outcomes: BTreeMap<String, u64>,
}

/// The table printed at the end of a run.
pub fn table(reports: &[EndpointReport]) -> String {
    let mut out = format!(
        "{:<22} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8}  outcomes\n",
        "endpoint", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    for r in reports {
        let outcomes: Vec<String> = r
            .outcomes
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        out.push_str(&format!(
            "{:<22} {:>9} {:>9.0} {:>8.1} {:>8.1} {:>8.1} {:>8.1}  {}\n",
            r.endpoint.name(),
            r.requests,
            r.per_second,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.max_ms,
            outcomes.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_reports() {
        let recorder = Recorder::default();
        for ms in 1..=100 {
            recorder.record(
                Endpoint::Buy,
                Duration::from_millis(ms),
                if ms % 2 == 0 {
                    "202"
                } else {
                    "429 not_admitted"
                },
            );
        }
        let report = recorder.report(Duration::from_secs(10));
        assert_eq!(report.len(), 1);
        let buy = &report[0];
        assert_eq!(buy.requests, 100);
        assert!((buy.per_second - 10.0).abs() < 1e-9);
        assert!((buy.p50_ms - 50.0).abs() < 1.0, "{}", buy.p50_ms);
        assert!((buy.max_ms - 100.0).abs() < 0.5);
        assert_eq!(buy.outcomes["202"], 50);
        assert!(table(&report).contains("POST /buy"));
    }
}
