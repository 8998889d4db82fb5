//! Per-call latency distribution of in-process triage, one complaint at a
//! time on one thread (criterion reports means of many calls; budgets also
//! name a p99). Texts are the held-out split, cycled; "typical" is the
//! middle half by length.
//!
//!     cargo run --release --example latency [calls=50000]

use std::path::Path;
use std::time::Instant;

use triage::engine::default_engine;

fn pct(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let calls: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50_000);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let engine = default_engine(root).expect("engine");
    let mut complaints = triage::batch::complaints_from_jsonl(&root.join("models/heldout.jsonl"))
        .expect("held-out split");
    complaints.sort_by_key(|c| c.text.chars().count());
    let n = complaints.len();
    let typical = &complaints[n / 4..3 * n / 4];
    for c in complaints.iter().take(200) {
        engine.triage(c).unwrap(); // warm-up
    }
    for (name, set) in [("typical", typical), ("all", &complaints[..])] {
        let mut us: Vec<f64> = (0..calls)
            .map(|i| {
                let c = &set[i % set.len()];
                let t = Instant::now();
                std::hint::black_box(engine.triage(c).unwrap());
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        us.sort_by(f64::total_cmp);
        println!(
            "{name:>8}: {calls} calls  p50 {:.1} µs  p90 {:.1} µs  p99 {:.1} µs  p99.9 {:.1} µs  max {:.1} µs",
            pct(&us, 0.5),
            pct(&us, 0.9),
            pct(&us, 0.99),
            pct(&us, 0.999),
            us[us.len() - 1]
        );
    }
}
