//! Prometheus metrics: requests and latency per route, inference time and
//! batch sizes, and (computed at scrape time from the store) open and overdue
//! cases per queue.

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::queue::QueueStats;

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    inference: Histogram,
    batch_size: Histogram,
    cases_open: IntGaugeVec,
    cases_overdue: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "triage_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["route", "status"],
        )
        .unwrap();
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "triage_http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ]),
            &["route"],
        )
        .unwrap();
        let inference = Histogram::with_opts(
            HistogramOpts::new(
                "triage_inference_seconds",
                "Time to score one batch (model + rules + replies)",
            )
            .buckets(vec![
                0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5,
            ]),
        )
        .unwrap();
        let batch_size = Histogram::with_opts(
            HistogramOpts::new("triage_inference_batch_size", "Complaints per model call").buckets(
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0],
            ),
        )
        .unwrap();
        let cases_open = IntGaugeVec::new(
            Opts::new("triage_cases_open", "Unresolved cases per queue"),
            &["queue"],
        )
        .unwrap();
        let cases_overdue = IntGaugeVec::new(
            Opts::new(
                "triage_cases_overdue",
                "Unresolved cases past their current deadline",
            ),
            &["queue"],
        )
        .unwrap();
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(inference.clone()),
            Box::new(batch_size.clone()),
            Box::new(cases_open.clone()),
            Box::new(cases_overdue.clone()),
        ] {
            registry.register(c).unwrap();
        }
        Self {
            registry,
            requests,
            latency,
            inference,
            batch_size,
            cases_open,
            cases_overdue,
        }
    }

    pub fn observe_request(&self, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    pub fn observe_inference(&self, batch: usize, elapsed: Duration) {
        self.inference.observe(elapsed.as_secs_f64());
        self.batch_size.observe(batch as f64);
    }

    /// Prometheus text exposition, with queue gauges refreshed from `stats`.
    pub fn render(&self, queues: &[String], stats: &[QueueStats]) -> String {
        for q in queues {
            let s = stats.iter().find(|s| &s.queue == q);
            self.cases_open
                .with_label_values(&[q])
                .set(s.map_or(0, |s| (s.open + s.acknowledged) as i64));
            self.cases_overdue
                .with_label_values(&[q])
                .set(s.map_or(0, |s| s.overdue as i64));
        }
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("metrics encode");
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
