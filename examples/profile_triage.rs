//! Profiling driver: triage the held-out texts in a loop, one at a time or in
//! batches. `perf record -g target/release/examples/profile_triage [batch]`.

use std::path::Path;

use triage::engine::default_engine;
use triage::Complaint;

fn main() {
    let batch: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let engine = default_engine(root).expect("engine");
    let text = std::fs::read_to_string(root.join("models/heldout.jsonl")).unwrap();
    let complaints: Vec<Complaint> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| Complaint {
            text: v["text"].as_str().unwrap().to_owned(),
            channel: v["channel"].as_str().map(str::to_owned),
            ..Complaint::default()
        })
        .collect();
    let start = std::time::Instant::now();
    let mut n = 0usize;
    for _ in 0..10 {
        for chunk in complaints.chunks(batch) {
            n += engine.triage_batch(chunk).len();
        }
    }
    let el = start.elapsed();
    eprintln!(
        "{n} complaints in {el:?}: {:.1} µs each",
        el.as_secs_f64() * 1e6 / n as f64
    );
}
